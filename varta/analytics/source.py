"""Pictures for analysis: decode a camera stream or a file with PyAV at a reduced rate.

Every compressed frame must be decoded (each P-frame needs the one before), but only the
frames kept for analysis are converted to BGR and, for a main stream, scaled down — the
conversion and the analysis are what the rate saves. One decoder thread per camera:
threads help one big stream's latency, not many small streams' total cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from varta.clock import US, now_us
from varta.recording.ffmpeg import libav_input


class SourceError(RuntimeError):
    """The stream could not be opened or read; the message says why (credentials redacted)."""


@dataclass
class Frame:
    t: float  # seconds: stream time for files, wall_us in seconds for live cameras
    wall_us: int  # UTC µs the picture was taken (arrival time for live cameras)
    bgr: np.ndarray
    index: int = 0  # 0-based number of the decoded frame (MOT output counts from it)


class FrameSource:
    def __init__(self, url: str, fps: float, width: int | None = None, live: bool = True,
                 timeout_s: float = 10.0, start_us: int | None = None):
        self.url, self.fps, self.width, self.live = url, fps, width, live
        self.timeout_s = timeout_s
        self.start_us = start_us if start_us is not None else now_us()  # files: wall time of t=0
        self.decoded = 0
        self.size: tuple[int, int] | None = None
        self._container = None
        self._offset_us: int | None = None
        self._last_pts_us: int | None = None
        self._first_pts_us: int | None = None
        self._index_time = False

    def first_frame_us(self) -> int | None:
        """When this connection's first frame was taken, with the best clock offset so far."""
        if self._first_pts_us is None or self._offset_us is None:
            return None
        return self._first_pts_us + self._offset_us

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                pass
            self._container = None

    def frames(self, stop=lambda: False) -> Iterator[Frame]:
        import av

        source, options = libav_input(self.url, self.timeout_s)
        if self.live:
            # Probe only as long as it takes to see a keyframe's parameters: every second of
            # probing is a second of frames that then arrive in one burst.
            options = {**options, "analyzeduration": "1500000", "probesize": "1000000"}
        try:
            self._container = av.open(source, "r", options=options)
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open the stream: {exc}") from None
        try:
            if not self._container.streams.video:
                raise SourceError("the stream has no video")
            stream = self._container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            rate = float(stream.average_rate or stream.guessed_rate or 0) or None
            self._index_time = "avi" in (self._container.format.name or "").split(",")
            next_t = None
            try:
                for frame in self._container.decode(stream):
                    if stop():
                        return
                    self.decoded += 1
                    if self.live:
                        wall = self._capture_us(frame.time)
                        t = wall / US
                    else:
                        t = self._file_time(frame.time, rate)
                        if t is None:
                            continue
                        wall = self.start_us + int(t * US)
                    if self.fps and next_t is not None and t < next_t - 1e-6:
                        continue
                    if self.fps:  # keep the rhythm, but never "catch up" with a burst after a stall
                        step = 1.0 / self.fps
                        next_t = t + step if next_t is None or t - next_t > step else next_t + step
                    yield Frame(t, wall, self._bgr(frame), self.decoded - 1)
            except av.FFmpegError as exc:
                raise SourceError(f"the stream broke off: {exc}") from None
        finally:
            self.close()

    def _file_time(self, pts_s: float | None, rate: float | None) -> float | None:
        """A file frame's time: its timestamp, except in AVI (which gives B-frame streams
        decode-order times: they run backwards) or when there is none, where it is the
        frame's number over the frame rate."""
        if not self._index_time and pts_s is not None:
            return float(pts_s)
        return (self.decoded - 1) / rate if rate else None

    def _capture_us(self, pts_s: float | None) -> int:
        """When a live frame was taken: its timestamp on the stream's clock, placed on the
        wall clock by the smallest arrival delay seen so far. Frames read in a burst (after
        probing, after a network stall) keep their true spacing instead of all getting the
        time they happened to be decoded at."""
        arrival = now_us()
        if pts_s is None:
            return arrival
        pts_us = int(pts_s * US)
        if self._last_pts_us is not None and pts_us < self._last_pts_us - US:
            self._offset_us = None  # the camera's clock restarted
        self._last_pts_us = pts_us
        if self._first_pts_us is None:
            self._first_pts_us = pts_us
        offset = arrival - pts_us
        if self._offset_us is None or offset < self._offset_us:
            self._offset_us = offset
        return pts_us + self._offset_us

    def _bgr(self, frame) -> np.ndarray:
        w, h = frame.width, frame.height
        if self.width and w > self.width:
            h = int(round(h * self.width / w / 2) * 2)
            w = self.width
        self.size = (w, h)
        if (w, h) != (frame.width, frame.height):
            return frame.reformat(width=w, height=h, format="bgr24").to_ndarray()
        return frame.to_ndarray(format="bgr24")
