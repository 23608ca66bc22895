"""The ffmpeg command lines Varta runs (built here, in one place)."""

from __future__ import annotations

import shutil
from pathlib import Path

# How segment files are named: UTC start second + the ffmpeg run id. The folder is the
# UTC date, so no folder grows past one day of one camera (8,640 files at 10 s).
SEGMENT_NAME_PATTERN = "%Y/%m/%d/%Y%m%dT%H%M%SZ-{run}.mp4"

# Fragmented MP4: an empty moov, then one moof+mdat per keyframe (GOP). Browsers and HLS
# play it; a file cut short by a crash keeps every complete GOP (see mp4box.py). No mfra
# trailer: a segment is exactly init + fragments, so HLS byte ranges need no special case.
FMP4_FLAGS = "+frag_keyframe+empty_moov+default_base_moof+skip_trailer"


def find_ffmpeg(configured: str | None = None) -> str:
    """The configured binary, else the system ffmpeg, else the one imageio-ffmpeg ships."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("no ffmpeg found: install Debian's ffmpeg or the imageio-ffmpeg package") from exc


def find_ffprobe() -> str | None:
    return shutil.which("ffprobe")


def input_options(url: str, timeout_s: float) -> list[str]:
    """Options that make ffmpeg a patient but not endless RTSP client."""
    scheme = url.split(":", 1)[0].lower()
    opts: list[str] = []
    if scheme in ("rtsp", "rtsps"):
        # TCP: no packet loss on busy city networks (UDP drops under load silently).
        # timeout: socket I/O timeout in µs, so a silent camera ends the run with a reason.
        opts += ["-rtsp_transport", "tcp", "-timeout", str(int(timeout_s * 1_000_000))]
    elif scheme in ("http", "https", "rtmp"):
        opts += ["-rw_timeout", str(int(timeout_s * 1_000_000))]
    elif scheme == "file":
        opts += ["-re", "-stream_loop", "-1"]  # a looping file behaves like a live camera
    return opts


def libav_input(url: str, timeout_s: float) -> tuple[str, dict[str, str]]:
    """What to pass to ``av.open`` for a camera: the source and libav's own socket timeouts.

    Not PyAV's ``timeout=`` argument: that is a Python interrupt callback which libav
    calls on every blocking wait, taking the GIL each time; at 64 cameras it cost 2 % of
    a core per camera instead of 0.44 % (bench/RESULTS.md).
    """
    scheme = url.split(":", 1)[0].lower()
    us = str(int(timeout_s * 1_000_000))
    if scheme in ("rtsp", "rtsps"):
        return url, {"rtsp_transport": "tcp", "timeout": us}  # connect and every socket read
    if scheme in ("http", "https", "rtmp"):
        return url, {"rw_timeout": us}
    return url.removeprefix("file://"), {}


def record_command(
    ffmpeg: str, url: str, out_dir: Path, run_id: str, segment_seconds: int, timeout_s: float
) -> list[str]:
    """ffmpeg that stream-copies the camera's video into fMP4 segments cut on keyframes.

    The segment list (``name,start,end`` in seconds of the run) goes to stdout as each
    segment closes: the supervisor indexes from it without probing files. Only video is
    kept (``-map 0:v:0``): the order asks for video; sound recording in public places is
    a privacy question the city has not decided, and many camera audio codecs (G.711) do
    not fit MP4.
    """
    source = url.removeprefix("file://") if url.startswith("file://") else url
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        *input_options(url, timeout_s),
        "-i", source,
        "-map", "0:v:0", "-c", "copy",
        "-f", "segment",
        "-segment_time", str(segment_seconds),
        "-segment_format", "mp4",
        "-segment_format_options", f"movflags={FMP4_FLAGS}",
        "-reset_timestamps", "1",
        "-strftime", "1",
        "-segment_list", "pipe:1",
        "-segment_list_type", "csv",
        str(out_dir / SEGMENT_NAME_PATTERN.format(run=run_id)),
    ]


def relative_segment_path(basename: str) -> str:
    """``20261121T173718Z-ab12.mp4`` → ``2026/11/21/20261121T173718Z-ab12.mp4``."""
    return f"{basename[0:4]}/{basename[4:6]}/{basename[6:8]}/{basename}"


def start_from_name(basename: str) -> int | None:
    """UTC start (µs, second precision) encoded in a segment's file name, if it has one."""
    from datetime import datetime, timezone

    from varta.clock import from_datetime

    try:
        dt = datetime.strptime(basename[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return from_datetime(dt)
