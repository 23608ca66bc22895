"""Leases with fencing tokens, in the database (adapter).

A lease names one piece of the cluster's work (``record:<camera>``, ``analyse:<camera>``,
``job:<id>``, ``duty:<name>``) and the node doing it. It is held while the holder's session
lives (``cluster_nodes.expires_us``, on the database's clock, renewed by one heartbeat per
node per tick); a lease whose holder's session lapsed is free for the taking. Taking it
raises ``epoch``: the fencing token. Every write made under a lease checks, in its own
transaction, that holder and epoch are still what the writer was given (:func:`check_fence`),
so a node that froze or was cut off and then woke up cannot write into the archive after
its camera moved: its first write fails with :class:`Fenced` and it stops.

Why sessions and not an expiry per lease: one heartbeat row per node renews all its
leases, so 6,000 cameras on 30 nodes cost 30 row updates a tick instead of 6,000 (and the
claim of a dead node's cameras is one indexed query). Chubby, ZooKeeper and Consul tie
locks to sessions the same way.

Claims use ``SELECT … FOR UPDATE SKIP LOCKED``: two nodes racing for the same lease never
wait on each other, and exactly one wins. Writes under a lease take ``FOR KEY SHARE`` on
its row, which a renewal (a non-key update elsewhere) never waits for, while a change of
holder (``FOR UPDATE``) waits for writes in flight to finish.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine

from varta.db.dbclock import db_now
from varta.db.schema import cluster_nodes, leases

RECORD, ANALYSE, JOB, DUTY = "record", "analyse", "job", "duty"


def lease_name(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def lease_key(name: str) -> str:
    return name.split(":", 1)[1]


class Fenced(RuntimeError):
    """The lease moved on: this node may no longer write under it."""


@dataclass(frozen=True)
class Fence:
    """What a writer was given: the lease, its holder and the epoch (fencing token)."""

    name: str
    holder: str
    epoch: int


@dataclass(frozen=True)
class Lease:
    name: str
    kind: str
    holder: str | None
    epoch: int
    acquired_us: int | None = None
    start_at_us: int | None = None
    handoff_to: str | None = None
    handoff_at_us: int | None = None
    handoff_since_us: int | None = None

    @property
    def key(self) -> str:
        return lease_key(self.name)

    def fence(self) -> Fence:
        return Fence(self.name, self.holder or "", self.epoch)


def _lease(row) -> Lease:
    return Lease(**{k: getattr(row, k) for k in Lease.__dataclass_fields__})


def check_fence(conn: Connection, fence: Fence) -> None:
    """Inside the caller's transaction: raise :class:`Fenced` unless the lease is still held
    by ``fence.holder`` at ``fence.epoch``. The row stays share-locked until the caller
    commits, so the lease cannot change hands between this check and the caller's write."""
    q = select(leases.c.holder, leases.c.epoch).where(leases.c.name == fence.name)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(read=True, key_share=True)
    row = conn.execute(q).first()
    if row is None or row.holder != fence.holder or row.epoch != fence.epoch:
        now = "nobody" if row is None or row.holder is None else f"node {row.holder} at epoch {row.epoch}"
        raise Fenced(f"{fence.name}: held by {now}, not by this node at epoch {fence.epoch}")


