"""The camera registry in the database (adapter)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update

from varta.cameras.model import Camera, CameraError
from varta.cameras.schedule import Schedule
from varta.clock import now_us
from varta.db.schema import cameras
from varta.secrets import vault as secrets


URL = "cameras.url"  # stream addresses carry credentials: sealed at rest (varta/secrets)


def _row_to_camera(row, engine) -> Camera:
    return Camera(
        id=row.id,
        main_url=secrets.open_(engine, row.main_url, URL),
        name=row.name,
        kind=row.kind,
        address=row.address,
        latitude=row.latitude,
        longitude=row.longitude,
        group_name=row.group_name,
        sub_url=secrets.open_(engine, row.sub_url, URL),
        retention_days=row.retention_days,
        schedule=Schedule.from_json(row.schedule),
        recorder=row.recorder,
        enabled=row.enabled,
        view_direction=row.view_direction,
        view_angle=row.view_angle,
        view_range_m=row.view_range_m,
        sensitivity=row.sensitivity or "normal",
    )


def _values(cam: Camera, engine) -> dict:
    return {
        "name": cam.name,
        "kind": cam.kind,
        "address": cam.address,
        "latitude": cam.latitude,
        "longitude": cam.longitude,
        "group_name": cam.group_name,
        "main_url": secrets.seal(engine, cam.main_url, URL),
        "sub_url": secrets.seal(engine, cam.sub_url, URL),
        "retention_days": cam.retention_days,
        "schedule": cam.schedule.to_json(),
        "recorder": cam.recorder,
        "enabled": cam.enabled,
        "view_direction": cam.view_direction,
        "view_angle": cam.view_angle,
        "view_range_m": cam.view_range_m,
        "sensitivity": cam.sensitivity,
    }


class CameraRegistry:
    def __init__(self, engine: Engine):
        self.engine = engine

    def list(self, recorder: str | None = None, include_unassigned: bool = True,
             include_removed: bool = False) -> list[Camera]:
        """Cameras in the registry; with ``recorder``, those that node must record. Removed
        cameras only on request: their archive and events stay searchable."""
        q = select(cameras).order_by(cameras.c.id)
        if not include_removed:
            q = q.where(cameras.c.removed_us.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        cams = [_row_to_camera(r, self.engine) for r in rows]
        if recorder is not None:
            cams = [c for c in cams if c.recorder == recorder or (c.recorder is None and include_unassigned)]
        return cams

    def version(self) -> tuple[int, int]:
        """Changes whenever a camera is added, changed or removed (rows, and a checksum of
        every row's change time, not just the latest: nodes' clocks may disagree). Lets a
        node re-read the registry only when it changed: one aggregate per poll."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            n, check = conn.execute(select(func.count(), func.sum(cameras.c.updated_us % 1_000_000_007))).one()
        return int(n), int(check or 0)

    def get(self, camera_id: str, include_removed: bool = False) -> Camera | None:
        q = select(cameras).where(cameras.c.id == camera_id)
        if not include_removed:
            q = q.where(cameras.c.removed_us.is_(None))
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _row_to_camera(row, self.engine) if row else None

    def add(self, cam: Camera) -> Camera:
        cam.validated()
        t = now_us()
        with self.engine.begin() as conn:
            row = conn.execute(select(cameras.c.removed_us).where(cameras.c.id == cam.id)).first()
            if row and row.removed_us is None:
                raise CameraError(f"camera {cam.id} already exists")
            if row:  # re-adding a removed camera brings it back with its archive
                conn.execute(
                    update(cameras).where(cameras.c.id == cam.id).values(updated_us=t, removed_us=None, **_values(cam, self.engine))
                )
            else:
                conn.execute(insert(cameras).values(id=cam.id, created_us=t, updated_us=t, **_values(cam, self.engine)))
        return cam

    def upsert(self, cam: Camera) -> str:
        """Add or replace (import); returns ``added`` or ``updated``."""
        cam.validated()
        t = now_us()
        with self.engine.begin() as conn:
            exists = conn.execute(select(cameras.c.id).where(cameras.c.id == cam.id)).first()
            if exists:
                conn.execute(
                    update(cameras).where(cameras.c.id == cam.id).values(updated_us=t, removed_us=None, **_values(cam, self.engine))
                )
                return "updated"
            conn.execute(insert(cameras).values(id=cam.id, created_us=t, updated_us=t, **_values(cam, self.engine)))
            return "added"

    def update(self, camera_id: str, **changes) -> Camera:
        cam = self.get(camera_id)
        if cam is None:
            raise CameraError(f"no camera {camera_id}")
        for key, value in changes.items():
            if not hasattr(cam, key):
                raise CameraError(f"unknown camera field {key!r}")
            setattr(cam, key, value)
        cam.validated()
        with self.engine.begin() as conn:
            conn.execute(update(cameras).where(cameras.c.id == camera_id).values(updated_us=now_us(), **_values(cam, self.engine)))
        return cam

    def remove(self, camera_id: str) -> None:
        """Remove the camera: recording stops and it leaves the lists.

        Its recordings are not touched: they stay playable and exportable and are deleted
        by retention like any other footage (held intervals stay held), so a typo in a
        removal never destroys evidence.
        """
        with self.engine.begin() as conn:
            res = conn.execute(
                update(cameras)
                .where(cameras.c.id == camera_id, cameras.c.removed_us.is_(None))
                .values(removed_us=now_us(), updated_us=now_us())
            )
            if res.rowcount == 0:
                raise CameraError(f"no camera {camera_id}")
