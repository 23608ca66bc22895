"""Retention for the whole city: whole days of the index, and footage only in the bucket (adapter).

Each recorder's janitor (recording/janitor.py) expires what is on its own disk. Two things
belong to no one disk, and one node does them for the city (the ``archive_retention`` duty,
a lease with a fencing token; ``varta retention`` runs the same pass by hand):

* **Footage only in the bucket** (``stored = s3``), whichever node recorded it — a node
  that died, was replaced or forgotten included. Expired and not held: its objects are
  deleted in batches (DeleteObjects, every version), then its rows; what the bucket refuses
  keeps its row and is tried at the next pass.
* **Whole days of the index** (PostgreSQL, varta/db/partitions.py): the next days'
  partitions are prepared; a day in which every camera's footage has expired, that no
  active hold touches, and whose rows are all in the bucket only (or none are left) has its
  objects deleted and is then dropped in one statement — no row-by-row DELETE, no bloat,
  no vacuum behind it. The continuous stretches (``spans``) reaching into it are mended in
  the same transaction. A day that cannot go whole (a hold, a longer retention class, a
  dead node's unshipped files) is expired row by row like before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, select, text

from varta.clock import now_us
from varta.db import partitions as parts
from varta.db.schema import segments, spans
from varta.recording import retention
from varta.recording.index import MAX_SEGMENT_US, ArchiveIndex
from varta.recording.janitor import active_holds, retention_classes
from varta.storage import layout

log = logging.getLogger("varta.janitor")
BATCH = 500
BUCKET_BATCH = 2_000  # one camera's rows per batch (5.5 h of 10 s segments)
KEYS_PER_CALL = 5_000  # keys handed to one delete_many (5 DeleteObjects requests)


@dataclass
class ExpiryReport:
    days_dropped: int = 0
    day_rows: int = 0  # rows that went with the dropped days
    expired_deleted: int = 0  # rows of bucket-only footage deleted one by one
    held_kept: int = 0
    refused: int = 0  # objects the bucket kept (a legal hold, a retention period, the store away)
    partitions_made: int = 0

    @property
    def deleted(self) -> int:
        return self.day_rows + self.expired_deleted


class CityRetention:
    def __init__(self, engine, settings, store=None, alarms=None, every_s: float | None = None):
        self.engine = engine
        self.settings = settings
        self.store = store  # storage/objects.S3Store, or None (no bucket: whole days only)
        self.alarms = alarms
        self.every_s = every_s if every_s is not None else settings.janitor_interval_s
        self.index = ArchiveIndex(engine)
        self._last = 0.0

    def tick(self) -> None:
        """The duty's tick (every cluster tick): a pass every ``every_s``."""
        if time.monotonic() - self._last < self.every_s:
            return
        self._last = time.monotonic()
        rep = self.run_once()
        if rep.deleted or rep.days_dropped:
            log.info("city retention: %d day(s) of the index dropped (%d rows), %d bucket-only segments expired, "
                     "%d held kept, %d kept by the bucket", rep.days_dropped, rep.day_rows, rep.expired_deleted,
                     rep.held_kept, rep.refused)

    def run_once(self, now: int | None = None) -> ExpiryReport:
        now = now or now_us()
        rep = ExpiryReport()
        rep.partitions_made = parts.ensure_ahead(self.engine, now)
        holds = active_holds(self.engine)
        classes = retention_classes(self.engine)
        self._drop_days(now, holds, classes, rep)
        if self.store is not None:
            self._expire_bucket_rows(now, holds, classes, rep)
        if self.alarms is not None:
            if rep.refused:
                self.alarms.raise_once("archive_delete_refused", "warning",
                                       f"the archive bucket kept {rep.refused} expired object(s) it was asked to "
                                       "delete; they are tried again at the next pass")
            else:
                self.alarms.clear("archive_delete_refused")
        return rep

    # --- whole days ---------------------------------------------------------------------
    def _drop_days(self, now: int, holds, classes, rep: ExpiryReport) -> None:
        with self.engine.connect() as conn:
            if not parts.partitioned(conn):
                return
            days = parts.days(conn)
        cutoffs = [retention.cutoff_us(now, d) for d in classes]
        all_holds = [h for hs in holds.values() for h in hs]
        for day in days:
            if not retention.day_droppable(day.start_us, day.end_us, MAX_SEGMENT_US, cutoffs, all_holds):
                if cutoffs and day.end_us + MAX_SEGMENT_US > min(cutoffs):
                    break  # days are in order: the rest are younger
                continue
            with self.engine.connect() as conn:
                blocking = conn.execute(text(f"select 1 from {day.name} where stored <> :s or locked limit 1"),
                                        {"s": layout.S3}).first()
            if blocking:
                continue  # a node's own disk still has some of it: its janitor goes first
            if not self._delete_day_objects(day, rep):
                continue
            rep.day_rows += self._drop(day)
            rep.days_dropped += 1

    def _delete_day_objects(self, day: parts.Day, rep: ExpiryReport) -> bool:
        """Every object of the day's rows deleted (True), or some kept (False: the day is
        then expired row by row, which keeps the rows of what the bucket kept)."""
        with self.engine.connect() as conn:
            if not conn.execute(text(f"select 1 from {day.name} limit 1")).first():
                return True
            if self.store is None:
                log.error("city retention: %s holds footage in the archive bucket, but this node has no archive "
                          "settings (archive_storage = s3): kept", day.name)
                return False
            result = conn.execution_options(stream_results=True, yield_per=KEYS_PER_CALL).execute(
                text(f"select camera_id, path from {day.name} order by camera_id, path"))
            for chunk in result.partitions():
                kept = self.store.delete_many([layout.segment_key(r.camera_id, r.path) for r in chunk])
                if kept:
                    rep.refused += len(kept)
                    log.warning("city retention: the bucket kept %d object(s) of %s (first: %s: %s)", len(kept),
                                day.name, *next(iter(kept.items())))
                    return False
        return True

    def _drop(self, day: parts.Day) -> int:
        """Drop the day and mend the spans reaching into it, in one transaction: one scan of
        the day (per camera: first start, bytes), one look-up per span crossing into the
        next day (its new first segment), then the DROP — never a row-by-row DELETE."""
        with self.engine.begin() as conn:
            per_cam = {r.camera_id: r for r in conn.execute(text(
                f"select camera_id, min(start_us) as first, count(*) as n, "
                f"coalesce(sum(bytes) filter (where status <> 'missing'), 0) as bytes "
                f"from {day.name} group by camera_id"))}
            n = sum(r.n for r in per_cam.values())
            touched = conn.execute(text(
                "select s.id, s.camera_id, s.start_us, s.end_us, s.bytes, (select min(x.start_us) from segments x "
                "where x.camera_id = s.camera_id and x.start_us >= :e and x.start_us <= s.end_us "
                "and x.status <> 'missing') as next_start from spans s where s.end_us >= :s and s.start_us < :e"),
                {"s": day.start_us, "e": day.end_us}).all()
            parts.drop_day(conn, day)
            rebuild, gone, moved = set(), [], []
            for sp in touched:
                cam = per_cam.get(sp.camera_id)
                if cam is None:
                    continue  # nothing of this camera in the day (a span of the default partition's rows)
                if sp.start_us <= cam.first:
                    dropped = int(cam.bytes)
                else:  # the camera had a gap that day: this span's part of the day only
                    dropped = int(conn.execute(text(
                        "select coalesce(sum(bytes), 0) from segments where camera_id = :c and start_us >= :a "
                        "and start_us < :e and status <> 'missing'"),
                        {"c": sp.camera_id, "a": sp.start_us, "e": day.end_us}).scalar_one())
                action = retention.mend_span(sp.start_us, sp.end_us, sp.bytes, dropped, day.start_us, sp.next_start)
                if action[0] == "rebuild":
                    rebuild.add(sp.camera_id)
                elif action[0] == "delete":
                    gone.append(sp.id)
                else:
                    moved.append({"sid": sp.id, "ns": action[1], "nb": action[2]})
            for i in range(0, len(gone), 1000):
                conn.execute(spans.delete().where(spans.c.id.in_(gone[i:i + 1000])))
            if moved:
                conn.execute(spans.update().where(spans.c.id == bindparam("sid"))
                             .values(start_us=bindparam("ns"), bytes=bindparam("nb")), moved)
            for camera_id in rebuild:  # footage kept before the day (held): recomputed exactly
                self.index._rebuild_spans(conn, camera_id, day.start_us, day.end_us)
        log.info("city retention: dropped %s (%d rows)", day.name, n)
        return n

    # --- footage only in the bucket, row by row -----------------------------------------------
    def _expire_bucket_rows(self, now: int, holds, classes, rep: ExpiryReport) -> None:
        """Camera by camera, oldest first, on the (camera_id, start_us) index: a batch is one
        camera's stretch, so its spans are cut once per batch (a batch across hundreds of
        cameras would cost four statements a row: bench/RESULTS.md §11)."""
        for days, cams in classes.items():
            cutoff = retention.cutoff_us(now, days)
            for camera_id in cams:
                after = -1
                while True:
                    with self.engine.connect() as conn:
                        rows = conn.execute(
                            select(segments.c.id, segments.c.camera_id, segments.c.start_us, segments.c.end_us,
                                   segments.c.path, segments.c.bytes, segments.c.status, segments.c.stored)
                            .where(segments.c.camera_id == camera_id, segments.c.start_us < cutoff,
                                   segments.c.start_us > after)
                            .order_by(segments.c.start_us).limit(BUCKET_BATCH)).all()
                    if not rows:
                        break
                    after = rows[-1].start_us
                    due = [r for r in rows if r.stored == layout.S3 and r.end_us <= cutoff]
                    doomed = [r for r in due if not retention.is_held(r, holds.get(camera_id, ()))]
                    rep.held_kept += len(due) - len(doomed)
                    if doomed:
                        keys = {layout.segment_key(r.camera_id, r.path): r for r in doomed}
                        kept = self.store.delete_many(list(keys))
                        rep.refused += len(kept)
                        gone = [r for k, r in keys.items() if k not in kept]
                        self.index.delete_segments(gone)
                        rep.expired_deleted += len(gone)
                    if len(rows) < BUCKET_BATCH:
                        break
