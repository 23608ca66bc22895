"""The analytics worker: one process that analyses the cameras its node holds by lease.

It runs *beside* the recorder, never inside it: ``varta serve`` starts it as a child
process at a lower CPU priority (nice), so a slow or crashed analysis can never stall or
lose recording. It learns its cameras (the ``analyse:<camera>`` leases its node holds,
varta/analytics/role.py) and their settings from the database, writes events, snapshots
and status back under those leases, and talks to nothing else (docs/design/analytics.md).

Threads: one per camera (decode, motion, tracking, rules; libav, OpenCV and ONNX Runtime
release the GIL), one detector shared by all through a pool of ``detector_pool`` slots
(inferences at once, one core each: as many as ``analytics_cpu_cores`` allows), and a
governor that slows the least important cameras when the worker uses more CPU than
``analytics_cpu_cores`` or cameras fall behind.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from varta.analytics.config import AnalyticsConfig, AnalyticsError, parse_config
from varta.analytics.governor import CameraLoad, describe, rebalance
from varta.analytics.models import load_detector
from varta.analytics.pipeline import CameraPipeline, Step
from varta.analytics.source import FrameSource, SourceError
from varta.analytics.store import AnalyticsSettings
from varta.cameras.model import Camera, redact_text
from varta.cameras.registry import CameraRegistry
from varta.clock import now_us
from varta.cluster.leases import ANALYSE, Fence, Fenced, LeaseStore
from varta.events.store import EventStore
from varta.events.system_alarms import SystemAlarms
from varta.recording.activity import ACTIVITY_MODES

log = logging.getLogger("varta.analytics")
STATUS_EVERY_S = 5.0
LOST_AFTER_S = 5.0  # no picture this long: a "video_lost" tampering state


class DetectorPool:
    """At most ``size`` inferences at once, each on its caller's thread (the session has one
    intra-op thread, so each takes one core): the detector's CPU stays bounded, and a
    second core is not left idle while one inference runs (bench/RESULTS.md §8: one lock
    capped the worker at 56–72 inferences/s with 21–40 % of two cores unused)."""

    def __init__(self, detector, size: int = 1):
        self.detector = detector
        self.size = max(1, size)
        self._slots = threading.BoundedSemaphore(self.size)

    def detect(self, bgr, **kw):
        with self._slots:
            return self.detector.detect(bgr, **kw)


def pool_size(settings) -> int:
    """``detector_pool``, or as many slots as the analytics CPU budget allows (rounded up),
    never more than the machine's cores."""
    import math

    if settings.detector_pool:
        return settings.detector_pool
    per = max(1, settings.detector_threads or (os.cpu_count() or 1))
    return max(1, min(os.cpu_count() or 1, math.ceil(settings.analytics_cpu_cores / per)))


def wants_analysis(camera: Camera, raw: dict | None) -> AnalyticsConfig | None:
    """The settings to analyse with, or None. Cameras whose timetable uses the motion or
    events recording modes are analysed (motion only, by default) even without settings:
    those modes cannot keep footage without knowing where the activity is."""
    try:
        cfg = parse_config(raw) if raw is not None else None
    except AnalyticsError as exc:
        log.error("camera %s: analytics settings refused (%s); not analysed", camera.id, exc)
        return None
    if cfg is not None and cfg.enabled:
        return cfg
    if camera.schedule.modes() & ACTIVITY_MODES:
        return parse_config({"detect": cfg.detect if cfg else False})
    return None


