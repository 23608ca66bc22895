"""A still picture of what a camera sees now (live view, R1): one frame, as JPEG.

Taken from the sub-stream when the camera has one (smaller, cheaper), by one short ffmpeg
run; a camera that does not answer gives a clear error within the RTSP timeout.
"""

from __future__ import annotations

import subprocess

from varta.cameras.model import redact_text
from varta.recording.ffmpeg import input_options


class SnapshotError(RuntimeError):
    pass


def snapshot_command(ffmpeg: str, url: str, timeout_s: float, width: int | None = None) -> list[str]:
    scale = ["-vf", f"scale={width}:-2"] if width else []
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *input_options(url, timeout_s),
            "-i", url, "-map", "0:v:0", "-frames:v", "1", *scale, "-q:v", "3", "-f", "image2", "-c:v", "mjpeg",
            "pipe:1"]


def take_snapshot(ffmpeg: str, url: str, timeout_s: float, width: int | None = None) -> bytes:
    try:
        res = subprocess.run(snapshot_command(ffmpeg, url, timeout_s, width), capture_output=True,
                             timeout=timeout_s + 10)
    except subprocess.TimeoutExpired:
        raise SnapshotError(f"the camera did not send a picture within {timeout_s + 10:.0f} s") from None
    if res.returncode != 0 or not res.stdout.startswith(b"\xff\xd8"):
        lines = res.stderr.decode("utf-8", "replace").strip().splitlines()
        why = redact_text(lines[-1] if lines else f"ffmpeg exited with {res.returncode}", [url])
        raise SnapshotError(f"no picture from the camera: {why}")
    return res.stdout
