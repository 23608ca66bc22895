"""Two ways to stream-copy a camera into segments, behind one small interface.

* ``FfmpegRun`` — a supervised ``ffmpeg`` process per camera (crash-isolated, the floor
  every VMS is measured against).
* ``PyAVRun`` — the same libav demuxer and MP4 muxer driven from a thread of the recorder
  process. The libraries are loaded once for all cameras, so a camera costs its buffers
  only (about 3–4 MB instead of ffmpeg's ~14 MB per process); the GIL is released while
  libav reads and writes, so cameras do not wait on each other.

Both produce identical files (fragmented MP4, cut at the first keyframe after
``segment_seconds``, timestamps from 0, named ``YYYY/MM/DD/<UTC start>Z-<run>.mp4``) and
report each finished segment as a line ``name,start,end`` (seconds since the run's first
packet), exactly as ffmpeg's segment list does, so the supervisor treats them alike.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

import av

from varta.recording.ffmpeg import FMP4_FLAGS, SEGMENT_NAME_PATTERN, libav_input, record_command

EOF_MARK = object()
BACKENDS = ("pyav", "ffmpeg")

# One malloc arena is plenty for a remuxer that only juggles packets. Lower mmap/trim
# thresholds were tried too: they saved 1.3 MB per process but cost 7.5 % more CPU
# (bench/RESULTS.md), so they are not used.
LEAN_MALLOC_ENV = {"MALLOC_ARENA_MAX": "1"}

_libc = None


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """``preexec_fn`` for Varta's child processes (ffmpeg, the analytics worker): Linux
    SIGTERMs the child if its parent dies, even by kill -9.

    SIGTERM (not KILL) lets ffmpeg close its current segment properly; the restarted
    recorder then finds and indexes it. No orphan keeps writing unindexed files.
    """
    global _libc
    try:
        _libc = _libc or ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgrp()  # ^C in the terminal goes to Varta, which stops ffmpeg in order


class IngestRun:
    """One connection to a camera, from connect to end. ``lines`` receives segment lines
    and finally ``EOF_MARK``; ``errors`` keeps the last error lines. ``first_key_us`` is
    the wall-clock arrival of the run's first keyframe, where a backend can tell (PyAV)."""

    lines: queue.Queue
    errors: deque
    first_key_us: int | None = None

    def poll(self) -> int | None: ...
    def stop(self) -> None: ...
    def wait(self) -> int: ...


class FfmpegRun(IngestRun):
    def __init__(self, ffmpeg: str, url: str, cam_dir: Path, run_id: str, segment_seconds: int, timeout_s: float):
        cmd = record_command(ffmpeg, url, cam_dir, run_id, segment_seconds, timeout_s)
        env = {**os.environ, "TZ": "UTC", **LEAN_MALLOC_ENV}
        self.lines = queue.Queue()
        self.errors = deque(maxlen=40)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, preexec_fn=die_with_parent)
        self._out = threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True)
        self._err = threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True)
        self._out.start()
        self._err.start()

    def _pump(self, stream, is_out: bool) -> None:
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace")
                (self.lines.put if is_out else self.errors.append)(line)
        finally:
            if is_out:
                self.lines.put(EOF_MARK)

    def poll(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGINT first: ffmpeg then closes the current segment and writes its list line."""
        if self.proc.poll() is not None:
            return
        try:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        code = self.proc.wait()
        self._err.join(timeout=2)
        return code


class PyAVRun(IngestRun):
    def __init__(self, url: str, cam_dir: Path, run_id: str, segment_seconds: int, timeout_s: float,
                 tap_source=None):
        """``tap_source()`` → a function to hand each packet to (the camera's live relay on
        this node, while someone watches), or None: live view without a second connection."""
        self.tap_source = tap_source or (lambda: None)
        self.url = url
        self.cam_dir = cam_dir
        self.run_id = run_id
        self.segment_seconds = segment_seconds
        self.timeout_s = timeout_s
        self.lines = queue.Queue()
        self.errors = deque(maxlen=40)
        self._stop = threading.Event()
        self._code: int | None = None
        self._thread = threading.Thread(target=self._run, name=f"ingest-{cam_dir.name}", daemon=True)
        self._thread.start()

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self._code

    def stop(self) -> None:
        self._stop.set()  # checked after every packet; a silent camera ends by its socket timeout

    def wait(self) -> int:
        self._thread.join()
        return self._code if self._code is not None else 1

    def _open_input(self):
        source, options = libav_input(self.url, self.timeout_s)
        return av.open(source, "r", options=options)

    def _new_segment(self, template):
        when = datetime.now(timezone.utc)
        name = when.strftime(SEGMENT_NAME_PATTERN.format(run=self.run_id))
        path = self.cam_dir / name
        while path.exists():  # several segments in one second (a burst after a stall): never overwrite
            when += timedelta(seconds=1)
            name = when.strftime(SEGMENT_NAME_PATTERN.format(run=self.run_id))
            path = self.cam_dir / name
        out = av.open(str(path), "w", format="mp4", options={"movflags": FMP4_FLAGS})
        return out, out.add_stream_from_template(template), Path(name).name

    def _run(self) -> None:
        out = None
        try:
            with self._open_input() as inp:
                video = inp.streams.video[0]
                tb = video.time_base
                run_first = seg_first = None
                seg_name = ""
                last_end = None
                out_stream = None
                for packet in inp.demux(video):
                    if self._stop.is_set():
                        break
                    if packet.pts is None or packet.dts is None:
                        continue
                    tap = self.tap_source()
                    if tap is not None:
                        tap(packet, video)  # copies it: the muxer below consumes the packet
                    if run_first is None:
                        if not packet.is_keyframe:
                            continue  # a segment must start with a keyframe
                        run_first = packet.dts
                        self.first_key_us = time.time_ns() // 1000
                    cut = out is None or (packet.is_keyframe and
                                          (packet.pts - seg_first) * tb >= self.segment_seconds)
                    if cut:
                        if out is not None:
                            out.close()
                            self._report(seg_name, seg_first, packet.pts, run_first, tb)
                        out, out_stream, seg_name = self._new_segment(video)
                        seg_first = packet.pts
                    end = packet.pts + (packet.duration or 0)
                    last_end = end if last_end is None else max(last_end, end)
                    packet.pts -= seg_first
                    packet.dts -= seg_first
                    packet.stream = out_stream
                    out.mux(packet)
                if out is not None:
                    out.close()
                    out = None
                    self._report(seg_name, seg_first, last_end, run_first, tb)
                self._code = 0
                if not self._stop.is_set():
                    self.errors.append("End of file: the camera ended the stream")
        except (av.error.FFmpegError, OSError) as exc:
            self.errors.append(str(exc))
            self._code = 1
        except Exception as exc:  # never let a camera's thread die silently
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self._code = 1
        finally:
            if out is not None:
                try:
                    out.close()  # finish the segment we were writing: it is indexed as repaired/ok
                except Exception:
                    pass
                if self._code:
                    self.errors.append("segment closed after an error")
            self.lines.put(EOF_MARK)

    def _report(self, name: str, first, end, run_first, tb) -> None:
        self.lines.put(f"{name},{float((first - run_first) * tb):.6f},{float((end - run_first) * tb):.6f}\n")
