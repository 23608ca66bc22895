"""Track records in the database (adapter): written by the analytics worker (under the
camera's lease), searched by time first (the index), then by the other filters."""

from __future__ import annotations

from sqlalchemy import delete, insert, or_, select

from varta.clock import format_time
from varta.cluster.leases import check_fence
from varta.db.schema import track_records
from varta.search.query import TrackQuery


class TrackStore:
    def __init__(self, engine):
        self.engine = engine

    def insert(self, camera_id: str, records, worker: str = "", fence=None) -> int:
        if not records:
            return 0
        rows = [{"camera_id": camera_id, "label": r.label, "start_us": r.start_us, "end_us": r.end_us, "path": r.path,
                 "entry": r.entry, "exit": r.exit, "heading": r.heading, "compass": r.compass, "speed": r.speed,
                 "dwell_s": r.dwell_s, "colours": "," + ",".join(r.colours) + "," if r.colours else "",
                 "score": r.score, "thumbnail": r.thumbnail, "worker": worker} for r in records]
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            conn.execute(insert(track_records), rows)
        return len(rows)

    def search(self, q: TrackQuery, cameras: list[str]) -> list[dict]:
        """Tracks overlapping the window on these cameras, newest first."""
        c = track_records.c
        sql = (select(c.id, c.camera_id, c.label, c.start_us, c.end_us, c.path, c.entry, c.exit, c.heading,
                      c.compass, c.speed, c.dwell_s, c.colours, c.score, (c.thumbnail.is_not(None)).label("thumb"))
               .where(c.start_us < q.end_us, c.start_us >= q.start_us - 3600 * 1_000_000, c.end_us >= q.start_us,
                      c.camera_id.in_(cameras))
               .order_by(c.start_us.desc()).limit(q.limit))
        if q.classes:
            sql = sql.where(c.label.in_(q.classes))
        if q.headings:
            sql = sql.where(or_(c.compass.in_(q.headings), c.heading.in_(q.headings)))
        if q.colours:
            sql = sql.where(or_(*[c.colours.contains(f",{x},") for x in q.colours]))
        if q.entry:
            sql = sql.where(c.entry.in_(q.entry))
        if q.exit:
            sql = sql.where(c.exit.in_(q.exit))
        if q.min_speed is not None:
            sql = sql.where(c.speed >= q.min_speed)
        if q.min_dwell_s is not None:
            sql = sql.where(c.dwell_s >= q.min_dwell_s)
        if q.max_dwell_s is not None:
            sql = sql.where(c.dwell_s <= q.max_dwell_s)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sql)]

    def thumbnail(self, track_id: int) -> tuple[str, bytes | None] | None:
        c = track_records.c
        with self.engine.connect() as conn:
            r = conn.execute(select(c.camera_id, c.thumbnail).where(c.id == track_id)).first()
        return (r.camera_id, r.thumbnail) if r else None

    def delete_before(self, camera_id: str, before_us: int) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(track_records).where(track_records.c.camera_id == camera_id,
                                                            track_records.c.end_us < before_us)).rowcount or 0


def describe(row: dict, tz) -> dict:
    return {"id": row["id"], "camera_id": row["camera_id"], "label": row["label"],
            "start": format_time(row["start_us"], tz), "end": format_time(row["end_us"], tz),
            "path": row["path"], "entry": row["entry"], "exit": row["exit"], "heading": row["heading"],
            "compass": row["compass"], "speed": row["speed"], "dwell_s": row["dwell_s"],
            "colours": [x for x in (row["colours"] or "").split(",") if x], "score": row["score"],
            "thumbnail_url": f"/api/search/tracks/{row['id']}/thumbnail.jpg" if row["thumb"] else None}
