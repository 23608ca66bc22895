"""The janitor: retention, free space and the storage forecast, in the background (adapter).

It only deletes files and index rows; it never touches the ffmpeg processes, so recording
goes on undisturbed while it works. Rows are deleted after their file, so a crash in between
leaves at worst an index row marked missing at the next reconciliation, never an orphan file
that nobody would ever delete.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, true, tuple_, update

from varta.cameras.registry import CameraRegistry
from varta.clock import US, format_time, now_us, to_datetime
from varta.db.schema import cameras as cameras_table
from varta.db.schema import holds as holds_table
from varta.db.schema import segments
from varta.events.system_alarms import SystemAlarms
from varta.recording import retention
from varta.recording.index import ArchiveIndex
from varta.storage import layout

log = logging.getLogger("varta.janitor")
BATCH = 500


@dataclass
class JanitorReport:
    expired_deleted: int = 0
    expired_bytes: int = 0
    early_deleted: int = 0
    early_bytes: int = 0
    held_kept: int = 0
    quiet_deleted: int = 0  # motion/events modes: footage with no activity near it
    quiet_bytes: int = 0
    events_deleted: int = 0  # analytics events (and their pictures) past retention
    tracks_deleted: int = 0  # track records (search) past retention
    cache_released_bytes: int = 0  # local copies of shipped segments released (the bucket has them)
    forecast: retention.StorageForecast | None = None
    messages: list[str] = field(default_factory=list)


def active_holds(engine) -> dict[str, list[retention.Hold]]:
    """camera → the intervals active holds keep."""
    q = select(holds_table).where(holds_table.c.released_us.is_(None))
    out: dict[str, list[retention.Hold]] = {}
    with engine.connect() as conn:
        for h in conn.execute(q):
            out.setdefault(h.camera_id, []).append(retention.Hold(h.start_us, h.end_us))
    return out


def retention_classes(engine) -> dict[int, list[str]]:
    """retention days → the cameras kept that long (removed cameras included: their
    footage expires like any other). A city has a handful of classes, not one per camera."""
    with engine.connect() as conn:
        rows = conn.execute(select(cameras_table.c.id, cameras_table.c.retention_days)).all()
    classes: dict[int, list[str]] = {}
    for r in rows:
        classes.setdefault(r.retention_days, []).append(r.id)
    return classes


@dataclass
class StorageState:
    usage: shutil._ntuple_diskusage
    reserve_bytes: int
    totals: dict[str, tuple[int, int, int]]  # camera → (bytes, seconds, oldest start)
    bitrates_bps: dict[str, float]
    forecast: retention.StorageForecast


def measure_storage(index: ArchiveIndex, registry: CameraRegistry, settings, node: str,
                    cameras: list[str] | None = None) -> StorageState:
    """This node's disk against the cameras it records (janitor and API alike).

    In a cluster each recorder has its own disk: the footage on it (``segments.recorder``)
    and the cameras it records now (its leases) are what its forecast compares, never the
    whole city's cameras with one node's disk."""
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    usage = shutil.disk_usage(settings.recordings_dir)
    all_cams = {c.id: c for c in registry.list(include_removed=True)}
    mine = cameras if cameras is not None else [c.id for c in all_cams.values() if c.enabled]
    cams = [all_cams[c] for c in mine if c in all_cams]
    totals = index.node_totals(node)
    bitrates = {c.id: b for c in cams if c.enabled and (b := index.recent_bitrate_bps(c.id))}
    reserve = retention.free_target_bytes(usage.total, settings.min_free_percent, settings.min_free_mb)
    fc = retention.forecast(usage.free, sum(t[0] for t in totals.values()), reserve, bitrates,
                            {c.id: c.retention_days for c in cams})
    return StorageState(usage, reserve, totals, bitrates, fc)


def storage_summary(st: StorageState) -> dict:
    """What a node publishes about its disk in its heartbeat (the Nodes page, the API)."""
    fc = st.forecast
    return {"disk_total_bytes": st.usage.total, "disk_free_bytes": st.usage.free, "reserve_bytes": st.reserve_bytes,
            "archive_bytes": fc.used_bytes, "daily_bytes": round(fc.daily_bytes),
            "days_capacity": round(fc.days_capacity, 2) if fc.days_capacity is not None else None,
            "required_days": fc.required_days, "short": fc.short}


class Janitor:
    def __init__(self, engine, settings, node: str, held_cameras=None, store=None):
        self.engine = engine
        self.settings = settings
        self.index = ArchiveIndex(engine)
        self.registry = CameraRegistry(engine)
        self.alarms = SystemAlarms(engine, node)
        # Each recorder looks after its own disk: only segments it wrote are its to delete
        # (``node`` is the node's stable id, so a renamed host still expires its footage).
        self.node = node
        self.held_cameras = held_cameras  # the cameras this node records now (its leases)
        self.store = store  # the archive bucket (storage/objects.S3Store), or None: local disks only
        self.last_storage: StorageState | None = None
        self.root: Path = settings.recordings_dir
        self._wake = threading.Event()
        self._urgent = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- background loop ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """Run now: a recorder could not write (disk full), so free space even if the
        configured reserve is still nominally there (it may be zero, or another program
        may have filled the disk)."""
        self._urgent = True
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("janitor pass failed; will retry")
            self._wake.wait(self.settings.janitor_interval_s)
            self._wake.clear()

    # --- one pass -------------------------------------------------------------------
    def run_once(self, now: int | None = None) -> JanitorReport:
        with self._lock:
            now = now or now_us()
            report = JanitorReport()
            holds = self._active_holds()
            self._apply_retention(now, holds, report)
            self._apply_activity_modes(now, holds, report)
            self._expire_events(now, holds, report)
            self._release_cache(now, report)
            self._ensure_free_space(holds, report)
            self._update_forecast(report)
            return report

    def _active_holds(self) -> dict[str, list[retention.Hold]]:
        return active_holds(self.engine)

    def _retention_classes(self) -> dict[int, list[str]]:
        return retention_classes(self.engine)

    def _apply_retention(self, now: int, holds, report: JanitorReport) -> None:
        """One paged scan of this node's own expired footage per retention class, on the
        (recorder, start_us) index: the cost follows what expires, not the city's camera count."""
        for days, cams in self._retention_classes().items():
            cutoff = retention.cutoff_us(now, days)
            after = (-1, -1)
            while True:
                q = (
                    select(segments.c.id, segments.c.camera_id, segments.c.start_us, segments.c.end_us,
                           segments.c.path, segments.c.bytes, segments.c.stored, segments.c.status)
                    # start_us < cutoff bounds the index scan to the expired part only.
                    .where(segments.c.recorder == self.node, segments.c.start_us < cutoff,
                           segments.c.end_us <= cutoff, segments.c.camera_id.in_(cams),
                           tuple_(segments.c.start_us, segments.c.id) > tuple_(*after))
                    # With a bucket, footage only in the bucket is expired for the whole city
                    # by one node (recording/expiry.py), whichever node recorded it.
                    .where(segments.c.stored != layout.S3 if self.store is not None else true())
                    .order_by(segments.c.start_us, segments.c.id)
                    .limit(BATCH)
                )
                with self.engine.connect() as conn:
                    rows = conn.execute(q).all()
                if not rows:
                    break
                after = (rows[-1].start_us, rows[-1].id)
                doomed = [r for r in rows if not retention.is_held(r, holds.get(r.camera_id, ()))]
                report.held_kept += len(rows) - len(doomed)
                report.expired_bytes += self._delete(doomed)
                report.expired_deleted += len(doomed)
        if report.expired_deleted:
            log.info("retention deleted %d expired segments (%.1f MB), kept %d held", report.expired_deleted,
                     report.expired_bytes / 1e6, report.held_kept)

    def _apply_activity_modes(self, now: int, holds, report: JanitorReport, window_us: int = 2 * 3600 * US) -> None:
        """Motion/events recording modes: drop settled footage with no activity near it."""
        from varta.recording import activity

        cams = [c for c in self.registry.list() if c.enabled and
                c.schedule.modes() & activity.ACTIVITY_MODES]
        if not cams:
            return
        # Only now: the analytics settings' parser brings NumPy, which a recorder without
        # motion/events cameras never needs (a recording node stays lean).
        from varta.analytics.config import AnalyticsError, parse_config
        from varta.analytics.store import AnalyticsSettings
        from varta.events.store import EventStore
        store = AnalyticsSettings(self.engine)
        statuses = store.statuses()
        configs = store.all_raw()
        events = EventStore(self.engine, self.settings.events_dir)
        from varta.onvif.store import OnvifStore

        evented = {d["camera_id"]: d for d in OnvifStore(self.engine).all() if d.get("events") and d.get("events_seen_us")}
        for cam in cams:
            st = statuses.get(cam.id)
            if st is None or st["state"] not in ("analysing", "degraded", "motion_only"):
                # No analytics on it, but the camera's own detector (ONVIF events,
                # varta/onvif/events.py) says when there was activity while it was listened to.
                d = evented.get(cam.id)
                if d is None or now - d["events_seen_us"] > 60 * US:
                    continue
                st = {"since_us": d["events_since_us"] or d["events_seen_us"], "updated_us": d["events_seen_us"]}
            try:
                cfg = parse_config(configs.get(cam.id) or {})
            except AnalyticsError:
                continue
            pre, post = int(cfg.pre_roll_s * US), int(cfg.post_roll_s * US)
            settled = activity.settled_before(now, pre, post)
            segs = [s for s in self.index.segments_between(cam.id, settled - window_us, settled)
                    if s.end_us <= settled and s.recorder == self.node]
            if not segs:
                continue
            t1, t2 = segs[0].start_us - post, segs[-1].end_us + pre
            spans = {kind: activity.widen(events.activity(cam.id, t1, t2, kind), pre, post, now)
                     for kind in cam.schedule.modes() & activity.ACTIVITY_MODES}
            tz = self.settings.tz
            doomed = activity.without_activity(
                segs, lambda us: cam.schedule.mode_at(to_datetime(us, tz)), spans,
                (st["since_us"], st["updated_us"]), holds.get(cam.id, []))
            if doomed:
                report.quiet_bytes += self._delete(doomed)
                report.quiet_deleted += len(doomed)
        if report.quiet_deleted:
            log.info("motion/events modes: dropped %d segments (%.1f MB) with no activity near them",
                     report.quiet_deleted, report.quiet_bytes / 1e6)

    def _expire_events(self, now: int, holds, report: JanitorReport) -> None:
        """Events and their pictures are personal data like the footage: they go with the
        camera's retention, and stay while a hold covers them. Each node expires the events
        its own worker wrote (their pictures are on its disk)."""
        from sqlalchemy import delete

        from varta.db.schema import events, motion_spans, track_records

        for days, cams in self._retention_classes().items():
            cutoff = retention.cutoff_us(now, days)
            with self.engine.connect() as conn:
                rows = conn.execute(select(events.c.id, events.c.camera_id, events.c.start_us, events.c.end_us,
                                           events.c.snapshot)
                                    .where(events.c.start_us < cutoff, events.c.end_us.is_not(None),
                                           events.c.end_us <= cutoff, events.c.worker == self.node,
                                           events.c.camera_id.in_(cams))
                                    .limit(5000)).all()
            doomed = [r for r in rows if not retention.is_held(r, holds.get(r.camera_id, []))]
            pictures = {layout.file_key("events", r.snapshot): r.id for r in doomed if r.snapshot}
            if self.store is not None and pictures:  # their copies in the bucket (storage/publish.py)
                kept = self.store.delete_many(list(pictures))
                if kept:  # the event stays until its picture can go too (tried at the next pass)
                    log.warning("the archive bucket kept %d expired alarm picture(s) (first: %s: %s)", len(kept),
                                *next(iter(kept.items())))
                    keep = {pictures[k] for k in kept if k in pictures}
                    doomed = [r for r in doomed if r.id not in keep]
            for r in doomed:
                if r.snapshot:
                    (self.settings.events_dir / r.snapshot).unlink(missing_ok=True)
            with self.engine.begin() as conn:
                if doomed:
                    conn.execute(delete(events).where(events.c.id.in_([r.id for r in doomed])))
                conn.execute(delete(motion_spans).where(motion_spans.c.camera_id.in_(cams),
                                                        motion_spans.c.end_us.is_not(None),
                                                        motion_spans.c.end_us <= cutoff))
            report.events_deleted += len(doomed)
            # Track records (search across cameras: paths and pictures of people) go with the
            # footage too; they are rows only, so any node may expire them.
            with self.engine.connect() as conn:
                tracks = conn.execute(select(track_records.c.id, track_records.c.camera_id, track_records.c.start_us,
                                             track_records.c.end_us)
                                      .where(track_records.c.end_us <= cutoff, track_records.c.camera_id.in_(cams))
                                      .limit(20000)).all()
            gone = [r.id for r in tracks if not retention.is_held(r, holds.get(r.camera_id, []))]
            if gone:
                with self.engine.begin() as conn:
                    conn.execute(delete(track_records).where(track_records.c.id.in_(gone)))
                report.tracks_deleted += len(gone)

    def _delete(self, rows) -> int:
        """Delete segments: their objects in the bucket (in batches), their files here, then
        their rows. What the bucket refuses to delete (a legal hold, a retention period, the
        store away) keeps its row and is tried again at the next pass."""
        kept = self._delete_objects([r for r in rows if getattr(r, "stored", layout.LOCAL) in layout.IN_BUCKET])
        freed = 0
        gone = []
        for row in rows:
            if row.id in kept:
                continue
            try:
                (self.root / row.camera_id / row.path).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("cannot delete %s/%s: %s", row.camera_id, row.path, exc)
                continue
            freed += row.bytes if getattr(row, "stored", layout.LOCAL) != layout.S3 else 0
            gone.append(row)
        self.index.delete_segments(gone)
        return freed

    def _delete_objects(self, rows) -> set[int]:
        """Delete these segments' objects; returns the ids of those the bucket kept."""
        if not rows:
            return set()
        if self.store is None:
            log.error("%d expired segments are in the archive bucket, but this node has no archive settings "
                      "(archive_storage = s3): they are kept", len(rows))
            return {r.id for r in rows}
        keys = {layout.segment_key(r.camera_id, r.path): r for r in rows}
        failed = self.store.delete_many(list(keys))
        if failed:
            first = next(iter(failed.items()))
            msg = (f"the archive bucket kept {len(failed)} expired segment(s) it was asked to delete "
                   f"(first: {first[0]}: {first[1]}); they are tried again at the next pass")
            self.alarms.raise_once("archive_delete_refused", "warning", msg)
        else:
            self.alarms.clear("archive_delete_refused")
        return {keys[k].id for k in failed if k in keys}

    def _release_cache(self, now: int, report: "JanitorReport", needed: int | None = None) -> int:
        """Shipped segments keep a local copy for ``archive_local_cache_hours``; older copies
        are released (the bucket has them, verified). ``needed``: free this many bytes now,
        oldest copies first, whatever their age (the disk is short)."""
        if self.store is None:
            return 0
        cutoff = layout.cache_cutoff_us(now, self.settings.archive_local_cache_hours)
        if needed is not None:
            cutoff = now - layout.MIN_CACHE_US
        freed = 0
        after = -1
        while needed is None or freed < needed:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(segments.c.id, segments.c.camera_id, segments.c.path, segments.c.bytes)
                    .where(segments.c.recorder == self.node, segments.c.stored == layout.BOTH,
                           segments.c.end_us < cutoff, segments.c.id > after)
                    .order_by(segments.c.id).limit(BATCH)).all()
            if not rows:
                break
            after = rows[-1].id
            done = []
            for r in rows:
                try:
                    (self.root / r.camera_id / r.path).unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.error("cannot release the cache copy %s/%s: %s", r.camera_id, r.path, exc)
                    continue
                done.append(r.id)
                freed += r.bytes
                if needed is not None and freed >= needed:
                    break
            with self.engine.begin() as conn:
                for i in range(0, len(done), 500):
                    conn.execute(update(segments).where(segments.c.id.in_(done[i:i + 500]),
                                                        segments.c.stored == layout.BOTH)
                                 .values(stored=layout.S3))
        report.cache_released_bytes += freed
        return freed

    def disk_usage(self) -> shutil._ntuple_diskusage:
        self.root.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(self.root)

    def _ensure_free_space(self, holds, report: JanitorReport) -> None:
        usage = self.disk_usage()
        target = retention.free_target_bytes(usage.total, self.settings.min_free_percent, self.settings.min_free_mb)
        if self._urgent:
            self._urgent = False
            target = max(target, usage.free + retention.URGENT_FREE_FRACTION * usage.total)
        if usage.free >= target:
            self.alarms.clear("disk_full")
            return
        if self.store is not None:
            # Copies of footage the bucket already has go first: nothing is lost.
            self._release_cache(now_us(), report, needed=int(target - usage.free))
            usage = self.disk_usage()
            if usage.free >= target:
                self.alarms.clear("disk_full")
                return
        # Expired footage is already gone (retention ran first): now the oldest unheld.
        # Free a little beyond the reserve so the next pass does not have to do it again.
        needed = int(target - usage.free + retention.URGENT_FREE_FRACTION * usage.total)
        after = -1
        first = last = None
        while needed > 0:
            q = (
                select(segments.c.id, segments.c.camera_id, segments.c.start_us, segments.c.end_us,
                       segments.c.path, segments.c.bytes, segments.c.stored)
                # Only footage whose only copy is on this disk: what the bucket has was
                # released above, and deleting it would free nothing more here.
                .where(segments.c.start_us > after, segments.c.recorder == self.node,
                       segments.c.stored == layout.LOCAL)
                .order_by(segments.c.start_us)
                .limit(BATCH)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            if not rows:
                break
            after = rows[-1].start_us
            chosen = retention.choose_to_free(rows, needed, holds)
            if not chosen:
                continue
            freed = self._delete(chosen)
            report.early_deleted += len(chosen)
            report.early_bytes += freed
            needed -= freed
            first = first if first is not None else chosen[0].start_us
            last = chosen[-1].end_us
        tz = self.settings.tz
        if report.early_deleted:
            msg = (f"disk full: deleted {report.early_deleted} unheld segments ({report.early_bytes / 1e6:.0f} MB) "
                   f"recorded {format_time(first, tz)} – {format_time(last, tz)} before their retention ended, "
                   f"so that recording continues; add storage or lower the camera count")
            self.alarms.raise_alarm("footage_freed_early", "critical", msg)
            report.messages.append(msg)
        if needed > 0:
            msg = (f"disk full and nothing more may be deleted (everything left is held or in use): "
                   f"{usage.free / 1e6:.0f} MB free, {target / 1e6:.0f} MB wanted")
            self.alarms.raise_once("disk_full", "critical", msg)
            report.messages.append(msg)

    def _update_forecast(self, report: JanitorReport) -> None:
        held = self.held_cameras() if self.held_cameras is not None else None
        self.last_storage = measure_storage(self.index, self.registry, self.settings, self.node, held)
        fc = self.last_storage.forecast
        report.forecast = fc
        if fc.short:
            self.alarms.raise_once(
                "storage_forecast", "warning",
                f"storage holds about {fc.days_capacity:.1f} days at current bitrates "
                f"({fc.daily_bytes / 1e9:.1f} GB/day), less than the {fc.required_days} days of retention: "
                f"older footage will be deleted early unless storage is added",
            )
        else:
            self.alarms.clear("storage_forecast")
