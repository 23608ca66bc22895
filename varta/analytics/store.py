"""Cameras' analytics settings and the workers' status rows (database adapter)."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select, update

from varta.analytics.config import AnalyticsConfig, parse_config
from varta.clock import now_us
from varta.db.schema import analytics_config, analytics_status


class AnalyticsSettings:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get_raw(self, camera_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(analytics_config.c.config)
                               .where(analytics_config.c.camera_id == camera_id)).first()
        return row[0] if row else None

    def get(self, camera_id: str) -> AnalyticsConfig:
        return parse_config(self.get_raw(camera_id))

    def all_raw(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.camera_id: r.config for r in conn.execute(select(analytics_config))}

    def set(self, camera_id: str, data: dict) -> AnalyticsConfig:
        """Validate and store; raises AnalyticsError with the reason when invalid."""
        cfg = parse_config(data)
        stored = cfg.to_json()
        with self.engine.begin() as conn:
            done = conn.execute(update(analytics_config).where(analytics_config.c.camera_id == camera_id)
                                .values(config=stored, updated_us=now_us())).rowcount
            if not done:
                conn.execute(insert(analytics_config).values(camera_id=camera_id, config=stored,
                                                             updated_us=now_us()))
        return cfg

    def clear(self, camera_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(analytics_config).where(analytics_config.c.camera_id == camera_id))

    # --- status -------------------------------------------------------------------------
    def set_status(self, camera_id: str, worker: str, state: str, detail: str, target_fps: float,
                   actual_fps: float = 0.0, detect_fps: float = 0.0, since_us: int | None = None,
                   allowed_fps: float | None = None, lag_s: float | None = None) -> None:
        """``since_us``: when this unbroken run of analysis began (kept from the last call if None)."""
        t = now_us()
        values = dict(worker=worker, state=state, detail=detail, target_fps=target_fps,
                      actual_fps=round(actual_fps, 2), detect_fps=round(detect_fps, 2), updated_us=t,
                      allowed_fps=round(allowed_fps, 2) if allowed_fps is not None else None,
                      lag_s=round(lag_s, 2) if lag_s is not None else None)
        if since_us is not None:
            values["since_us"] = since_us
        with self.engine.begin() as conn:
            done = conn.execute(update(analytics_status).where(analytics_status.c.camera_id == camera_id)
                                .values(**values)).rowcount
            if not done:
                values.setdefault("since_us", t)
                conn.execute(insert(analytics_status).values(camera_id=camera_id, **values))

    def status(self, camera_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(analytics_status).where(analytics_status.c.camera_id == camera_id)).first()
        return dict(row._mapping) if row else None

    def statuses(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.camera_id: dict(r._mapping) for r in conn.execute(select(analytics_status))}
