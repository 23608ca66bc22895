"""The node registry: every node's roles, address, version, capacity and heartbeat (adapter).

A node's row is its session: ``expires_us`` (the database's clock) is pushed forward by
every heartbeat, and when it passes, the node is *down* and the leases it holds are free.
States an operator sets: ``active``, ``draining`` (its work moves away; it takes none);
a node shutting down cleanly is ``stopping`` (its work moves away first), then ``stopped``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from varta.db.dbclock import db_now
from varta.db.schema import cluster_nodes, leases

ROLES = ("recorder", "web", "analytics")
ACTIVE, DRAINING, STOPPING, STOPPED = "active", "draining", "stopping", "stopped"


class NodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeRow:
    id: str
    name: str
    hostname: str
    roles: tuple[str, ...]
    address: str
    version: str
    capacity: int
    groups: tuple[str, ...]
    takes_unpinned: bool
    state: str
    public_key: str
    wrap_key: str
    pid: int | None
    started_us: int
    heartbeat_us: int
    expires_us: int
    load: dict
    alive: bool  # its session has not lapsed (by the database's clock)

    @property
    def status(self) -> str:
        """What an operator sees: active | draining | stopping | down | stopped."""
        if self.state == STOPPED:
            return STOPPED
        if not self.alive:
            return "down"
        return self.state


def _plain(load: dict) -> dict:
    """The load as plain JSON (a number of an odd type must never cost the heartbeat)."""
    import json

    try:
        return json.loads(json.dumps(load, default=lambda o: float(o) if hasattr(o, "__float__") else str(o)))
    except (TypeError, ValueError):
        return {}


def _row(r, now: int) -> NodeRow:
    return NodeRow(id=r.id, name=r.name, hostname=r.hostname, roles=tuple(r.roles or ()), address=r.address,
                   version=r.version, capacity=r.capacity, groups=tuple(r.groups or ()),
                   takes_unpinned=r.takes_unpinned, state=r.state, public_key=r.public_key, wrap_key=r.wrap_key,
                   pid=r.pid, started_us=r.started_us, heartbeat_us=r.heartbeat_us, expires_us=r.expires_us,
                   load=r.load or {}, alive=r.expires_us >= now and r.state != STOPPED)


class NodeRegistry:
    def __init__(self, engine: Engine, ttl_us: int = 5_000_000):
        self.engine = engine
        self.ttl_us = ttl_us
        self.dialect = engine.dialect.name

    def _now(self):
        return db_now(self.dialect)

    def register(self, *, node_id: str, name: str, roles: list[str], address: str, version: str, capacity: int,
                 groups: list[str], takes_unpinned: bool, public_key: str, wrap_key: str, pid: int) -> NodeRow:
        """Start this node's session. On SQLite a second live node is refused: SQLite is the
        single-machine database (its file cannot be shared safely between machines)."""
        now = self._now()
        with self.engine.begin() as conn:
            t = conn.execute(select(now)).scalar_one()
            if self.dialect == "sqlite" and set(roles) & set(ROLES):
                other = conn.execute(select(cluster_nodes.c.name, cluster_nodes.c.hostname).where(
                    cluster_nodes.c.id != node_id, cluster_nodes.c.expires_us >= t,
                    cluster_nodes.c.state != STOPPED)).first()
                if other is not None:
                    raise NodeError(
                        f"node {other.name!r} (host {other.hostname}) already runs on this SQLite database. "
                        "SQLite is for a single machine: run one `varta serve`, or move to PostgreSQL "
                        "(VARTA_DATABASE_URL=postgresql://…) for several nodes")
            values = dict(name=name, hostname=socket.gethostname(), roles=list(roles), address=address,
                          version=version, capacity=capacity, groups=list(groups), takes_unpinned=takes_unpinned,
                          public_key=public_key, wrap_key=wrap_key, pid=pid, started_us=t, heartbeat_us=t,
                          expires_us=t + self.ttl_us, load={})
            existing = conn.execute(select(cluster_nodes.c.state).where(cluster_nodes.c.id == node_id)).first()
            if existing is None:
                conn.execute(cluster_nodes.insert().values(id=node_id, state=ACTIVE, **values))
            else:
                # A drain survives a restart (maintenance is not over until someone says so).
                state = DRAINING if existing.state == DRAINING else ACTIVE
                conn.execute(update(cluster_nodes).where(cluster_nodes.c.id == node_id)
                             .values(state=state, **values))
            return _row(conn.execute(select(cluster_nodes).where(cluster_nodes.c.id == node_id)).one(), t)

    def heartbeat(self, node_id: str, load: dict | None = None) -> tuple[NodeRow, bool]:
        """Renew the session; returns the row and whether the session had lapsed before
        this renewal (the node was frozen or cut off: its leases may have moved)."""
        now = self._now()
        with self.engine.begin() as conn:
            t = conn.execute(select(now)).scalar_one()
            prev = conn.execute(select(cluster_nodes.c.expires_us, cluster_nodes.c.state)
                                .where(cluster_nodes.c.id == node_id)).first()
            if prev is None:
                raise NodeError("this node's row is gone from the registry (forgotten by an operator?)")
            values = dict(heartbeat_us=t, expires_us=t + self.ttl_us)
            if load is not None:
                values["load"] = _plain(load)
            if prev.state == STOPPED:
                values["state"] = ACTIVE
            conn.execute(update(cluster_nodes).where(cluster_nodes.c.id == node_id).values(**values))
            row = conn.execute(select(cluster_nodes).where(cluster_nodes.c.id == node_id)).one()
            return _row(row, t), prev.expires_us < t

    def list(self) -> list[NodeRow]:
        with self.engine.connect() as conn:
            t = conn.execute(select(self._now())).scalar_one()
            return [_row(r, t) for r in conn.execute(select(cluster_nodes).order_by(cluster_nodes.c.name))]

    def get(self, name_or_id: str) -> NodeRow:
        rows = [n for n in self.list() if name_or_id in (n.id, n.name)]
        if not rows:
            raise NodeError(f"no node {name_or_id!r} (see `varta nodes`)")
        if len(rows) > 1:
            raise NodeError(f"several nodes are named {name_or_id!r}: give the id ({', '.join(n.id for n in rows)})")
        return rows[0]

    def set_state(self, name_or_id: str, state: str) -> NodeRow:
        node = self.get(name_or_id)
        with self.engine.begin() as conn:
            conn.execute(update(cluster_nodes).where(cluster_nodes.c.id == node.id).values(state=state))
        return self.get(node.id)

    def stopped(self, node_id: str) -> None:
        """A clean shutdown: the session ends now (its remaining leases are free at once)."""
        with self.engine.begin() as conn:
            conn.execute(update(cluster_nodes).where(cluster_nodes.c.id == node_id)
                         .values(state=STOPPED, expires_us=self._now() - 1))

    def forget(self, name_or_id: str) -> NodeRow:
        """Remove a node that will never return (its leases are freed in the same step)."""
        node = self.get(name_or_id)
        if node.alive:
            raise NodeError(f"node {node.name} is running; stop it first")
        with self.engine.begin() as conn:
            conn.execute(update(leases).where(leases.c.holder == node.id)
                         .values(holder=None, epoch=leases.c.epoch + 1))
            conn.execute(cluster_nodes.delete().where(cluster_nodes.c.id == node.id))
        return node

    def lease_counts(self) -> dict[str, dict[str, int]]:
        """node id → lease kind → how many it holds."""
        q = select(leases.c.holder, leases.c.kind, func.count()).where(leases.c.holder.is_not(None)) \
            .group_by(leases.c.holder, leases.c.kind)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for holder, kind, n in conn.execute(q):
                out.setdefault(holder, {})[kind] = n
        return out

    def names(self) -> dict[str, str]:
        """node id → name, for showing ids to people."""
        with self.engine.connect() as conn:
            return {r.id: r.name for r in conn.execute(select(cluster_nodes.c.id, cluster_nodes.c.name))}


def overview(engine, registry: "NodeRegistry", tz) -> list[dict]:
    """Every node as people see it (``varta nodes``, ``/api/nodes``, the Nodes page):
    id, name, roles, state, the cameras it records and analyses, heartbeat, load."""
    from varta.clock import format_time
    from varta.cluster.leases import ANALYSE, RECORD

    held: dict[str, dict[str, list[str]]] = {}
    handoffs: dict[str, int] = {}
    with engine.connect() as conn:
        for name, kind, holder, handoff_to in conn.execute(
                select(leases.c.name, leases.c.kind, leases.c.holder, leases.c.handoff_to)
                .where(leases.c.kind.in_((RECORD, ANALYSE)))):
            if holder:
                held.setdefault(holder, {}).setdefault(kind, []).append(name.split(":", 1)[1])
            if handoff_to:
                handoffs[handoff_to] = handoffs.get(handoff_to, 0) + 1
    out = []
    for n in registry.list():
        mine = held.get(n.id, {})
        out.append({
            "id": n.id, "name": n.name, "roles": list(n.roles), "state": n.status,
            "cameras": sorted(mine.get(RECORD, [])), "analysing": sorted(mine.get(ANALYSE, [])),
            "heartbeat": format_time(n.heartbeat_us, tz), "started": format_time(n.started_us, tz),
            "address": n.address, "version": n.version, "hostname": n.hostname, "capacity": n.capacity,
            "groups": list(n.groups), "moving_in": handoffs.get(n.id, 0), "load": n.load,
        })
    return out
