"""The recorder node's share of the cluster's cameras: one supervisor per camera it holds.

Which cameras are this node's is decided by leases (varta/cluster): the node's coordinator
claims and loses them, and this service, the ``record`` role, starts and stops a
:class:`CameraSupervisor` for each, with the lease's fencing token. Camera changes (a new
URL, a timetable) reach a running recorder through the database, polled every few seconds,
so ``varta recorder`` on many machines and the web nodes share only PostgreSQL and the
network (docs/design/cluster.md, docs/design/recording.md).
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import threading

from varta.cameras.model import Camera
from varta.cameras.registry import CameraRegistry
from varta.cluster.leases import Fence, Lease, LeaseStore
from varta.cluster.placement import CameraInfo
from varta.events.system_alarms import SystemAlarms
from varta.recording.ffmpeg import find_ffmpeg
from varta.recording.index import ArchiveIndex
from varta.recording.janitor import Janitor
from varta.recording.reconcile import files_open_for_writing, reconcile_camera
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
    """The ``record`` role of a node (see varta.cluster.coordinator.WorkRole)."""

    kind = "record"
    node_role = "recorder"
    handoff = True

    def __init__(self, engine, settings, node_id: str, node_name=lambda node_id: node_id or "?",
                 sync_interval_s: float = 3.0, live=None, store=None):
        self.engine = engine
        self.settings = settings
        self.node = node_id
        self.node_name = node_name
        self.index = ArchiveIndex(engine)
        self.registry = CameraRegistry(engine)
        self.alarms = SystemAlarms(engine, self.node)
        self.janitor = Janitor(engine, settings, self.node, held_cameras=self.held_cameras, store=store)
        self.shipper = None  # ships finished segments to the archive bucket (storage/shipping.py)
        if store is not None:
            from varta.storage.shipping import Shipper

            self.shipper = Shipper(engine, settings, self.node, store, self.alarms)
        self.live = live  # the node's live relays: recording feeds the main-stream relay
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
            standby_dir=settings.home / "standby",
            leases=LeaseStore(engine),
            node_name=node_name,
            live_tap=(live.tap if live is not None else (lambda camera_id: None)),
        )
        self.sync_interval_s = sync_interval_s
        self._seen_version: tuple[int, int] | None = None
        self._infos: tuple[tuple[int, int], list[CameraInfo]] | None = None
        self.supervisors: dict[str, CameraSupervisor] = {}
        self.standbys: dict[str, CameraSupervisor] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life ------------------------------------------------------------------------------
    def start(self) -> None:
        """Repair this node's disk (files a crash left unindexed), then wait for leases."""
        _limit_malloc_arenas()
        self.settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.settings.home / "standby", ignore_errors=True)  # moves a crash interrupted
        busy = files_open_for_writing(self.settings.recordings_dir)
        for cam_dir in sorted(p for p in self.settings.recordings_dir.iterdir() if p.is_dir()):
            if self.registry.get(cam_dir.name, include_removed=True) is None:
                continue
            reconcile_camera(self.index, self.alarms, self.settings.recordings_dir, self.settings.quarantine_dir,
                             cam_dir.name, self.node, busy=busy)
        self.janitor.start()
        if self.shipper is not None:
            self.shipper.start()  # what a crash left unshipped goes first
        self._thread = threading.Thread(target=self._loop, name="recorder-sync", daemon=True)
        self._thread.start()
        log.info("recorder started; cameras come by lease")

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            sups = list(self.supervisors.values()) + list(self.standbys.values())
        for sup in sups:
            sup.stop()
        for sup in sups:
            sup.join(timeout=15)
        self.janitor.stop()
        if self.shipper is not None:
            self.shipper.stop()
        if self._thread:
            self._thread.join(timeout=5)

    def held_cameras(self) -> list[str]:
        with self._lock:
            return [cid for cid, sup in self.supervisors.items() if sup.is_alive()]

    # --- the record role ---------------------------------------------------------------------
    def cameras(self) -> list[CameraInfo]:
        version = self.registry.version()
        if self._infos is None or self._infos[0] != version:  # read (and parse) only when changed
            self._infos = (version, [CameraInfo(c.id, c.recorder, c.group_name) for c in self.registry.list()
                                     if c.enabled])
        return self._infos[1]

    def running(self) -> dict[str, int]:
        with self._lock:
            for cid in [cid for cid, sup in self.supervisors.items() if not sup.is_alive()]:
                del self.supervisors[cid]  # handed over, fenced or stopped: gone
            return {cid: sup.epoch for cid, sup in self.supervisors.items()
                    if not sup.fenced and sup.epoch is not None}

    def begin(self, key: str, fence: Fence, taken_from: Lease | None, start_at_us: int | None) -> None:
        cam = self.registry.get(key)
        if cam is None or not cam.enabled:
            return
        with self._lock:
            old = self.supervisors.pop(key, None)
            if old is not None:
                old.stop()
            standby = self.standbys.pop(key, None)
            if standby is not None and standby.is_alive() and start_at_us is not None:
                standby.promote(fence, start_at_us)
                self.supervisors[key] = standby
                log.info("camera %s: recording here from the planned move's cut", key)
                return
            if standby is not None:
                standby.stop()
            if taken_from is not None and taken_from.holder and taken_from.holder != self.node:
                takeover = ("node_failover", f"node {self.node_name(taken_from.holder)} stopped answering; "
                                             f"recorded by node {self.node_name(self.node)} since")
            else:
                takeover = ("recorder_down", "")
            # start_at_us only matters to a promoted standby; a fresh start says why it was dark.
            sup = CameraSupervisor(cam, self.ctx, fence, takeover=takeover)
            self.supervisors[key] = sup
            sup.start()

    def end(self, key: str, why: str) -> None:
        if why == "removed":
            # Stopped in order: it says "recording stopped" under its lease, and leaves
            # running() when its thread ends; only then is the lease given up.
            sup = self.supervisors.get(key)
            if sup is not None:
                sup.stop()
            return
        with self._lock:
            sup = self.supervisors.pop(key, None)
        if sup is not None:
            sup.stop()
            log.warning("camera %s: lease lost (%s); recording stopped here", key, why)

    def prepare(self, key: str) -> None:
        cam = self.registry.get(key)
        if cam is None:
            return
        with self._lock:
            old = self.supervisors.get(key)
            if old is not None and (not old.is_alive() or old.fenced):
                del self.supervisors[key]  # gave the camera away (or lost it) earlier: it comes back now
            if key in self.supervisors or (key in self.standbys and self.standbys[key].is_alive()):
                return
            sup = CameraSupervisor(cam, self.ctx, None, standby=True)
            self.standbys[key] = sup
            sup.start()

    def standby_point(self, key: str) -> int | None:
        sup = self.standbys.get(key)
        return sup.first_key_us if sup is not None else None

    def standby_failed(self, key: str) -> str | None:
        sup = self.standbys.get(key)
        if sup is None:
            return "no standby recording"
        if not sup.is_alive():
            return sup.failed_reason or "the standby recording ended"
        return None

    def cancel_prepare(self, key: str) -> None:
        with self._lock:
            sup = self.standbys.pop(key, None)
        if sup is not None:
            sup.stop()

    def hand_over(self, key: str, fence: Fence, to: str, at_us: int) -> None:
        sup = self.supervisors.get(key)
        if sup is None or sup.epoch != fence.epoch:
            return
        sup.hand_over(to, at_us)

    def handing_over(self, key: str) -> bool:
        sup = self.supervisors.get(key)
        if sup is None:
            return False
        if sup.handing_over:
            return True
        if sup._handover is not None and not sup.is_alive():
            with self._lock:
                self.supervisors.pop(key, None)
        return False

    # --- camera changes ---------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.sync_interval_s):
            try:
                self.sync()
            except Exception:
                log.exception("camera sync failed; will retry")

    def sync(self) -> None:
        """Apply camera changes (a new URL restarts the run) to the cameras recorded here."""
        version = self.registry.version()
        if version == self._seen_version:
            return
        self._seen_version = version
        cams = {c.id: c for c in self.registry.list()}
        with self._lock:
            sups = list(self.supervisors.items())
        for cam_id, sup in sups:
            cam: Camera | None = cams.get(cam_id)
            if cam is not None and cam.enabled and sup.camera != cam:
                sup.reconfigure(cam)
