"""One camera's recording: a supervised ingest run (PyAV or ffmpeg), restarted with capped backoff.

State machine (stored in ``camera_status`` so any node can read it)::

    starting ──first data──▶ recording ──run ends──▶ reconnecting ──retry──▶ starting
        │                                                   │ 3 failures in a row, or
        └──────────────fails before any data───────────────▶ failed (auth, not found, refused…)
    any ──schedule says off──▶ off          any ──stop()──▶ stopped

``failed`` keeps retrying (a camera may come back after repair) at the capped interval.
Every interval without recording is an outage row with its reason, so gaps are never silent.

In a cluster a supervisor records under the camera's lease (``fence``): every index write
checks it, and a write refused because the camera moved on (:class:`Fenced`) stops the
supervisor at once, its unindexed files set aside in quarantine. Planned moves use two more
shapes: a *standby* supervisor (on the node taking the camera) that records into a scratch
folder without indexing until it is promoted, and ``hand_over`` (on the node giving it
away), which ends the footage exactly at the taker's first keyframe (docs/design/cluster.md).
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
from varta.clock import US, now_us
from varta.cluster.leases import Fence, Fenced
from varta.recording import outage
from varta.recording.ffmpeg import relative_segment_path
from varta.recording.index import ArchiveIndex
from varta.recording.ingest import EOF_MARK, FfmpegRun, IngestRun, PyAVRun
from varta.recording.mp4box import check_segment
from varta.recording.probe import ProbeError, probe_stream_header
from varta.recording.timing import RunClock
from varta.recording.trim import trim_segment

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
    standby_dir: Path | None = None  # where a standby run writes until it is promoted
    leases: object = None  # LeaseStore: a hand-over passes the lease on
    node_name: Callable[[str | None], str] = lambda node_id: node_id or "?"
    live_tap: Callable[[str], object] = lambda camera_id: None  # the camera's live relay hook, if watched


@dataclass
class RunResult:
    reason: str
    detail: str
    segments: int


class CameraSupervisor(threading.Thread):
    def __init__(self, camera: Camera, ctx: RecorderContext, fence: Fence | None = None, *, standby: bool = False,
                 takeover: tuple[str, str] = ("recorder_down", ""), start_at_us: int | None = None):
        super().__init__(name=f"rec-{camera.id}", daemon=True)
        self.camera = camera
        self.ctx = ctx
        self.cam_dir = ctx.recordings_dir / camera.id
        self.fence = fence
        self.standby = standby
        self.takeover = takeover
        self.start_at_us = start_at_us  # after a planned move: the first segment starts exactly here
        self._stop_evt = threading.Event()
        self._restart_evt = threading.Event()
        self.state = "starting"
        self.segments_written = 0
        self._media: tuple[str, int | None, int | None, float | None] = ("", None, None, None)
        self.fenced = False
        # standby (taking a camera over): what it recorded so far, and where it began
        self._pending: list[tuple] = []
        self.first_key_us: int | None = None
        self.failed_reason: str | None = None
        self._promoted = threading.Event()
        # hand-over (giving a camera away): to whom, and the instant where footage ends
        self._handover: tuple[str, int] | None = None
        self.handing_over = False
        self._run_ids: set[str] = set()

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

    def promote(self, fence: Fence, start_at_us: int | None) -> None:
        """A standby becomes the camera's recorder: its footage is indexed from ``start_at_us``."""
        self.fence = fence
        self.start_at_us = start_at_us
        self.standby = False
        self._promoted.set()

    def hand_over(self, to: str, at_us: int) -> None:
        """End this node's footage at ``at_us`` and pass the lease to node ``to``."""
        if self._handover is None:
            self.handing_over = True
            self._handover = (to, at_us)
            self._restart_evt.set()

    @property
    def epoch(self) -> int | None:
        return self.fence.epoch if self.fence else None

    # --- writes under the lease ----------------------------------------------------------
    def _write(self, method, *args, **kwargs):
        """An index write checked against the lease; a refusal stops this supervisor."""
        if self.fenced or self.standby:
            return None
        try:
            return method(*args, fence=self.fence, **kwargs)
        except Fenced as exc:
            self._on_fenced(str(exc))
            return None

    def _on_fenced(self, why: str) -> None:
        if not self.fenced:
            log.warning("camera %s: this node no longer holds the camera (%s); recording stops here", self.camera.id,
                        why)
        self.fenced = True
        self._stop_evt.set()
        self._restart_evt.set()

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        carried: RunResult | None = None
        if self.standby:
            carried = self._run_standby()
            if carried is None:
                return  # cancelled or failed before promotion: nothing was indexed
        else:
            last_end = self._last_end()
            if self.start_at_us is None and last_end is not None and \
                    self.ctx.index.current_outage(self.camera.id) is None:
                # Not recorded from the last segment until now: this node was not running,
                # or the node that recorded the camera died (``node_failover``).
                reason, detail = self.takeover
                self._write(self.ctx.index.open_outage, self.camera.id, last_end, reason, detail,
                            self.ctx.recorder_name)
        backoff = 1.0
        failures = 0
        while not self._stop_evt.is_set():
            if self._handover is not None:
                self._finish_handover()
                return
            if carried is not None:  # the promoted standby's run, which has just ended
                result, carried = carried, None
            else:
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
            if self._handover is not None:
                self._finish_handover()
                return
            if self._stop_evt.is_set():
                break
            if result.reason in ("schedule_off", "reconfigured"):
                continue
            if result.segments:
                backoff, failures = 1.0, 0
            else:
                failures += 1
            when = self._last_end() or now_us()
            self._write(self.ctx.index.open_outage, self.camera.id, when, result.reason, result.detail,
                        self.ctx.recorder_name)
            failed = failures >= FAILED_AFTER or (failures and result.reason in PERMANENT_REASONS)
            self._set_state("failed" if failed else "reconnecting", result.reason, result.detail)
            log.warning("camera %s: %s (%s); retry in %.0f s", self.camera.id, outage.describe(result.reason),
                        result.detail, backoff)
            if result.reason == "disk_full":
                self.ctx.on_disk_full()
            self._restart_evt.wait(backoff)
            backoff = min(backoff * 2, self.ctx.max_backoff_s)
        if self.fenced:
            return  # the camera is another node's now: nothing more to say about it here
        # From here until a recorder runs again, the camera is not recorded: say so now.
        self._write(self.ctx.index.open_outage, self.camera.id, self._last_end() or now_us(), "recorder_down",
                    "recorder stopped", self.ctx.recorder_name)
        self._set_state("stopped", "recorder_down", "recorder stopped")

    def _run_standby(self) -> RunResult | None:
        """Record without indexing until promoted (or cancelled). Once promoted this run
        simply goes on as the camera's recording; its result is returned when it ends."""
        run_id = secrets.token_hex(4)
        try:
            result = self._run_once(run_id)
        except Exception as exc:
            log.exception("camera %s: standby recording error", self.camera.id)
            result = RunResult("unknown", f"internal error: {exc}", 0)
        if self._promoted.is_set():
            return result
        self.failed_reason = self.failed_reason or f"{outage.describe(result.reason)} ({result.detail})"
        self._discard_standby()
        return None

    def _discard_standby(self) -> None:
        import shutil

        if self.ctx.standby_dir is not None:
            shutil.rmtree(self.ctx.standby_dir / self.camera.id, ignore_errors=True)

    def _scheduled_now(self) -> bool:
        local = datetime.now(timezone.utc).astimezone(self.ctx.tz)
        return self.camera.schedule.records_at(local)

    def _enter_off(self) -> None:
        if self.state != "off":
            self._write(self.ctx.index.open_outage, self.camera.id, self._last_end() or now_us(), "schedule_off", "",
                        self.ctx.recorder_name)
            self._set_state("off", "schedule_off", "")

    def _last_end(self) -> int | None:
        seg = self.ctx.index.last_segment(self.camera.id)
        return seg.end_us if seg else None

    def _set_state(self, state: str, reason: str = "", detail: str = "", **metrics) -> None:
        self.state = state
        self._write(self.ctx.index.set_status, self.camera.id, self.ctx.recorder_name, state, reason, detail,
                    **metrics)

    def _dir_of_run(self, run_id: str) -> Path:
        if self.standby and self.ctx.standby_dir is not None:
            return self.ctx.standby_dir / self.camera.id / run_id
        return self.cam_dir

    def _prepare_dirs(self, run_dir: Path) -> None:
        """ffmpeg does not create folders: keep today's and tomorrow's (UTC) ready."""
        today = datetime.now(timezone.utc)
        for day in (today, today + timedelta(days=1)):
            (run_dir / day.strftime("%Y/%m/%d")).mkdir(parents=True, exist_ok=True)

    def _start_run(self, run_id: str, run_dir: Path) -> IngestRun:
        cam = self.camera
        if self.ctx.backend == "ffmpeg":
            return FfmpegRun(self.ctx.ffmpeg, cam.main_url, run_dir, run_id, self.ctx.segment_seconds,
                             self.ctx.rtsp_timeout_s)
        tap = (lambda: None if self.standby else self.ctx.live_tap(cam.id))
        return PyAVRun(cam.main_url, run_dir, run_id, self.ctx.segment_seconds, self.ctx.rtsp_timeout_s, tap)

    def _run_once(self, run_id: str | None = None) -> RunResult:
        cam = self.camera
        run_id = run_id or secrets.token_hex(4)
        self._run_ids.add(run_id)
        run_dir = self._dir_of_run(run_id)
        self._prepare_dirs(run_dir)
        self._set_state("starting" if self.state not in ("reconnecting", "failed") else self.state,
                        *self._current_reason())
        try:
            run = self._start_run(run_id, run_dir)
        except OSError as exc:
            return RunResult("process_died", f"cannot start the recording: {exc}", 0)
        clock = RunClock()
        segments = 0
        last_line = time.monotonic()
        stall_limit = max(3 * self.ctx.segment_seconds, self.ctx.rtsp_timeout_s * 2, 30.0)
        ended_by_us = ""
        while True:
            try:
                line = run.lines.get(timeout=0.25 if self.standby or self._handover else 1.0)
            except queue.Empty:
                line = None
            if line is EOF_MARK:
                break
            if self.standby and self.first_key_us is None:
                self._note_first_keyframe(run, clock)
            if self._promoted.is_set() and self._pending:
                segments += self._index_pending(run_id)
            if line:
                segments += self._on_segment_line(line, run_id, run_dir, clock, first=(segments == 0))
                last_line = time.monotonic()
                continue
            if not ended_by_us:
                if self._handover is not None:
                    ended_by_us = "handover"
                elif self._stop_evt.is_set() or self._restart_evt.is_set():
                    ended_by_us = "reconfigured"
                elif not self._scheduled_now():
                    ended_by_us = "schedule_off"
                elif time.monotonic() - last_line > stall_limit:
                    ended_by_us = "stalled"
                if ended_by_us:
                    run.stop()
            if segments == 0 and self.state != "recording" and self._has_data(run_dir, run_id):
                self._set_state("recording", "", "")
        code = run.wait()
        if self._promoted.is_set() and self._pending:
            segments += self._index_pending(run_id)
        if self.standby and not self._promoted.is_set():
            return RunResult(outage.classify("\n".join(run.errors), code), outage.last_lines("\n".join(run.errors)),
                             segments)
        if ended_by_us == "handover":
            return RunResult("handover", "", segments)
        if self.fenced:
            self._set_aside_unindexed(run_dir, run_id)
            return RunResult("fenced", "", segments)
        if code != 0 and (segments or self._has_data(run_dir, run_id)):
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
        if self.ctx.alarms is None or self.ctx.quarantine_dir is None or self.fenced:
            return
        from varta.recording.reconcile import reconcile_camera

        reconcile_camera(self.ctx.index, self.ctx.alarms, self.ctx.recordings_dir, self.ctx.quarantine_dir,
                         self.camera.id, self.ctx.recorder_name, days=1, fence=self.fence)

    def _set_aside_unindexed(self, run_dir: Path, run_id: str) -> None:
        """Files this node wrote after it lost the camera: kept (nothing is deleted) but not
        indexed, in quarantine, with an alarm: they may duplicate the new holder's footage."""
        if self.ctx.quarantine_dir is None:
            return
        indexed = set(self.ctx.index.paths_since(self.camera.id, now_us() - 86_400 * US,
                                                 recorder=self.ctx.recorder_name))
        moved = []
        for day in sorted({p.parent for p in run_dir.glob(f"*/*/*/*-{run_id}.mp4")}):
            for f in sorted(day.glob(f"*-{run_id}.mp4")):
                rel = str(f.relative_to(run_dir))
                if rel in indexed:
                    continue
                target = self.ctx.quarantine_dir / self.camera.id / "fenced" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                f.replace(target)
                moved.append(rel)
        if moved and self.ctx.alarms is not None:
            self.ctx.alarms.raise_alarm(
                "segments_fenced", "warning",
                f"camera {self.camera.id}: {len(moved)} file(s) recorded after this node lost the camera to another "
                f"node were set aside in quarantine/{self.camera.id}/fenced (not indexed: they may duplicate the "
                f"other node's footage); first: {moved[0]}", self.camera.id)

    def _current_reason(self) -> tuple[str, str]:
        st = self.ctx.index.status(self.camera.id)
        return (st["reason"], st["detail"]) if st and st["state"] in ("reconnecting", "failed") else ("", "")

    def _has_data(self, run_dir: Path, run_id: str) -> bool:
        day = run_dir / datetime.now(timezone.utc).strftime("%Y/%m/%d")
        try:
            return any(e.name.endswith(f"-{run_id}.mp4") and e.stat().st_size > 0 for e in os.scandir(day))
        except OSError:
            return False

    def _note_first_keyframe(self, run: IngestRun, clock: RunClock) -> None:
        """A standby's stream has begun: its first keyframe is where the handing-over node
        will stop. Segments are placed from that same instant."""
        if run.first_key_us is not None:
            self.first_key_us = run.first_key_us
            clock.anchor_us = run.first_key_us

    def _on_segment_line(self, line: str, run_id: str, run_dir: Path, clock: RunClock, first: bool) -> int:
        arrived = now_us()
        try:
            name, start_s, end_s = line.strip().rsplit(",", 2)
            start_s, end_s = float(start_s), float(end_s)
        except ValueError:
            log.warning("camera %s: unreadable segment list line %r", self.camera.id, line)
            return 0
        rel = relative_segment_path(name.strip('"'))
        path = run_dir / rel
        try:
            check = check_segment(path)
        except OSError as exc:
            log.error("camera %s: finished segment %s cannot be read: %s", self.camera.id, rel, exc)
            return 0
        if check.fragments == 0:
            # ffmpeg closed a segment with no media (e.g. the stream died at once): nothing to index.
            path.unlink(missing_ok=True)
            return 0
        if clock.anchor_us is None and self.standby and self.first_key_us is None:
            # A backend that cannot tell its first keyframe early (ffmpeg): the first
            # segment's placement gives it.
            self.first_key_us = arrived - int(round(end_s * US))
            clock.anchor_us = self.first_key_us
        start_us, end_us, lag_s = clock.place(start_s, end_s, arrived)
        if first or not self._media[0]:
            self._media = self._probe(path)
        seg = (rel, path, start_us, end_us, lag_s, check, end_s - start_s, run_id)
        if self.standby and not self._promoted.is_set():
            self._pending.append(seg)
            return 0
        return self._index(seg)

    def _index_pending(self, run_id: str) -> int:
        done = 0
        pending, self._pending = self._pending, []
        for seg in pending:
            done += self._index(seg)
        return done

    def _index(self, seg: tuple) -> int:
        rel, path, start_us, end_us, lag_s, check, duration, run_id = seg
        if self.fenced:
            return 0
        if self.start_at_us is not None:
            # The first segment after a planned move begins exactly where the previous
            # node's footage ends (both are this camera's keyframe, seen from two nodes).
            if end_us <= self.start_at_us:
                path.unlink(missing_ok=True)
                return 0
            start_us = max(start_us, self.start_at_us)
            self.start_at_us = None
        if self._handover is not None:
            cut = self._handover[1]
            if start_us >= cut:
                path.unlink(missing_ok=True)  # the next node records this: not indexed twice
                return 0
            if end_us > cut:
                trimmed = trim_segment(path, (cut - start_us) / US)
                if trimmed is None:
                    return 0
                check, end_us = trimmed, cut
        final = self.cam_dir / rel
        if path != final:  # a promoted standby's file joins the archive
            final.parent.mkdir(parents=True, exist_ok=True)
            path.replace(final)
        codec, width, height, fps = self._media
        if self.segments_written == 0 or self.state != "recording":
            self._write(self.ctx.index.close_outage, self.camera.id, start_us)
        state = dict(state="recording", reason="", detail="", last_segment_end_us=end_us,
                     bitrate_bps=check.file_bytes * 8 / max(duration, 1e-3), fps=fps, lag_s=round(lag_s, 3))
        seg_id = self._write(
            self.ctx.index.add_segment, camera_id=self.camera.id, start_us=start_us, end_us=end_us, path=rel,
            bytes=check.file_bytes, init_bytes=check.init_bytes, codec=codec, width=width, height=height, fps=fps,
            run_id=run_id, recorder=self.ctx.recorder_name, camera_state=state,
        )
        if seg_id is None:
            return 0
        self.state = "recording"
        self.segments_written += 1
        return 1

    def _finish_handover(self) -> None:
        """The run has stopped: footage after the cut that was indexed before the request
        arrived is cut off too, then the lease passes to the taker."""
        to, cut = self._handover
        try:
            tail = [s for s in self.ctx.index.segments_between(self.camera.id, cut, now_us() + 3600 * US)
                    if s.recorder == self.ctx.recorder_name and s.end_us > cut]
            for seg in tail:
                path = self.cam_dir / seg.path
                if seg.start_us >= cut:
                    path.unlink(missing_ok=True)
                    self.ctx.index.delete_segments([seg], fence=self.fence)
                    continue
                trimmed = trim_segment(path, (cut - seg.start_us) / US) if path.exists() else None
                if trimmed is None:
                    self.ctx.index.delete_segments([seg], fence=self.fence)
                else:
                    self.ctx.index.shorten_segment(seg, cut, trimmed.file_bytes, self.fence)
            passed = self.ctx.leases.complete_handoff(self.fence, to, cut)
        except Fenced as exc:
            self._on_fenced(str(exc))
            passed = None
        except Exception:
            log.exception("camera %s: hand-over failed", self.camera.id)
            passed = None
        if passed:
            log.info("camera %s: handed over to %s at %s", self.camera.id, self.ctx.node_name(to), cut)
        else:
            log.warning("camera %s: hand-over to %s did not complete; the camera is left to failover",
                        self.camera.id, self.ctx.node_name(to))
        self.handing_over = False

    def _probe(self, path: Path) -> tuple[str, int | None, int | None, float | None]:
        try:
            info = probe_stream_header(path)
            return info.codec, info.width, info.height, info.fps
        except ProbeError as exc:
            log.warning("camera %s: cannot read stream facts: %s", self.camera.id, exc)
            return "", None, None, None


