"""The recorder node: keeps one supervisor per camera assigned to it, in step with the DB.

Camera changes reach a running recorder through the database (polled every few seconds),
never through shared memory, so ``varta recorder`` on many machines and the web nodes
only share PostgreSQL and the network (see docs/design/recording.md, "Scaling out").
"""

from __future__ import annotations

import ctypes
import logging
import threading

from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.events.system_alarms import SystemAlarms
from varta.recording.ffmpeg import find_ffmpeg
from varta.recording.index import ArchiveIndex
from varta.recording.janitor import Janitor
from varta.recording.reconcile import reconcile_camera
from varta.recording.supervisor import CameraSupervisor, RecorderContext

log = logging.getLogger("varta.recorder")


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each busy thread its own malloc arena (up to 8 per core) and keeps their
    freed memory; with two threads per camera that is most of the recorder's own memory.
    Two arenas are plenty for threads that mostly wait in libav (bench/RESULTS.md)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


class RecorderService:
    def __init__(self, engine, settings, sync_interval_s: float = 3.0):
        self.engine = engine
        self.settings = settings
        self.node = settings.recorder_name
        self.index = ArchiveIndex(engine)
        self.registry = CameraRegistry(engine)
        self.alarms = SystemAlarms(engine, self.node)
        self.janitor = Janitor(engine, settings, self.node)
        self.ctx = RecorderContext(
            index=self.index,
            recordings_dir=settings.recordings_dir,
            recorder_name=self.node,
            ffmpeg=find_ffmpeg(settings.ffmpeg),
            tz=settings.tz,
            segment_seconds=settings.segment_seconds,
            backend=settings.recorder_backend,
            rtsp_timeout_s=settings.rtsp_timeout_s,
            max_backoff_s=settings.reconnect_max_backoff_s,
            on_disk_full=self.janitor.wake,
            alarms=self.alarms,
            quarantine_dir=settings.quarantine_dir,
        )
        self.sync_interval_s = sync_interval_s
        self.supervisors: dict[str, CameraSupervisor] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        _limit_malloc_arenas()
        self.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        for cam in self._my_cameras():
            reconcile_camera(self.index, self.alarms, self.settings.recordings_dir, self.settings.quarantine_dir,
                             cam.id, self.node)
        self.janitor.start()
        self.sync()
        self._thread = threading.Thread(target=self._loop, name="recorder-sync", daemon=True)
        self._thread.start()
        log.info("recorder %s started with %d cameras", self.node, len(self.supervisors))

    def stop(self) -> None:
        self._stop.set()
        for sup in self.supervisors.values():
            sup.stop()
        for sup in self.supervisors.values():
            sup.join(timeout=15)
        self.janitor.stop()
        if self._thread:
            self._thread.join(timeout=5)

    def _my_cameras(self) -> list[Camera]:
        cams = self.registry.list(recorder=self.node, include_unassigned=self.settings.record_unassigned)
        return [c for c in cams if c.enabled]

    def _loop(self) -> None:
        while not self._stop.wait(self.sync_interval_s):
            try:
                self.sync()
            except Exception:
                log.exception("camera sync failed; will retry")

    def sync(self) -> None:
        wanted = {c.id: c for c in self._my_cameras()}
        for cam_id in list(self.supervisors):
            if cam_id not in wanted:
                sup = self.supervisors.pop(cam_id)
                sup.stop()
                log.info("camera %s: recording stopped (removed or disabled)", cam_id)
        for cam_id, cam in wanted.items():
            sup = self.supervisors.get(cam_id)
            if sup is None or not sup.is_alive():
                sup = CameraSupervisor(cam, self.ctx)
                self.supervisors[cam_id] = sup
                sup.start()
            elif sup.camera != cam:
                sup.reconfigure(cam)
