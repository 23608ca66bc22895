"""The archive index in the database: segments, outages and live camera state (adapter).

Queries are shaped for the two questions asked most: "which segment holds camera X at T"
and "what is recorded for X between T1 and T2". Both use the (camera_id, start_us) index
and a bound on segment length, so they touch only the rows they return.

Writes made while recording carry the camera's lease ``fence``: the transaction checks that
this node still holds the camera at that epoch before it writes (varta/cluster/leases.py),
so a node that lost the camera while frozen or cut off writes nothing more about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, case, delete, func, insert, select, update

from varta.cluster.leases import Fence, check_fence
from varta.clock import US, now_us
from varta.db.schema import camera_status, outages, segments, spans

# Segments of one ffmpeg run touch exactly; recovered segments are placed from file names
# with one-second precision. Closer than this counts as continuous footage.
JOIN_US = 1_000_000

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
    stored: str = "local"  # local | both | s3 (storage/layout.py)
    sha256: str | None = None

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
    def add_segment(self, fence: Fence | None = None, camera_state: dict | None = None, **values) -> int:
        """Index a segment; ``camera_state`` (set_status's arguments) updates the camera's
        live state in the same transaction: one lease check and one commit per segment."""
        values.setdefault("status", "ok")
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            res = conn.execute(insert(segments).values(**values))
            self._extend_spans(conn, values["camera_id"], values["start_us"], values["end_us"], values["bytes"])
            if camera_state is not None:
                self._write_status(conn, values["camera_id"], values["recorder"], **camera_state)
            return int(res.inserted_primary_key[0])

    # --- spans: continuous stretches, kept in step with the segments -----------------
    def _extend_spans(self, conn, camera_id: str, start: int, end: int, nbytes: int) -> None:
        """The common case, a segment appended at the live edge, extends the last span in
        place; anything else (a recovered file, an out-of-order insert) rebuilds locally."""
        last = conn.execute(
            select(spans).where(spans.c.camera_id == camera_id).order_by(spans.c.end_us.desc()).limit(1)
        ).first()
        if last is not None and last.start_us <= start and 0 <= start - last.end_us <= JOIN_US:
            conn.execute(update(spans).where(spans.c.id == last.id)
                         .values(end_us=max(end, last.end_us), bytes=spans.c.bytes + nbytes))
        elif last is None or start > last.end_us + JOIN_US:
            conn.execute(insert(spans).values(camera_id=camera_id, start_us=start, end_us=end, bytes=nbytes))
        else:
            self._rebuild_spans(conn, camera_id, start, end)

    def rebuild_spans(self, camera_id: str, t1: int, t2: int) -> None:
        with self.engine.begin() as conn:
            self._rebuild_spans(conn, camera_id, t1, t2)

    def _rebuild_spans(self, conn, camera_id: str, t1: int, t2: int) -> None:
        """Recompute the spans touching [t1, t2] from the segments there."""
        touching = conn.execute(
            select(spans).where(spans.c.camera_id == camera_id, spans.c.end_us >= t1 - JOIN_US,
                                spans.c.start_us <= t2 + JOIN_US)
        ).all()
        lo = min([t1] + [r.start_us for r in touching])
        hi = max([t2] + [r.end_us for r in touching])
        if touching:
            conn.execute(delete(spans).where(spans.c.id.in_([r.id for r in touching])))
        rows = conn.execute(
            select(segments.c.start_us, segments.c.end_us, segments.c.bytes)
            .where(segments.c.camera_id == camera_id, segments.c.start_us <= hi, segments.c.end_us >= lo,
                   segments.c.start_us > lo - MAX_SEGMENT_US, segments.c.status != "missing")
            .order_by(segments.c.start_us)
        ).all()
        merged: list[list[int]] = []
        for s_, e_, b_ in rows:
            if merged and s_ - merged[-1][1] <= JOIN_US:
                merged[-1][1] = max(merged[-1][1], e_)
                merged[-1][2] += b_
            else:
                merged.append([s_, e_, b_])
        if merged:
            conn.execute(insert(spans), [{"camera_id": camera_id, "start_us": a, "end_us": b, "bytes": n}
                                         for a, b, n in merged])

    def delete_segments(self, rows, fence: Fence | None = None) -> None:
        """Remove index rows (their files are already gone) and mend the spans around them;
        cameras in groups of 50 a transaction (a retention batch spans hundreds of cameras:
        one commit each would bound it at the disk's fsync rate)."""
        by_camera: dict[str, list] = {}
        for r in rows:
            by_camera.setdefault(r.camera_id, []).append(r)
        cams = list(by_camera)
        for g in range(0, len(cams), 50):
            group = cams[g:g + 50]
            with self.engine.begin() as conn:
                if fence is not None:
                    check_fence(conn, fence)
                ids = [r.id for c in group for r in by_camera[c]]
                for i in range(0, len(ids), 500):
                    conn.execute(delete(segments).where(segments.c.id.in_(ids[i:i + 500])))
                for camera_id in group:
                    self._mend_spans(conn, camera_id, by_camera[camera_id])

    def _mend_spans(self, conn, camera_id: str, rows) -> None:
        """The spans after deleting ``rows`` (already gone from the table). Retention deletes
        a camera's oldest stretch: nothing of the camera is left between the first deleted
        start and the last deleted end, so each span touching that cut loses a prefix or a
        suffix, or goes, found with two indexed look-ups — never by reading a span's segments
        (a 10-day span is 86,400 of them). Anything else is recomputed exactly."""
        a = min(r.start_us for r in rows)
        b = max(r.end_us for r in rows)
        if any(getattr(r, "bytes", None) is None or getattr(r, "status", None) is None for r in rows):
            return self._rebuild_spans(conn, camera_id, a, b)
        kept = segments.c.status != "missing"
        if conn.execute(select(segments.c.id).where(segments.c.camera_id == camera_id, segments.c.start_us >= a,
                                                    segments.c.start_us < b, kept).limit(1)).first():
            return self._rebuild_spans(conn, camera_id, a, b)  # not one stretch: recomputed
        touching = conn.execute(select(spans).where(spans.c.camera_id == camera_id, spans.c.end_us >= a,
                                                    spans.c.start_us <= b)).all()
        plan = []
        for sp in touching:
            gone = sum(r.bytes for r in rows if r.status != "missing" and sp.start_us <= r.start_us <= sp.end_us)
            left, right = sp.start_us < a, sp.end_us > b
            if left and right:  # cut out of the middle: recomputed
                return self._rebuild_spans(conn, camera_id, a, b)
            plan.append((sp, gone, left, right))
        for sp, gone, left, right in plan:
            edge = None
            if right:  # the stretch now begins at its first segment after the cut
                edge = conn.execute(select(func.min(segments.c.start_us)).where(
                    segments.c.camera_id == camera_id, segments.c.start_us >= b, segments.c.start_us <= sp.end_us,
                    kept)).scalar()
                values = {"start_us": edge}
            elif left:  # it now ends where its last segment before the cut ends
                edge = conn.execute(select(func.max(segments.c.end_us)).where(
                    segments.c.camera_id == camera_id, segments.c.start_us < a,
                    segments.c.start_us >= max(sp.start_us, a - MAX_SEGMENT_US), kept)).scalar()
                values = {"end_us": edge}
            if edge is None:
                conn.execute(delete(spans).where(spans.c.id == sp.id))
            else:
                conn.execute(update(spans).where(spans.c.id == sp.id).values(bytes=max(0, sp.bytes - gone), **values))

    def shorten_segment(self, seg: "Segment", end_us: int, nbytes: int, fence: Fence) -> None:
        """A segment cut short at ``end_us`` (its file already trimmed): a planned move ended
        this node's footage there, where the next node's begins."""
        with self.engine.begin() as conn:
            check_fence(conn, fence)
            # Shorter now: shipped again (the bucket's copy, if any, is the untrimmed one).
            conn.execute(update(segments).where(segments.c.id == seg.id)
                         .values(end_us=end_us, bytes=nbytes, stored="local", sha256=None, locked=False))
            self._rebuild_spans(conn, seg.camera_id, seg.start_us, seg.end_us)

    def overlaps(self, camera_id: str, t1: int, t2: int, tolerance_us: int = 0) -> list["Segment"]:
        """Indexed segments (any node's) overlapping [t1, t2] by more than ``tolerance_us``."""
        return [s for s in self.segments_between(camera_id, t1, t2)
                if min(s.end_us, t2) - max(s.start_us, t1) > tolerance_us]

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

    def ranges_between(self, camera_id: str, t1: int, t2: int) -> list[tuple[int, int]]:
        """Continuous recorded stretches in [t1, t2] (from the spans: a few rows a day)."""
        q = (
            select(spans.c.start_us, spans.c.end_us)
            .where(spans.c.camera_id == camera_id, spans.c.end_us > t1, spans.c.start_us < t2)
            .order_by(spans.c.start_us)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [(max(a, t1), min(b, t2)) for a, b in rows]

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

    def paths_since(self, camera_id: str, t: int, recorder: str | None = None) -> dict[str, Segment]:
        """Indexed files of a camera from ``t`` on (only those on node ``recorder``'s disk)."""
        q = select(segments).where(segments.c.camera_id == camera_id, segments.c.start_us >= t)
        if recorder is not None:
            q = q.where(segments.c.recorder == recorder)
        with self.engine.connect() as conn:
            return {r.path: _seg(r) for r in conn.execute(q)}

    def set_segment_status(self, segment_id: int, status: str) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(update(segments).where(segments.c.id == segment_id).values(status=status)
                               .returning(segments.c.camera_id, segments.c.start_us, segments.c.end_us)).first()
            if row is not None:
                self._rebuild_spans(conn, row.camera_id, row.start_us, row.end_us)

    def camera_totals(self) -> dict[str, tuple[int, int, int]]:
        """camera → (bytes, seconds recorded, oldest start), from the spans (a few rows each)."""
        q = (
            select(
                spans.c.camera_id,
                func.sum(spans.c.bytes),
                func.sum(spans.c.end_us - spans.c.start_us),
                func.min(spans.c.start_us),
            )
            .group_by(spans.c.camera_id)
        )
        with self.engine.connect() as conn:
            return {r[0]: (int(r[1] or 0), int((r[2] or 0) // US), int(r[3] or 0)) for r in conn.execute(q)}

    def node_totals(self, node: str) -> dict[str, tuple[int, int, int]]:
        """camera → (bytes, seconds, oldest start) of the footage on node ``node``'s disk."""
        q = (
            select(segments.c.camera_id, func.sum(segments.c.bytes),
                   func.sum(segments.c.end_us - segments.c.start_us), func.min(segments.c.start_us))
            .where(segments.c.recorder == node, segments.c.status != "missing")
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
        return float(total) * 8 / (float(dur) / US)  # PostgreSQL sums bigints as numeric (Decimal)

    # --- outages --------------------------------------------------------------------
    def open_outage(self, camera_id: str, start_us: int, reason: str, detail: str, recorder: str,
                    fence: Fence | None = None) -> None:
        """Start an outage; an open one with another reason is closed at ``start_us``.

        One open outage per camera at a time: a gap whose cause changes (recorder down,
        then camera refusing) is stored as consecutive outages, each with its own reason.
        """
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
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

    def record_outage(self, camera_id: str, start_us: int, end_us: int, reason: str, detail: str,
                      recorder: str) -> None:
        """A finished outage found after the fact (e.g. a recorded file that vanished)."""
        with self.engine.begin() as conn:
            conn.execute(insert(outages).values(camera_id=camera_id, start_us=start_us, end_us=end_us,
                                                reason=reason, detail=detail, recorder=recorder))

    def close_outage(self, camera_id: str, end_us: int, fence: Fence | None = None) -> None:
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
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
    def set_status(self, camera_id: str, recorder: str, state: str, reason: str = "", detail: str = "",
                   fence: Fence | None = None, **metrics) -> None:
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            self._write_status(conn, camera_id, recorder, state, reason, detail, **metrics)

    @staticmethod
    def _write_status(conn, camera_id: str, recorder: str, state: str, reason: str, detail: str, **metrics) -> None:
        """One UPDATE (``since`` moves only when the state or reason changes), an INSERT the
        first time."""
        t = now_us()
        values = dict(recorder=recorder, state=state, reason=reason, detail=detail, updated_us=t, **metrics)
        changed = (camera_status.c.state != state) | (camera_status.c.reason != reason)
        res = conn.execute(update(camera_status).where(camera_status.c.camera_id == camera_id)
                           .values(since_us=case((changed, t), else_=camera_status.c.since_us), **values))
        if res.rowcount == 0:
            conn.execute(insert(camera_status).values(camera_id=camera_id, since_us=t, **values))

    def statuses(self) -> dict[str, dict]:
        with self.engine.connect() as conn:
            return {r.camera_id: dict(r._mapping) for r in conn.execute(select(camera_status))}

    def status(self, camera_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(camera_status).where(camera_status.c.camera_id == camera_id)).first()
        return dict(row._mapping) if row else None

