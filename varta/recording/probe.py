"""Read a segment's media facts (codec, size, frame rate, duration) with PyAV.

Opening a local fMP4 reads its init section and fragment headers only: a millisecond or
two, in-process, instead of forking ffprobe for every segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class MediaInfo:
    codec: str
    width: int | None
    height: int | None
    fps: float | None
    duration_s: float  # from first to last frame end
    frames: int | None = None
    first_pts_s: float = 0.0


class ProbeError(Exception):
    pass


def probe_segment(path: Path, count_frames: bool = False) -> MediaInfo:
    try:
        with av.open(str(path), "r") as container:
            streams = [s for s in container.streams if s.type == "video"]
            if not streams:
                raise ProbeError(f"{path.name}: no video stream")
            video = streams[0]
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else None
            first = last = None
            frames = 0
            last_dur = 0
            # Walking packets (not decoding) is cheap and gives the exact covered span,
            # which fragmented files do not carry in their header.
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                frames += 1
                if first is None or packet.pts < first:
                    first = packet.pts
                end = packet.pts + (packet.duration or 0)
                if last is None or end > last:
                    last = end
                    last_dur = packet.duration or 0
            if first is None:
                raise ProbeError(f"{path.name}: no video frames")
            tb = float(video.time_base)
            if not last_dur and fps:
                last += int(round(1 / fps / tb))
            return MediaInfo(
                codec=video.codec_context.name,
                width=video.codec_context.width or None,
                height=video.codec_context.height or None,
                fps=fps,
                duration_s=(last - first) * tb,
                frames=frames,
                first_pts_s=first * tb,
            )
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{path.name}: {exc}") from None


def probe_stream_header(path: Path) -> MediaInfo:
    """Codec/size/rate only (no packet walk): used for every segment of a healthy run."""
    try:
        with av.open(str(path), "r") as container:
            streams = [s for s in container.streams if s.type == "video"]
            if not streams:
                raise ProbeError(f"{path.name}: no video stream")
            v = streams[0]
            rate = v.average_rate or v.guessed_rate or v.base_rate
            return MediaInfo(v.codec_context.name, v.codec_context.width or None, v.codec_context.height or None,
                             float(rate) if rate else None, 0.0)
    except av.error.FFmpegError as exc:
        raise ProbeError(f"{path.name}: {exc}") from None