def _insert_ignore(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(leases)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(leases)


class LeaseStore:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name

    def _now(self):
        return db_now(self.dialect)

    # --- reading ----------------------------------------------------------------------
    def get(self, name: str) -> Lease | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).first()
        return _lease(row) if row else None

    def held_by(self, node_id: str, kind: str | None = None) -> dict[str, Lease]:
        q = select(leases).where(leases.c.holder == node_id)
        if kind:
            q = q.where(leases.c.kind == kind)
        with self.engine.connect() as conn:
            return {r.name: _lease(r) for r in conn.execute(q)}

    def get_many(self, names: list[str]) -> dict[str, Lease]:
        out: dict[str, Lease] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(names), 1000):
                out.update({r.name: _lease(r) for r in conn.execute(
                    select(leases).where(leases.c.name.in_(names[i:i + 1000])))})
        return out

    def names(self, kind: str) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(leases.c.name).where(leases.c.kind == kind))]

    def of_kind(self, kind: str) -> dict[str, Lease]:
        with self.engine.connect() as conn:
            return {r.name: _lease(r) for r in conn.execute(select(leases).where(leases.c.kind == kind))}

    def handoffs_to(self, node_id: str) -> dict[str, Lease]:
        with self.engine.connect() as conn:
            return {r.name: _lease(r) for r in conn.execute(select(leases).where(leases.c.handoff_to == node_id))}

    def _free(self, now):
        """Free, or held by a node whose session lapsed. (Node rows are never deleted while
        they hold leases: ``varta nodes forget`` frees them first.) Both halves use the
        holder index: there are few dead nodes at any time."""
        dead = select(cluster_nodes.c.id).where(cluster_nodes.c.expires_us < now)
        return or_(leases.c.holder.is_(None), leases.c.holder.in_(dead))

    def orphans(self, kind: str) -> list[Lease]:
        """Leases of ``kind`` that nobody holds, or whose holder's session has lapsed."""
        q = select(leases).where(leases.c.kind == kind, self._free(self._now()))
        with self.engine.connect() as conn:
            return [_lease(r) for r in conn.execute(q)]

    # --- making and taking ---------------------------------------------------------------
    def ensure(self, kind: str, keys: list[str]) -> None:
        """Free lease rows for these keys where none exists yet (existing rows untouched)."""
        if not keys:
            return
        rows = [{"name": lease_name(kind, k), "kind": kind, "holder": None, "epoch": 0} for k in keys]
        with self.engine.begin() as conn:
            for i in range(0, len(rows), 1000):
                conn.execute(_insert_ignore(self.dialect).values(rows[i:i + 1000]).on_conflict_do_nothing())

    def create_held(self, kind: str, key: str, node_id: str) -> Fence:
        """A new lease, held at once by ``node_id`` (a job its node starts itself)."""
        name = lease_name(kind, key)
        with self.engine.begin() as conn:
            conn.execute(insert(leases).values(name=name, kind=kind, holder=node_id, epoch=1,
                                               acquired_us=self._now()))
        return Fence(name, node_id, 1)

    def claim(self, names: list[str], node_id: str) -> dict[str, tuple[Lease, Fence]]:
        """Take those of ``names`` that are free or whose holder's session lapsed.

        Returns name → (the lease as it was, the new fence). Rows another node is taking
        at this instant are skipped, not waited for."""
        if not names:
            return {}
        now = self._now()
        out: dict[str, tuple[Lease, Fence]] = {}
        with self.engine.begin() as conn:
            q = select(leases).where(leases.c.name.in_(names), self._free(now))
            if self.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = conn.execute(q).all()
            for i in range(0, len(rows), 1000):  # the rows are locked: one UPDATE takes them all
                part = [r.name for r in rows[i:i + 1000]]
                conn.execute(update(leases).where(leases.c.name.in_(part)).values(
                    holder=node_id, epoch=leases.c.epoch + 1, acquired_us=now, start_at_us=None,
                    handoff_to=None, handoff_at_us=None, handoff_since_us=None))
            for row in rows:
                out[row.name] = (_lease(row), Fence(row.name, node_id, row.epoch + 1))
        return out

    def release(self, fence: Fence) -> bool:
        """Give the lease up (free at once for another node); False if it had moved on."""
        with self.engine.begin() as conn:
            res = conn.execute(update(leases).where(leases.c.name == fence.name, leases.c.holder == fence.holder,
                                                    leases.c.epoch == fence.epoch)
                               .values(holder=None, epoch=fence.epoch + 1, acquired_us=self._now(),
                                       start_at_us=None, handoff_to=None, handoff_at_us=None,
                                       handoff_since_us=None))
            return res.rowcount == 1

    def drop(self, fence: Fence) -> None:
        """Delete a finished job's lease (only while still held at this epoch)."""
        with self.engine.begin() as conn:
            conn.execute(delete(leases).where(leases.c.name == fence.name, leases.c.holder == fence.holder,
                                              leases.c.epoch == fence.epoch))

    # --- planned moves (make before break) ----------------------------------------------------
    def request_handoff(self, lease: Lease, to: str) -> bool:
        """The node that should hold ``lease`` asks its live holder to hand it over."""
        with self.engine.begin() as conn:
            res = conn.execute(update(leases).where(
                leases.c.name == lease.name, leases.c.holder == lease.holder, leases.c.epoch == lease.epoch,
                leases.c.handoff_to.is_(None)).values(handoff_to=to, handoff_at_us=None,
                                                      handoff_since_us=self._now()))
            return res.rowcount == 1

    def publish_handoff_point(self, name: str, to: str, at_us: int) -> bool:
        """The taker's own stream runs: the holder stops at ``at_us`` (the taker's first keyframe)."""
        with self.engine.begin() as conn:
            res = conn.execute(update(leases).where(leases.c.name == name, leases.c.handoff_to == to)
                               .values(handoff_at_us=at_us))
            return res.rowcount == 1

    def complete_handoff(self, fence: Fence, to: str, at_us: int) -> Fence | None:
        """The holder stopped at ``at_us``: the lease passes to ``to`` with a new epoch."""
        with self.engine.begin() as conn:
            res = conn.execute(update(leases).where(
                leases.c.name == fence.name, leases.c.holder == fence.holder, leases.c.epoch == fence.epoch,
                leases.c.handoff_to == to).values(
                holder=to, epoch=fence.epoch + 1, acquired_us=self._now(), start_at_us=at_us,
                handoff_to=None, handoff_at_us=None, handoff_since_us=None))
            return Fence(fence.name, to, fence.epoch + 1) if res.rowcount == 1 else None

    def cancel_handoff(self, name: str, to: str) -> bool:
        """Withdraw a planned move to ``to``; False when there was none (it may have completed:
        then the lease is ``to``'s)."""
        with self.engine.begin() as conn:
            res = conn.execute(update(leases).where(leases.c.name == name, leases.c.handoff_to == to)
                               .values(handoff_to=None, handoff_at_us=None, handoff_since_us=None))
            return res.rowcount == 1

    def stale_handoffs(self, older_than_us: int) -> list[Lease]:
        """Planned moves asked for more than ``older_than_us`` ago (DB clock) and not done."""
        q = select(leases).where(leases.c.handoff_to.is_not(None),
                                 leases.c.handoff_since_us < self._now() - older_than_us)
        with self.engine.connect() as conn:
            return [_lease(r) for r in conn.execute(q)]
