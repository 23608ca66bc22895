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


def keyframe_at_or_before(path: Path, offset_s: float) -> float:
    """Time (s, from the file's first frame) of the last keyframe at or before ``offset_s``.

    Reads packet headers only. This is where a stream-copy export or a player must start
    decoding to show the frame at ``offset_s``.
    """
    try:
        with av.open(str(path), "r") as container:
            video = next(s for s in container.streams if s.type == "video")
            tb = float(video.time_base)
            first = None
            best = 0.0
            for packet in container.demux(video):
                if packet.pts is None:
                    continue
                if first is None:
                    first = packet.pts
                t = (packet.pts - first) * tb
                if t > offset_s + 1e-6:
                    break
                if packet.is_keyframe:
                    best = t
            return best
    except (av.error.FFmpegError, StopIteration) as exc:
        raise ProbeError(f"{path.name}: {exc}") from None