class CameraAnalysis(threading.Thread):
    def __init__(self, camera: Camera, config: AnalyticsConfig, worker: "AnalyticsWorker", fence: Fence | None = None):
        super().__init__(name=f"ana-{camera.id}", daemon=True)
        self.camera, self.config, self.worker = camera, config, worker
        self.fence = fence
        self.fps = config.fps  # lowered by the governor under overload
        self._halt = threading.Event()
        self._ids: dict[str, int] = {}
        self.frames = 0
        self.detections = 0
        self.state = "starting"
        self.detail = ""
        self.lag_s: float | None = None  # the longest frame-taken → analysed delay since the last report
        self.active = False  # motion or tracked objects since the governor last looked
        self.steered_us = 0  # the camera's last PTZ command (the worker's sync loop reads it)

    def stop(self) -> None:
        self._halt.set()

    def _stream(self) -> tuple[str, int | None]:
        use_sub = self.config.stream in ("auto", "sub") and self.camera.sub_url
        if self.config.stream == "sub" and not self.camera.sub_url:
            log.warning("camera %s: no sub-stream configured; analysing the main stream scaled down", self.camera.id)
        return (self.camera.sub_url, None) if use_sub else (self.camera.main_url, self.config.width)

    def run(self) -> None:
        w = self.worker
        detector = w.detector if self.config.detect else None
        pipeline = CameraPipeline(self.config, detector, w.settings.tz)
        pipeline.view_direction = self.camera.view_direction  # track records get compass headings
        backoff = 1.0
        last_frame = time.monotonic()
        last_status = 0.0
        counted = (0, 0, time.monotonic())
        steered = self.steered_us
        while not self._halt.is_set():
            url, width = self._stream()
            source = FrameSource(url, self.fps, width, live=True, timeout_s=w.settings.rtsp_timeout_s)
            first = True
            try:
                for frame in source.frames(stop=self._halt.is_set):
                    source.fps = self.fps
                    last_frame = time.monotonic()
                    backoff = 1.0
                    if first:  # an unbroken run of analysis starts: the motion modes may trust it
                        first = False
                        self.state = "analysing" if detector is not None else "motion_only"
                        self._status("" if detector is not None else w.detector_message, 0.0, 0.0,
                                     since_us=frame.wall_us)
                    if self.steered_us != steered:  # turned by a PTZ command: not a turned camera
                        steered = self.steered_us
                        pipeline.steered()
                    step = pipeline.process(frame.bgr, frame.t, frame.wall_us)
                    lag = (now_us() - frame.wall_us) / 1e6
                    self.lag_s = lag if self.lag_s is None else max(self.lag_s, lag)
                    self.active = self.active or step.motion or bool(step.tracks)
                    self.frames += 1
                    self.detections += step.detected
                    self._apply(step)
                    self._store_tracks(pipeline)
                    if last_frame - last_status >= STATUS_EVERY_S:
                        counted = self._report(counted, detector is not None, source.first_frame_us())
                        last_status = last_frame
            except SourceError as exc:
                self.detail = redact_text(str(exc), [self.camera.main_url, self.camera.sub_url])
            except Exception:  # one camera's bug must not end its analysis for good
                log.exception("camera %s: analysis error", self.camera.id)
                self.detail = "internal error (see the worker's log)"
            finally:
                source.close()
            if self._halt.is_set():
                break
            # No picture: after LOST_AFTER_S the "video lost" tampering state holds.
            deadline = time.monotonic() + backoff
            while not self._halt.is_set() and time.monotonic() < deadline:
                if time.monotonic() - last_frame >= LOST_AFTER_S:
                    lost_us = now_us()
                    self._apply(pipeline.video_lost(lost_us / 1e6, lost_us))  # t: live frames' clock
                    if self.state != "no_video":
                        self.state = "no_video"
                        self._status(self.detail or "no picture from the camera", 0.0, 0.0, since_us=now_us())
                self._halt.wait(0.5)
            backoff = min(backoff * 2, w.settings.reconnect_max_backoff_s)
        end_us = now_us()
        try:
            for change in pipeline.finish(end_us / 1e6, end_us):
                self._apply_change(change)
            self._store_tracks(pipeline)
            if pipeline.motion_ongoing:
                w.events.motion_end(self.camera.id, now_us(), fence=self.fence)
            w.settings_store.set_status(self.camera.id, w.name, "off", "analysis stopped", self.config.fps,
                                        since_us=now_us())
        except Fenced:
            pass  # another node analyses this camera now: its state is that node's to tell

    def _report(self, counted, has_detector: bool, since_us: int | None):
        frames0, det0, t0 = counted
        now = time.monotonic()
        span = max(now - t0, 1e-3)
        fps, dfps = (self.frames - frames0) / span, (self.detections - det0) / span
        lag, self.lag_s = self.lag_s, None
        load = CameraLoad(self.camera.id, self.config.rank, self.config.fps, self.fps, fps, lag_s=lag)
        slowed = describe(load)  # the governor slowed it, or it cannot keep up: say so
        self.state = "degraded" if slowed else ("analysing" if has_detector else "motion_only")
        detail = slowed or ("" if has_detector else self.worker.detector_message)
        self._status(detail, fps, dfps, since_us, lag)  # since: refined as the stream's clock settles
        return self.frames, self.detections, now

    def _status(self, detail: str, fps: float, dfps: float, since_us: int | None = None,
                lag_s: float | None = None) -> None:
        self.worker.settings_store.set_status(self.camera.id, self.worker.name, self.state, detail,
                                              self.config.fps, fps, dfps, since_us, allowed_fps=self.fps,
                                              lag_s=lag_s)

    def _store_tracks(self, pipeline) -> None:
        """The tracks that ended, for search across cameras (under the camera's lease)."""
        records = pipeline.take_records()
        if records:
            try:
                self.worker.tracks.insert(self.camera.id, records, self.worker.name, fence=self.fence)
            except Fenced:
                self.stop()
            except Exception:  # noqa: BLE001  (search records are not worth stopping analysis for)
                log.exception("camera %s: %d track records not stored", self.camera.id, len(records))

    def _apply(self, step: Step) -> None:
        try:
            ev = self.worker.events
            if step.motion_change == "start":
                ev.motion_start(self.camera.id, step.motion_change_us, fence=self.fence)
            elif step.motion_change == "end":
                ev.motion_end(self.camera.id, step.motion_change_us, fence=self.fence)
            for change in step.changes:
                self._apply_change(change)
        except Fenced as exc:
            log.warning("camera %s: analysed by another node now (%s); stopping here", self.camera.id, exc)
            self.stop()

    def _apply_change(self, change) -> None:
        ev = self.worker.events
        if change.action == "open":
            event_id = ev.open_event(self.camera.id, change, fence=self.fence)
            self._ids[change.key] = event_id
            log.info("camera %s: event %d %s (%s %s)", self.camera.id, event_id, change.occurrence.rule,
                     change.occurrence.label or change.occurrence.kind, (change.motion or {}).get("heading") or "")
            self.worker.notify("event.opened", event_id)
            return
        event_id = self._ids.get(change.key)
        if event_id is None:
            return
        ev.update_event(event_id, change, end=(change.action == "close"), fence=self.fence)
        if change.action == "close":
            self._ids.pop(change.key, None)
            self.worker.notify("event.closed", event_id)


