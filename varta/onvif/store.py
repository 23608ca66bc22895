"""ONVIF devices, PTZ control and their alarms in the database (adapter)."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from varta.clock import now_us
from varta.db.schema import onvif_devices, ptz_control, system_alarms
from varta.onvif.ptzlock import Lock
from varta.secrets import vault as secrets

SECRET = ("password",)


class OnvifStore:
    def __init__(self, engine):
        self.engine = engine

    def _seal(self, row: dict) -> dict:
        # The device password is sealed at rest with the instance's secrets key (varta/secrets).
        return {**row, **{k: secrets.seal(self.engine, row[k], f"onvif_devices.{k}") for k in SECRET if k in row}}

    def add(self, row: dict) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(onvif_devices).values(**self._seal(row), added_us=now_us()))

    def get(self, camera_id: str, with_secrets: bool = False) -> dict | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(onvif_devices).where(onvif_devices.c.camera_id == camera_id)).mappings().first()
        return None if r is None else self._out(dict(r), with_secrets)

    def all(self, with_secrets: bool = False) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(onvif_devices).order_by(onvif_devices.c.camera_id)).mappings().all()
        return [self._out(dict(r), with_secrets) for r in rows]

    def _out(self, r: dict, with_secrets: bool) -> dict:
        for k in SECRET:
            if with_secrets:
                r[k] = secrets.open_(self.engine, r.get(k), f"onvif_devices.{k}")
            else:
                r.pop(k, None)
        return r

    def update(self, camera_id: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(onvif_devices).where(onvif_devices.c.camera_id == camera_id)
                         .values(**self._seal(values)))

    def remove(self, camera_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(onvif_devices).where(onvif_devices.c.camera_id == camera_id))
            conn.execute(delete(ptz_control).where(ptz_control.c.camera_id == camera_id))

    # ---------------------------------------------------------------- PTZ control

    def lock(self, camera_id: str) -> tuple[Lock | None, dict]:
        with self.engine.connect() as conn:
            r = conn.execute(select(ptz_control).where(ptz_control.c.camera_id == camera_id)).mappings().first()
        if r is None:
            return None, {"last_command_us": 0, "away": False}
        lock = Lock(r["holder"], r["full_name"], r["role"], r["expires_us"]) if r["holder"] else None
        return lock, {"last_command_us": r["last_command_us"], "away": bool(r["away"])}

    def take(self, camera_id: str, expected: Lock | None, login: str, full_name: str, role: str, until_us: int,
             away: bool | None = None) -> bool:
        """Hold the control if it is still as read (compare-and-set: two web nodes, one holder)."""
        t = now_us()
        values = {"holder": login, "full_name": full_name[:300], "role": role, "expires_us": until_us,
                  "last_command_us": t}
        if away is not None:
            values["away"] = away
        c = ptz_control.c
        with self.engine.begin() as conn:
            row = conn.execute(select(c.holder, c.expires_us).where(c.camera_id == camera_id)).first()
            if row is None:
                conn.execute(insert(ptz_control).values(camera_id=camera_id, **{"away": bool(away), **values}))
                return True
            q = update(ptz_control).where(c.camera_id == camera_id)
            if expected is None:
                q = q.where((c.holder.is_(None)) | (c.expires_us <= t) | (c.holder == login))
            else:
                q = q.where(c.holder == expected.holder, c.expires_us == expected.expires_us)
            return conn.execute(q.values(**values)).rowcount == 1

    def release(self, camera_id: str, login: str | None = None) -> None:
        c = ptz_control.c
        q = update(ptz_control).where(c.camera_id == camera_id)
        if login is not None:
            q = q.where(c.holder == login)
        with self.engine.begin() as conn:
            conn.execute(q.values(holder=None, expires_us=0))

    def homed(self, camera_id: str) -> None:
        with self.engine.begin() as conn:
            # Varta itself turned it: a command like any other (analytics relearn the view).
            conn.execute(update(ptz_control).where(ptz_control.c.camera_id == camera_id)
                         .values(away=False, last_command_us=now_us()))

    def away(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(ptz_control).where(ptz_control.c.away.is_(True))).mappings()]

    # ---------------------------------------------------------------- alarms, one per camera and kind

    def alarm(self, kind: str, camera_id: str, message: str, node: str, severity: str = "warning") -> bool:
        """Raise unless the same kind is already raised for this camera (True when raised)."""
        sa = system_alarms.c
        with self.engine.begin() as conn:
            if conn.execute(select(sa.id).where(sa.kind == kind, sa.camera_id == camera_id,
                                                sa.cleared_us.is_(None)).limit(1)).first():
                return False
            conn.execute(insert(system_alarms).values(kind=kind, severity=severity, camera_id=camera_id,
                                                      message=message, node=node, created_us=now_us()))
            return True

    def clear(self, kind: str, camera_id: str) -> None:
        sa = system_alarms.c
        with self.engine.begin() as conn:
            conn.execute(update(system_alarms).where(sa.kind == kind, sa.camera_id == camera_id,
                                                     sa.cleared_us.is_(None)).values(cleared_us=now_us()))
