"""System alarms: storage and archive health raised to the operators (adapter).

Analytics events arrive in a later issue; these are the machine's own warnings
(storage forecast short of retention, disk full, footage freed early, damaged files).
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine, insert, select, update

from varta.clock import now_us
from varta.db.schema import system_alarms

log = logging.getLogger("varta.alarms")


class SystemAlarms:
    def __init__(self, engine: Engine, node: str):
        self.engine = engine
        self.node = node

    def raise_alarm(self, kind: str, severity: str, message: str, camera_id: str | None = None) -> int:
        (log.critical if severity == "critical" else log.warning)("%s: %s", kind, message)
        with self.engine.begin() as conn:
            res = conn.execute(
                insert(system_alarms).values(kind=kind, severity=severity, message=message, camera_id=camera_id,
                                             node=self.node, created_us=now_us())
            )
            return int(res.inserted_primary_key[0])

    def raise_once(self, kind: str, severity: str, message: str, camera_id: str | None = None) -> None:
        """Raise unless an alarm of this kind is already active (not cleared) on this node."""
        if not self.active(kind):
            self.raise_alarm(kind, severity, message, camera_id)

    def active(self, kind: str) -> bool:
        """An alarm of this kind is raised on this node and not cleared."""
        with self.engine.connect() as conn:
            return conn.execute(select(system_alarms.c.id).where(
                system_alarms.c.kind == kind, system_alarms.c.node == self.node,
                system_alarms.c.cleared_us.is_(None)).limit(1)).first() is not None

    def clear(self, kind: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(system_alarms)
                .where(system_alarms.c.kind == kind, system_alarms.c.node == self.node,
                       system_alarms.c.cleared_us.is_(None))
                .values(cleared_us=now_us())
            )

    def list(self, active_only: bool = False, limit: int = 200) -> list[dict]:
        q = select(system_alarms).order_by(system_alarms.c.created_us.desc()).limit(limit)
        if active_only:
            q = q.where(system_alarms.c.cleared_us.is_(None))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