def _bucket_files(settings, node_id: str):
    """Where the city has an archive bucket, alarm pictures are put there too, so any web
    node serves them even when this worker's node is gone (storage/publish.py)."""
    from varta.storage.files import NodeFiles
    from varta.storage.objects import StoreError, open_store

    try:
        store = open_store(settings)
    except StoreError as exc:
        log.error("analytics: alarm pictures stay on this node only: %s", exc)
        return None
    return NodeFiles(settings, node_id, None, store) if store is not None else None


class AnalyticsWorker:
    def __init__(self, engine, settings, node_id: str, sync_interval_s: float = 3.0):
        self.engine, self.settings = engine, settings
        self.name = node_id  # the node whose ``analyse`` leases this worker follows
        self.leases = LeaseStore(engine)
        self.registry = CameraRegistry(engine)
        self.settings_store = AnalyticsSettings(engine)
        self.events = EventStore(engine, settings.events_dir, self.name, files=_bucket_files(settings, node_id),
                                 tz=settings.tz)
        from varta.search.store import TrackStore

        self.tracks = TrackStore(engine)
        self.alarms = SystemAlarms(engine, self.name)
        self.sync_interval_s = sync_interval_s
        self.cameras: dict[str, CameraAnalysis] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.detector = None
        self.detector_message = ""
        self.webhook = None

    def start(self) -> None:
        try:  # one OpenCV thread per camera thread: its pool only adds switching here (-17..35 % CPU)
            import cv2

            cv2.setNumThreads(1)
        except ImportError:
            pass
        raw, self.detector_message = load_detector(self.settings)
        self.detector = DetectorPool(raw, pool_size(self.settings)) if raw is not None else None
        if raw is not None:
            self.detector_message += f", {self.detector.size} at once"
        (log.info if raw is not None else log.warning)("analytics %s: %s", self.name, self.detector_message)
        if self.settings.alarm_webhook_url:
            from varta.events.webhook import WebhookSender

            from varta.lockdown.service import withheld_picture

            self.webhook = WebhookSender(self.settings.alarm_webhook_url, self.settings.alarm_webhook_secret,
                                         self.alarms).start()
            self._withhold = withheld_picture(self.engine)  # a lockdown: alarms leave without their picture
        self.sync()
        for target, name in ((self._sync_loop, "ana-sync"), (self._govern_loop, "ana-governor"),
                             (self._steering_loop, "ana-ptz")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for cam in self.cameras.values():
            cam.stop()
        for cam in self.cameras.values():
            cam.join(timeout=15)
        if self.webhook:
            self.webhook.stop()

    def notify(self, kind: str, event_id: int) -> None:
        if self.webhook is None:
            return
        event = self.events.get(event_id, with_path=False)
        if event:
            event["snapshot_url"] = f"/api/events/{event_id}/snapshot.jpg" if event.get("snapshot") else None
            from varta.lockdown.service import without_picture

            why = self._withhold(event)
            self.webhook.send(kind, without_picture(event, why) if why else event)

    def _my_cameras(self) -> dict[str, tuple[Camera, Fence]]:
        """The cameras this node holds ``analyse`` leases for, with their fences."""
        held = self.leases.held_by(self.name, ANALYSE)
        cams = {c.id: c for c in self.registry.list() if c.enabled}
        return {lease.key: (cams[lease.key], lease.fence()) for lease in held.values() if lease.key in cams}

    def _steering(self) -> None:
        """Each analysed PTZ camera's last command (one query for all)."""
        from sqlalchemy import select

        from varta.db.schema import ptz_control

        with self.engine.connect() as conn:
            last = dict(conn.execute(select(ptz_control.c.camera_id, ptz_control.c.last_command_us)).all())
        for cam_id, thread in list(self.cameras.items()):
            if last.get(cam_id):
                thread.steered_us = last[cam_id]

    def _steering_loop(self, every_s: float = 0.5) -> None:
        """Twice a second: a "moved" alarm waits 3 s (the tamper hold), so a PTZ command is
        known to the camera's analysis long before it could be taken for a turned camera."""
        while not self._stop.wait(every_s):
            try:
                if self.cameras:
                    self._steering()
            except Exception:  # noqa: BLE001 - the database away for a moment
                log.debug("reading PTZ commands failed; will retry", exc_info=True)

    def sync(self) -> None:
        raw = self.settings_store.all_raw()
        wanted: dict[str, tuple[Camera, AnalyticsConfig, Fence]] = {}
        for cam_id, (cam, fence) in self._my_cameras().items():
            cfg = wants_analysis(cam, raw.get(cam.id))
            if cfg is not None:
                wanted[cam.id] = (cam, cfg, fence)
        for cam_id in list(self.cameras):
            running = self.cameras[cam_id]
            want = wanted.get(cam_id)
            if want is None or want[0] != running.camera or want[1] != running.config or want[2] != running.fence \
                    or not running.is_alive():
                running.stop()
                del self.cameras[cam_id]
        for cam_id, (cam, cfg, fence) in wanted.items():
            if cam_id not in self.cameras:
                self.events.close_stale(cam_id, None, now_us())
                thread = CameraAnalysis(cam, cfg, self, fence)
                self.cameras[cam_id] = thread
                thread.start()
                log.info("camera %s: analysis at %g frames/s (%s)", cam_id, cfg.fps,
                         "motion + objects" if cfg.detect and self.detector else "motion only")

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.sync_interval_s):
            try:
                self.sync()
            except Exception:
                log.exception("analytics camera sync failed; will retry")

    def _govern_loop(self, every_s: float = 2.0) -> None:
        last_cpu, last_wall = time.process_time(), time.monotonic()
        counted: dict[str, int] = {}
        while not self._stop.wait(every_s):
            cpu, wall = time.process_time(), time.monotonic()
            span = max(wall - last_wall, 1e-3)
            used = (cpu - last_cpu) / span
            last_cpu, last_wall = cpu, wall
            cams = list(self.cameras.values())
            loads = []
            for c in cams:
                # Only cameras with pictures count as behind (a dead camera is not overload).
                before = counted.get(c.camera.id)
                achieved = (c.frames - before) / span if before is not None and c.state != "no_video" else None
                counted[c.camera.id] = c.frames
                active, c.active = c.active, False
                loads.append(CameraLoad(c.camera.id, c.config.rank, c.config.fps, c.fps, achieved, active, c.lag_s))
            for cam_id, fps in rebalance(loads, used, self.settings.analytics_cpu_cores).items():
                cam = self.cameras.get(cam_id)
                if cam is not None:
                    log.warning("camera %s: analysis %s to %g frames/s (worker at %.0f%% of its %.1f cores, "
                                "or cameras falling behind)",
                                cam_id, "slowed" if fps < cam.fps else "restored", fps,
                                100 * used / self.settings.analytics_cpu_cores, self.settings.analytics_cpu_cores)
                    cam.fps = fps


def lower_priority(nice: int) -> None:
    """Analysis yields the CPU to recording and live video (same machine, lower priority)."""
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass
