"""The archive index in the database: segments, outages and live camera state (adapter).

Queries are shaped for the two questions asked most: "which segment holds camera X at T"
and "what is recorded for X between T1 and T2". Both use the (camera_id, start_us) index
and a bound on segment length, so they touch only the rows they return.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, insert, select, update

from varta.clock import US, now_us
from varta.db.schema import camera_status, outages, segments

# No segment is longer than this (ffmpeg cuts every segment_seconds ≤ 300 s at the next
# keyframe). It bounds index range scans: rows starting earlier cannot overlap T1.
MAX_SEGMENT_US = 15 * 60 * US


@dataclass(frozen=True)
class Segment:
    id: int
    camera_id: str
    start_us: int
    end_us: int
    path: str
    bytes: int
    init_bytes: int
    codec: str
    width: int | None
    height: int | None
    fps: float | None
    run_id: str
    recorder: str
    status: str

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True)
class Outage:
    id: int
    camera_id: str
    start_us: int
    end_us: int | None
    reason: str
    detail: str
    recorder: str


def _seg(row) -> Segment:
    return Segment(**{k: getattr(row, k) for k in Segment.__dataclass_fields__})


def _out(row) -> Outage:
    return Outage(**{k: getattr(row, k) for k in Outage.__dataclass_fields__})


class ArchiveIndex:
    def __init__(self, engine: Engine):
        self.engine = engine

    # --- segments -------------------------------------------------------------------
    def add_segment(self, **values) -> int:
        values.setdefault("status", "ok")
        with self.engine.begin() as conn:
            res = conn.execute(insert(segments).values(**values))
            return int(res.inserted_primary_key[0])

    def segments_between(self, camera_id: str, t1: int, t2: int, include_missing: bool = False) -> list[Segment]:
        q = (
            select(segments)
            .where(
                segments.c.camera_id == camera_id,
                segments.c.start_us < t2,
                segments.c.start_us > t1 - MAX_SEGMENT_US,
                segments.c.end_us > t1,
            )
            .order_by(segments.c.start_us)
        )
        if not include_missing:
            q = q.where(segments.c.status != "missing")
        with self.engine.connect() as conn:
            return [_seg(r) for r in conn.execute(q)]

    def segment_at(self, camera_id: str, t: int) -> Segment | None:
        """The segment that holds camera X at time T (or None in a gap)."""
        q = (
            select(segments)
            .where(
                segments.c.camera_id == camera_id,
                segments.c.start_us <= t,
                segments.c.start_us > t - MAX_SEGMENT_US,
                segments.c.status != "missing",
            )
            .order_by(segments.c.start_us.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None or row.end_us <= t:
            return None
        return _seg(row)

    def get_segment(self, segment_id: int) -> Segment | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(segments).where(segments.c.id == segment_id)).first()
        return _seg(row) if row else None

    def last_segment(self, camera_id: str) -> Segment | None:
        q = (
            select(segments)
            .where(segments.c.camera_id == camera_id)
            .order_by(segments.c.start_us.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _seg(row) if row else None

    def paths_since(self, camera_id: str, t: int) -> dict[str, Segment]:
        q = select(segments).where(segments.c.camera_id == camera_id, segments.c.start_us >= t)
        with self.engine.connect() as conn:
            return {r.path: _seg(r) for r in conn.execute(q)}

    def set_segment_status(self, segment_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(segments).where(segments.c.id == segment_id).values(status=status))

    def camera_totals(self) -> dict[str, tuple[int, int, int]]:
        """camera → (bytes, seconds recorded, oldest start) over present segments."""
        q = (
            select(
                segments.c.camera_id,
                func.sum(segments.c.bytes),
                func.sum(segments.c.end_us - segments.c.start_us),
                func.min(segments.c.start_us),
            )
            .where(segments.c.status != "missing")
            .group_by(segments.c.camera_id)
        )
        with self.engine.connect() as conn:
            return {r[0]: (int(r[1] or 0), int((r[2] or 0) // US), int(r[3] or 0)) for r in conn.execute(q)}

    def recent_bitrate_bps(self, camera_id: str, window_us: int = 3600 * US) -> float | None:
        t = now_us()
        q = select(func.sum(segments.c.bytes), func.sum(segments.c.end_us - segments.c.start_us)).where(
            segments.c.camera_id == camera_id, segments.c.start_us >= t - window_us, segments.c.status != "missing"
        )
        with self.engine.connect() as conn:
            total, dur = conn.execute(q).one()
        if not total or not dur:
            return None
        return total * 8 / (dur / US)

    # --- outages --------------------------------------------------------------------
    def open_outage(self, camera_id: str, start_us: int, reason: str, detail: str, recorder: str) -> None:
        """Start an outage; an open one with another reason is closed at ``start_us``.

        One open outage per camera at a time: a gap whose cause changes (recorder down,
        then camera refusing) is stored as consecutive outages, each with its own reason.
        """
        with self.engine.begin() as conn:
            current = conn.execute(
                select(outages).where(outages.c.camera_id == camera_id, outages.c.end_us.is_(None))
            ).first()
            if current is not None:
                if current.reason == reason:
                    conn.execute(update(outages).where(outages.c.id == current.id).values(detail=detail))
                    return
                conn.execute(
                    update(outages).where(outages.c.id == current.id).values(end_us=max(start_us, current.start_us))
                )
                start_us = max(start_us, current.start_us)
            conn.execute(
                insert(outages).values(
                    camera_id=camera_id, start_us=start_us, end_us=None, reason=reason, detail=detail, recorder=recorder
                )
            )

    def close_outage(self, camera_id: str, end_us: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(outages)
                .where(outages.c.camera_id == camera_id, outages.c.end_us.is_(None))
                .values(end_us=func.max(outages.c.start_us, end_us) if self.engine.dialect.name == "sqlite"
                        else func.greatest(outages.c.start_us, end_us))
            )

    def current_outage(self, camera_id: str) -> Outage | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(outages).where(outages.c.camera_id == camera_id, outages.c.end_us.is_(None))
            ).first()
        return _out(row) if row else None

    def outages_between(self, camera_id: str, t1: int, t2: int) -> list[Outage]:
        q = (
            select(outages)
            .where(
                outages.c.camera_id == camera_id,
                outages.c.start_us < t2,
                (outages.c.end_us.is_(None)) | (outages.c.end_us > t1),
            )
            .order_by(outages.c.start_us)
        )
        with self.engine.connect() as conn:
            return [_out(r) for r in conn.execute(q)]

    # --- live state -----------------------------------------------------------------
    def set_status(self, camera_id: str, recorder: str, state: str, reason: str = "", detail: str = "", **metrics) -> None:
        t = now_us()
        with self.engine.begin() as conn:
            row = conn.execute(select(camera_status).where(camera_status.c.camera_id == camera_id)).first()
            values = dict(recorder=recorder, state=state, reason=reason, detail=detail, updated_us=t, **metrics)
            if row is None:
                conn.execute(insert(camera_status).values(camera_id=camera_id, since_us=t, **values))
            else:
                if row.state != state or row.reason != reason:
                    values["since_us"] = t
                conn.execute(update(camera_status).where(camera_status.c.camera_id == camera_id).values(**values))

    def statuses(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.camera_id: dict(r._mapping) for r in conn.execute(select(camera_status))}

    def status(self, camera_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(camera_status).where(camera_status.c.camera_id == camera_id)).first()
        return dict(row._mapping) if row else None

