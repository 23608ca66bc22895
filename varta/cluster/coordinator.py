"""Each node's coordinator: heartbeat, leases, placement, failover and planned moves.

One thread per node process. Every ``tick`` (1 s) it renews the node's session, compares
the leases the node holds with the work it does, claims free work that placement gives it
(or that nobody has taken for a while), and drives planned moves. Work itself (recording a
camera, analysing one) is done by *roles* that it starts and stops; a role knows nothing
of leases beyond the fence it is handed.

Failover: when a node's session lapses (no heartbeat for ``ttl``, by the database's
clock), its leases are orphans; the node each camera now hashes to claims it on its next
tick and starts recording it. Planned moves (a node drained, returning or joining) are
*make before break*: the taker opens its own stream first, publishes the instant of its
first keyframe, the holder ends its footage exactly there and passes the lease on
(docs/design/cluster.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from varta.cluster.leases import Fence, Lease, LeaseStore, lease_key, lease_name
from varta.cluster.nodes import ACTIVE, STOPPING, NodeRegistry, NodeRow
from varta.cluster.placement import CameraInfo, NodeInfo, Placer

log = logging.getLogger("varta.cluster")


class WorkRole(Protocol):
    """Work given out by lease, one lease per camera."""

    kind: str  # the lease kind: "record" | "analyse"
    node_role: str  # which nodes may hold it: "recorder" | "analytics"
    handoff: bool  # planned moves are make-before-break (else: stop, then start)

    def cameras(self) -> list[CameraInfo]: ...  # everything that needs this work now
    def running(self) -> dict[str, int]: ...  # key → epoch of the work this node does now
    def begin(self, key: str, fence: Fence, taken_from: Lease | None, start_at_us: int | None) -> None: ...
    def end(self, key: str, why: str) -> None: ...
    # planned moves, for roles with handoff = True:
    def prepare(self, key: str) -> None: ...
    def standby_point(self, key: str) -> int | None: ...  # the taker's first keyframe, once known
    def standby_failed(self, key: str) -> str | None: ...
    def cancel_prepare(self, key: str) -> None: ...
    def hand_over(self, key: str, fence: Fence, to: str, at_us: int) -> None: ...
    def handing_over(self, key: str) -> bool: ...


@dataclass
class Duty:
    """A cluster-wide singleton (node-down alarms, the daily report): held by one node.

    ``background``: the work may take long (it talks to the archive bucket, or deletes a
    day of footage), so each tick only starts it on a thread of its own when it is not
    running already — the coordinator's tick, which renews this node's session and leases,
    never waits on it (a store that hangs would otherwise cost the node its cameras)."""

    name: str
    on_tick: Callable[[], None]
    fence: Fence | None = None
    ensured: bool = False
    background: bool = False
    _thread: threading.Thread | None = field(default=None, repr=False)

    def run(self) -> None:
        if not self.background:
            self.on_tick()
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._work, name=f"duty-{self.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self.on_tick()
        except Exception:
            log.exception("cluster duty %s failed", self.name)


@dataclass
class _RoleState:
    placement: dict[str, str | None] = field(default_factory=dict)
    placer: Placer = field(default_factory=Placer)
    cameras: list[CameraInfo] = field(default_factory=list)
    nodes_key: tuple = ()
    last_full: float = 0.0
    orphan_seen: dict[str, float] = field(default_factory=dict)
    moves: dict[str, float] = field(default_factory=dict)  # key → when this node asked for it
    known: bool = False  # the camera list has been read once
    backoff: dict[str, tuple[float, float]] = field(default_factory=dict)  # key → (not before, delay)


class Coordinator:
    def __init__(self, engine, node_id: str, *, roles: list[WorkRole] = (), duties: list[Duty] = (),
                 tick_s: float = 1.0, ttl_s: float = 5.0, full_pass_s: float = 5.0,
                 orphan_grace_s: float | None = None,
                 max_moves: int = 8, move_timeout_s: float = 30.0, load: Callable[[], dict] | None = None,
                 registry: NodeRegistry | None = None, every_full_pass: list[Callable[[], None]] = ()):
        self.engine = engine
        self.id = node_id
        self.roles = list(roles)
        self.duties = list(duties)
        self.tick_s, self.ttl_s = tick_s, ttl_s
        # An orphan placed on another live node is left to it for three lease times (enough
        # for a node that has just started, on a loaded machine, to settle and claim it), then
        # anybody takes it: a node that cannot claim must not leave a camera dark.
        self.full_pass_s = full_pass_s
        self.orphan_grace_s = orphan_grace_s if orphan_grace_s is not None else 3 * ttl_s
        self.max_moves, self.move_timeout_s = max_moves, move_timeout_s
        self.nodes = registry or NodeRegistry(engine, int(ttl_s * 1e6))
        self.leases = LeaseStore(engine)
        self.load = load or (lambda: {})
        self.me: NodeRow | None = None
        self.node_list: list[NodeRow] = []
        self._ok_since: float | None = None
        self._beat_ok_at = 0.0  # monotonic time of the last heartbeat that reached the database
        self._state = {r.kind: _RoleState() for r in self.roles}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_thread: threading.Thread | None = None
        self.stopping = False  # a clean shutdown: hand everything over, take nothing
        self.ticks = 0
        self.last_tick_s = 0.0
        self.every_full_pass = list(every_full_pass)
        self._last_periodic = 0.0

    # --- life ---------------------------------------------------------------------------
    def start(self) -> "Coordinator":
        """Two threads: the heartbeat alone on one (a pass of placement or a slow query can
        never delay the session renewal that keeps this node's leases), the work on the other."""
        self._beat_thread = threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True)
        self._beat_thread.start()
        self._thread = threading.Thread(target=self._loop, name="coordinator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._beat_thread):
            if t:
                t.join(timeout=10)

    def _beat_loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.beat()
            self._stop.wait(max(0.05, self.tick_s - (time.monotonic() - t0)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("cluster tick failed; retrying")
            self.last_tick_s = time.monotonic() - t0
            self._stop.wait(max(0.05, self.tick_s - self.last_tick_s))

    # --- the session ---------------------------------------------------------------------------
    def beat(self) -> bool:
        """Renew this node's session and read the node list; False when the database is away."""
        try:
            me, lapsed = self.nodes.heartbeat(self.id, self.load())
            self.node_list = self.nodes.list()
            self.me = me
        except Exception as exc:  # the database is unreachable: keep working, take nothing
            if self._ok_since is not None:
                log.error("cluster: cannot reach the database (%s); recording goes on locally", exc)
            self._ok_since = None
            return False
        self._beat_ok_at = time.monotonic()
        if self._ok_since is None:
            self._ok_since = time.monotonic()
        if lapsed:
            # Its work may have moved while it was away: like a node that has just started, it
            # takes nothing new for a lease time (what it still holds goes on).
            self._ok_since = time.monotonic()
            log.warning("cluster: this node's session had lapsed (frozen or cut off for longer than %.0f s); "
                        "work that moved away stops now", self.ttl_s)
        return True

    # --- one tick -----------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass of the work; renews the session first when no heartbeat thread runs."""
        if self._beat_thread is None and not self.beat():
            return
        if self._ok_since is None or self.me is None:
            return  # the database is away: keep working, take nothing
        now = time.monotonic()
        if now - self._beat_ok_at > 2 * self.tick_s + 1:
            # The node list is old: this process was frozen (SIGSTOP, a paused VM) or its
            # heartbeat is stuck. Placement on an old view would move cameras that moved on
            # meanwhile; wait for a fresh heartbeat (fenced writes stop lost work meanwhile).
            return
        # A node that has just (re)connected waits one lease time before taking work (see
        # _tick_role, orphans); work it already holds goes on at once.
        settled = now - self._ok_since >= self.ttl_s
        self.ticks += 1
        for role in self.roles:
            self._tick_role(role, settled, now)
        self._tick_duties(settled)
        if now - self._last_periodic >= self.full_pass_s:
            self._last_periodic = now
            for fn in self.every_full_pass:
                try:
                    fn()
                except Exception:
                    log.exception("cluster: periodic task failed")

    def _eligible(self, role: WorkRole) -> list[NodeInfo]:
        return [NodeInfo(n.id, n.name, n.capacity, n.groups, n.takes_unpinned) for n in self.node_list
                if n.alive and n.state == ACTIVE and role.node_role in n.roles
                and not (n.id == self.id and self.stopping)]

    def _tick_role(self, role: WorkRole, settled: bool, now: float) -> None:
        st = self._state[role.kind]
        # Placement: every full pass asks the role for its cameras (it re-reads the registry
        # only when that changed); placement is recomputed when the cameras or the live nodes
        # change. A steady pass costs a change check and one small query.
        nodes = self._eligible(role)
        nodes_key = tuple(sorted(n.id for n in nodes))
        full = now - st.last_full >= self.full_pass_s
        cameras_changed = False
        if full:
            cams = role.cameras()
            if cams is not st.cameras or not st.known:
                st.cameras = cams
                cameras_changed = True
                present = {name for name in self.leases.names(role.kind)}
                missing = [c.id for c in cams if lease_name(role.kind, c.id) not in present]
                if missing:
                    self.leases.ensure(role.kind, missing)
            st.last_full = now
            st.known = True
        if cameras_changed or nodes_key != st.nodes_key:
            st.placement = st.placer.place(st.cameras, nodes)
            st.nodes_key = nodes_key
        wanted = {c.id for c in st.cameras}

        held = self.leases.held_by(self.id, role.kind)
        held_keys = {lease.key: lease for lease in held.values()}
        running = role.running()
        # 1. Work whose lease moved on (or was never ours) stops; work that no longer exists
        #    (a camera removed or disabled) is ended, and its lease given up once the work has
        #    finished (its last writes, "recording stopped", are still made under the lease).
        for key, epoch in running.items():
            lease = held_keys.get(key)
            if lease is None or lease.epoch != epoch:
                if not role.handing_over(key):
                    role.end(key, "lost" if lease is None else "epoch")
            elif st.known and key not in wanted:
                role.end(key, "removed")
        running = role.running()
        for key, lease in held_keys.items():
            if key in running or role.handing_over(key):
                continue
            if st.known and key not in wanted:
                self.leases.release(lease.fence())
                continue
            role.begin(key, lease.fence(), None, lease.start_at_us)

        # 4. Orphans: free leases, or a dead node's. Ours by placement at once; anybody's after
        #    a grace (the node placement chose may be slow or unable).
        if not self.stopping and self.me and self.me.state == ACTIVE and role.node_role in self.me.roles:
            orphans = {lease.key: lease for lease in self.leases.orphans(role.kind)}
            for key in list(st.orphan_seen):
                if key not in orphans:
                    del st.orphan_seen[key]
            take = []
            # How long each live node has been up, on the database's clock: a node placement
            # prefers is given the grace once it has had time to settle and claim, however
            # slowly it started.
            up_us = {n.id: n.heartbeat_us - n.started_us for n in self.node_list if n.alive}
            settle_us = int((self.ttl_s + self.full_pass_s) * 1e6)
            for key, lease in orphans.items():
                if key not in wanted:
                    continue
                if not settled:
                    # Only once this node's own link has been up for a lease time: after a
                    # database restart every holder renews within a tick, and nodes started
                    # together have all registered, so placement spreads a cold start at once
                    # instead of the first node taking every camera.
                    continue
                want = st.placement.get(key)
                if want == self.id:
                    take.append(lease.name)
                    continue
                if want in up_us and up_us[want] < settle_us:
                    st.orphan_seen.pop(key, None)  # it is still starting: its grace has not begun
                    continue
                first = st.orphan_seen.setdefault(key, now)  # the grace counts from here
                if now - first >= self.orphan_grace_s:
                    take.append(lease.name)
            if take:
                for name, (before, fence) in self.leases.claim(take, self.id).items():
                    key = lease_key(name)
                    st.orphan_seen.pop(key, None)
                    if role.handoff and key in st.moves:
                        role.cancel_prepare(key)  # a dead holder: start afresh, not from a standby
                        st.moves.pop(key, None)
                    log.info("cluster: %s %s taken %s", role.kind, key,
                             f"from {self._name(before.holder)} (down)" if before.holder else "(free)")
                    role.begin(key, fence, before, None)

        # 5. Planned moves: make-before-break for roles that can (recording); the others
        #    (analysis) give misplaced work back, and the node placement prefers takes it.
        if role.handoff:
            self._handoffs(role, st, held, now, full and settled)
        elif full and settled and not self.stopping:
            self._give_back(role, st, held)

    def _give_back(self, role: WorkRole, st: _RoleState, held: dict[str, Lease]) -> None:
        alive = {n.id for n in self.node_list if n.alive and n.state == ACTIVE}
        budget = max(self.max_moves, len(held) // 4)  # cheap to move: a quarter of it per pass at most
        for lease in held.values():
            if budget <= 0:
                break
            want = st.placement.get(lease.key)
            if want is None or want == self.id or want not in alive:
                continue
            role.end(lease.key, "moved")
            self.leases.release(lease.fence())
            budget -= 1
            log.info("cluster: %s %s given back for %s (placement)", role.kind, lease.key, self._name(want))

    def _handoffs(self, role: WorkRole, st: _RoleState, held: dict[str, Lease], now: float,
                  look_for_moves: bool) -> None:
        """``look_for_moves``: a full pass, this node settled: start moves where placement says so."""
        # As holder: stop where the taker's stream begins, and pass the lease on.
        for lease in held.values():
            if lease.handoff_to and lease.handoff_at_us and not role.handing_over(lease.key):
                role.hand_over(lease.key, lease.fence(), lease.handoff_to, lease.handoff_at_us)
        # As taker: report the first keyframe, give up on moves that failed or took too long.
        # Once the cut is published the holder may be finishing the hand-over: a move is then
        # given up only if the standby itself failed or the holder is far past its time, and
        # only when withdrawing it wins against the holder passing the lease (never both).
        mine = self.leases.handoffs_to(self.id)
        for name, lease in mine.items():
            key = lease.key
            if key not in st.moves:  # asked before a restart: nothing prepared here any more
                self.leases.cancel_handoff(name, self.id)
                continue
            failed = role.standby_failed(key)
            limit = self.move_timeout_s * (3 if lease.handoff_at_us else 1)
            if failed or now - st.moves[key] > limit:
                log.warning("cluster: planned move of %s %s to this node abandoned: %s", role.kind, key,
                            failed or "no answer in time")
                self._give_up_move(role, st, key, name, now)
                continue
            point = role.standby_point(key)
            if point and not lease.handoff_at_us:
                self.leases.publish_handoff_point(name, self.id, point)
        gone = [key for key in st.moves if lease_name(role.kind, key) not in mine and key not in role.running()]
        current = self.leases.get_many([lease_name(role.kind, key) for key in gone]) if gone else {}
        for key in gone:
            lease = current.get(lease_name(role.kind, key))
            if lease is not None and lease.holder == self.id and not lease.handoff_to:
                # The hand-over completed since this pass read its leases: the standby
                # becomes the recording now, from the cut.
                role.begin(key, lease.fence(), None, lease.start_at_us)
                st.moves.pop(key, None)
            elif now - st.moves[key] > 2 * self.tick_s + 1:
                # Cancelled by the holder, or the holder died (then the lease is an orphan).
                role.cancel_prepare(key)
                st.moves.pop(key, None)
        for key in [k for k in st.moves if k in role.running() and lease_name(role.kind, k) not in mine]:
            st.moves.pop(key, None)  # the move completed: the lease is ours
        # Start new moves where placement says this node and a live node holds the work.
        if not look_for_moves or self.stopping or not self.me or self.me.state != ACTIVE:
            return
        alive = {n.id for n in self.node_list if n.alive}
        budget = self.max_moves - len(st.moves)
        if budget <= 0:
            return
        placed_here = [lease_name(role.kind, key) for key, node in st.placement.items()
                       if node == self.id and lease_name(role.kind, key) not in held]
        for name, lease in sorted(self.leases.get_many(placed_here).items()):
            if budget <= 0:
                break
            key = lease.key
            if st.placement.get(key) != self.id or lease.holder in (None, self.id) or lease.holder not in alive:
                continue
            if lease.handoff_to is not None or key in st.moves:
                continue
            not_before, _ = st.backoff.get(key, (0.0, 0.0))
            if now < not_before:
                continue
            if self.leases.request_handoff(lease, self.id):
                st.moves[key] = now
                role.prepare(key)
                budget -= 1
                log.info("cluster: moving %s %s here from %s", role.kind, key, self._name(lease.holder))

    def _give_up_move(self, role: WorkRole, st: _RoleState, key: str, name: str, now: float) -> None:
        if not self.leases.cancel_handoff(name, self.id):
            return  # the holder passed the lease first: the move completed, the next pass begins it
        role.cancel_prepare(key)
        st.moves.pop(key, None)
        _, delay = st.backoff.get(key, (0.0, 30.0))
        st.backoff[key] = (now + delay, min(delay * 2, 600.0))

    # --- duties -------------------------------------------------------------------------------
    def _tick_duties(self, settled: bool) -> None:
        if not self.duties:
            return
        if self.stopping:
            return
        held = self.leases.held_by(self.id, "duty")
        for duty in self.duties:
            name = lease_name("duty", duty.name)
            if not duty.ensured:
                self.leases.ensure("duty", [duty.name])
                duty.ensured = True
            lease = held.get(name)
            if lease is None and duty.fence is not None:
                duty.fence = None
            if lease is None and settled:
                got = self.leases.claim([name], self.id)
                if name in got:
                    duty.fence = got[name][1]
                    log.info("cluster: this node now does %s", duty.name)
            elif lease is not None:
                duty.fence = lease.fence()
            if duty.fence is not None:
                try:
                    duty.run()
                except Exception:
                    log.exception("cluster duty %s failed", duty.name)

    # --- shutdown -----------------------------------------------------------------------------
    def hand_over_all(self, timeout_s: float) -> None:
        """A clean stop: let other nodes take this node's work make-before-break, up to
        ``timeout_s``; whatever is left is released (free at once) when the session ends."""
        self.stopping = True
        try:
            self.nodes.set_state(self.id, STOPPING)  # other nodes' placement leaves this one out
        except Exception as exc:
            log.warning("cluster: cannot announce the shutdown (%s); work is released instead", exc)
            return
        others = [n for n in self.node_list if n.alive and n.id != self.id and n.state == ACTIVE]
        if not others:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = self.leases.held_by(self.id)
            if not any(lease.kind in {r.kind for r in self.roles} for lease in left.values()):
                return
            time.sleep(0.5)

    def _name(self, node_id: str | None) -> str:
        for n in self.node_list:
            if n.id == node_id:
                return n.name
        return node_id or "nobody"
