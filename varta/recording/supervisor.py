"""One camera's recording: a supervised ingest run (PyAV or ffmpeg), restarted with capped backoff.

State machine (stored in ``camera_status`` so any node can read it)::

    starting ──first data──▶ recording ──run ends──▶ reconnecting ──retry──▶ starting
        │                                                   │ 3 failures in a row, or
        └──────────────fails before any data───────────────▶ failed (auth, not found, refused…)
    any ──schedule says off──▶ off          any ──stop()──▶ stopped

``failed`` keeps retrying (a camera may come back after repair) at the capped interval.
Every interval without recording is an outage row with its reason, so gaps are never silent.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from varta.cameras.model import Camera, redact_text
from varta.clock import now_us
from varta.recording import outage
from varta.recording.ffmpeg import relative_segment_path
from varta.recording.index import ArchiveIndex
from varta.recording.ingest import EOF_MARK, FfmpegRun, IngestRun, PyAVRun
from varta.recording.mp4box import check_segment
from varta.recording.probe import ProbeError, probe_stream_header
from varta.recording.timing import RunClock

log = logging.getLogger("varta.recording")

# Failures that will not go away by retrying quickly: show "failed" at once.
PERMANENT_REASONS = {"auth", "not_found", "refused", "unreachable", "bad_stream"}
FAILED_AFTER = 3


@dataclass
class RecorderContext:
    index: ArchiveIndex
    recordings_dir: Path
    recorder_name: str
    ffmpeg: str
    tz: object
    segment_seconds: int = 10
    backend: str = "pyav"  # or "ffmpeg": see recording/ingest.py
    rtsp_timeout_s: float = 10.0
    max_backoff_s: float = 30.0
    on_disk_full: Callable[[], None] = lambda: None
    alarms: object = None  # SystemAlarms, for files set aside after a crash
    quarantine_dir: Path | None = None


@dataclass
class RunResult:
    reason: str
    detail: str
    segments: int


class CameraSupervisor(threading.Thread):
    def __init__(self, camera: Camera, ctx: RecorderContext):
        super().__init__(name=f"rec-{camera.id}", daemon=True)
        self.camera = camera
        self.ctx = ctx
        self.cam_dir = ctx.recordings_dir / camera.id
        self._stop_evt = threading.Event()
        self._restart_evt = threading.Event()
        self.state = "starting"
        self.segments_written = 0
        self._media: tuple[str, int | None, int | None, float | None] = ("", None, None, None)

    # --- control from the recorder service ------------------------------------------
    def stop(self) -> None:
        self._stop_evt.set()
        self._restart_evt.set()

    def reconfigure(self, camera: Camera) -> None:
        """Apply a changed camera definition; restart ffmpeg only if the stream changed."""
        stream_changed = camera.main_url != self.camera.main_url
        self.camera = camera
        if stream_changed:
            self._restart_evt.set()

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        backoff = 1.0
        failures = 0
        last_end = self._last_end()
        if last_end is not None and self.ctx.index.current_outage(self.camera.id) is None:
            # We are starting after a stop or crash: the time since the last segment was
            # not recorded because this recorder was not running.
            self.ctx.index.open_outage(self.camera.id, last_end, "recorder_down", "", self.ctx.recorder_name)
        while not self._stop_evt.is_set():
            if not self._scheduled_now():
                self._enter_off()
                self._stop_evt.wait(1.0)
                continue
            self._restart_evt.clear()
            try:
                result = self._run_once()
            except Exception as exc:  # never let one camera's bug stop its recording for good
                log.exception("camera %s: recorder error", self.camera.id)
                result = RunResult("unknown", f"internal error: {exc}", 0)
            if self._stop_evt.is_set():
                break
            if result.reason in ("schedule_off", "reconfigured"):
                continue
            if result.segments:
                backoff, failures = 1.0, 0
            else:
                failures += 1
            when = self._last_end() or now_us()
            self.ctx.index.open_outage(self.camera.id, when, result.reason, result.detail, self.ctx.recorder_name)
            failed = failures >= FAILED_AFTER or (failures and result.reason in PERMANENT_REASONS)
            self._set_state("failed" if failed else "reconnecting", result.reason, result.detail)
            log.warning("camera %s: %s (%s); retry in %.0f s", self.camera.id, outage.describe(result.reason),
                        result.detail, backoff)
            if result.reason == "disk_full":
                self.ctx.on_disk_full()
            self._restart_evt.wait(backoff)
            backoff = min(backoff * 2, self.ctx.max_backoff_s)
        # From here until a recorder runs again, the camera is not recorded: say so now.
        self.ctx.index.open_outage(self.camera.id, self._last_end() or now_us(), "recorder_down",
                                   "recorder stopped", self.ctx.recorder_name)
        self._set_state("stopped", "recorder_down", "recorder stopped")

    def _scheduled_now(self) -> bool:
        local = datetime.now(timezone.utc).astimezone(self.ctx.tz)
        return self.camera.schedule.records_at(local)

    def _enter_off(self) -> None:
        if self.state != "off":
            self.ctx.index.open_outage(self.camera.id, self._last_end() or now_us(), "schedule_off", "",
                                       self.ctx.recorder_name)
            self._set_state("off", "schedule_off", "")

    def _last_end(self) -> int | None:
        seg = self.ctx.index.last_segment(self.camera.id)
        return seg.end_us if seg else None

    def _set_state(self, state: str, reason: str = "", detail: str = "", **metrics) -> None:
        self.state = state
        self.ctx.index.set_status(self.camera.id, self.ctx.recorder_name, state, reason, detail, **metrics)

    def _prepare_dirs(self) -> None:
        """ffmpeg does not create folders: keep today's and tomorrow's (UTC) ready."""
        today = datetime.now(timezone.utc)
        for day in (today, today + timedelta(days=1)):
            (self.cam_dir / day.strftime("%Y/%m/%d")).mkdir(parents=True, exist_ok=True)

    def _start_run(self, run_id: str) -> IngestRun:
        cam = self.camera
        if self.ctx.backend == "ffmpeg":
            return FfmpegRun(self.ctx.ffmpeg, cam.main_url, self.cam_dir, run_id, self.ctx.segment_seconds,
                             self.ctx.rtsp_timeout_s)
        return PyAVRun(cam.main_url, self.cam_dir, run_id, self.ctx.segment_seconds, self.ctx.rtsp_timeout_s)

    def _run_once(self) -> RunResult:
        cam = self.camera
        run_id = secrets.token_hex(4)
        self._prepare_dirs()
        self._set_state("starting" if self.state not in ("reconnecting", "failed") else self.state,
                        *self._current_reason())
        try:
            run = self._start_run(run_id)
        except OSError as exc:
            return RunResult("process_died", f"cannot start the recording: {exc}", 0)
        clock = RunClock()
        segments = 0
        last_line = time.monotonic()
        stall_limit = max(3 * self.ctx.segment_seconds, self.ctx.rtsp_timeout_s * 2, 30.0)
        ended_by_us = ""
        while True:
            try:
                line = run.lines.get(timeout=1.0)
            except queue.Empty:
                line = None
            if line is EOF_MARK:
                break
            if line:
                segments += self._on_segment_line(line, run_id, clock, first=(segments == 0))
                last_line = time.monotonic()
                continue
            if not ended_by_us:
                if self._stop_evt.is_set() or self._restart_evt.is_set():
                    ended_by_us = "reconfigured"
                elif not self._scheduled_now():
                    ended_by_us = "schedule_off"
                elif time.monotonic() - last_line > stall_limit:
                    ended_by_us = "stalled"
                if ended_by_us:
                    run.stop()
            if segments == 0 and self.state != "recording" and self._has_data(run_id):
                self._set_state("recording", "", "")
        code = run.wait()
        if code != 0 and (segments or self._has_data(run_id)):
            self._recover_torn_tail()
        text = redact_text("\n".join(run.errors), [cam.main_url, cam.sub_url])
        if ended_by_us in ("reconfigured", "schedule_off"):
            if ended_by_us == "schedule_off":
                self._enter_off()
            return RunResult(ended_by_us, "", segments)
        if ended_by_us == "stalled":
            return RunResult("stalled", f"no segment for {stall_limit:.0f} s", segments)
        reason = outage.classify(text, code)
        detail = outage.last_lines(text) or f"the recording ended with code {code}"
        return RunResult(reason, detail, segments)

    def _recover_torn_tail(self) -> None:
        """ffmpeg died mid-segment (killed, crashed): index what it left, as at start-up."""
        if self.ctx.alarms is None or self.ctx.quarantine_dir is None:
            return
        from varta.recording.reconcile import reconcile_camera

        reconcile_camera(self.ctx.index, self.ctx.alarms, self.ctx.recordings_dir, self.ctx.quarantine_dir,
                         self.camera.id, self.ctx.recorder_name, days=1)

    def _current_reason(self) -> tuple[str, str]:
        st = self.ctx.index.status(self.camera.id)
        return (st["reason"], st["detail"]) if st and st["state"] in ("reconnecting", "failed") else ("", "")

    def _has_data(self, run_id: str) -> bool:
        day = self.cam_dir / datetime.now(timezone.utc).strftime("%Y/%m/%d")
        try:
            return any(e.name.endswith(f"-{run_id}.mp4") and e.stat().st_size > 0 for e in os.scandir(day))
        except OSError:
            return False

    def _on_segment_line(self, line: str, run_id: str, clock: RunClock, first: bool) -> int:
        arrived = now_us()
        try:
            name, start_s, end_s = line.strip().rsplit(",", 2)
            start_s, end_s = float(start_s), float(end_s)
        except ValueError:
            log.warning("camera %s: unreadable segment list line %r", self.camera.id, line)
            return 0
        rel = relative_segment_path(name.strip('"'))
        path = self.cam_dir / rel
        try:
            check = check_segment(path)
        except OSError as exc:
            log.error("camera %s: finished segment %s cannot be read: %s", self.camera.id, rel, exc)
            return 0
        if check.fragments == 0:
            # ffmpeg closed a segment with no media (e.g. the stream died at once): nothing to index.
            path.unlink(missing_ok=True)
            return 0
        start_us, end_us, lag_s = clock.place(start_s, end_s, arrived)
        if first:
            self._media = self._probe(path)
        codec, width, height, fps = self._media
        self.ctx.index.add_segment(
            camera_id=self.camera.id, start_us=start_us, end_us=end_us, path=rel, bytes=check.file_bytes,
            init_bytes=check.init_bytes, codec=codec, width=width, height=height, fps=fps, run_id=run_id,
            recorder=self.ctx.recorder_name,
        )
        if first:
            self.ctx.index.close_outage(self.camera.id, start_us)
        duration = max(end_s - start_s, 1e-3)
        self._set_state("recording", "", "", last_segment_end_us=end_us,
                        bitrate_bps=check.file_bytes * 8 / duration, fps=fps, lag_s=round(lag_s, 3))
        self.segments_written += 1
        return 1

    def _probe(self, path: Path) -> tuple[str, int | None, int | None, float | None]:
        try:
            info = probe_stream_header(path)
            return info.codec, info.width, info.height, info.fps
        except ProbeError as exc:
            log.warning("camera %s: cannot read stream facts: %s", self.camera.id, exc)
            return "", None, None, None


