"""Why a camera stopped delivering video: classify ffmpeg's error output (pure).

The reasons are a small fixed vocabulary because operators filter and count by them,
and the timeline colours gaps by them. ``detail`` keeps the (redacted) words ffmpeg said.
"""

from __future__ import annotations

import re

REASONS = {
    "refused": "connection refused: nothing listens at the camera's address and port",
    "timeout": "timed out: the camera did not answer or stopped sending",
    "auth": "authentication failed: the camera refused the user name or password",
    "not_found": "stream not found: the camera has no stream at this path",
    "unreachable": "network unreachable or host unknown",
    "stream_ended": "the camera ended the stream",
    "bad_stream": "the stream could not be read (unsupported or corrupt data)",
    "process_died": "the recording process died unexpectedly",
    "stalled": "no video arrived for too long; the recording process was restarted",
    "disk_full": "the disk is full: recording could not write",
    "write_error": "the recording could not be written to disk",
    "schedule_off": "not recorded by schedule",
    "recorder_down": "the recorder was not running",
    "node_failover": "the node recording the camera stopped; another node took the camera over",
    "file_missing": "the recorded file has vanished from disk",
    "no_recording": "nothing was recorded (camera not yet registered or not assigned to a recorder)",
    "in_progress": "being recorded now: the current segment is not finished yet",
    "unknown": "recording stopped for an unknown reason",
}

# Order matters: the first pattern found wins (auth before generic 4xx, etc.).
_PATTERNS = (
    ("disk_full", ("no space left on device",)),
    ("auth", ("401 unauthorized", "403 forbidden", "unauthorized")),
    ("not_found", ("404 not found", "method describe failed: 404", "454 session not found")),
    ("refused", ("connection refused",)),
    ("timeout", ("timed out", "timeout", "operation not permitted")),
    ("unreachable", ("no route to host", "network is unreachable", "name or service not known",
                     "temporary failure in name resolution", "failed to resolve")),
    ("write_error", ("error writing", "failed to open segment", "permission denied", "read-only file system",
                     "could not write header")),
    ("bad_stream", ("invalid data found", "could not find codec parameters", "non-existing pps",
                    "error while decoding", "unsupported")),
    ("stream_ended", ("end of file", "connection reset by peer", "broken pipe")),
)


def classify(stderr_text: str, exit_code: int | None) -> str:
    text = (stderr_text or "").lower()
    for reason, needles in _PATTERNS:
        if any(n in text for n in needles):
            return reason
    if exit_code is not None and exit_code < 0:
        return "process_died"  # killed by a signal we did not send
    if exit_code == 0:
        return "stream_ended"
    return "unknown"


def describe(reason: str) -> str:
    return REASONS.get(reason, reason)


_NOISE = re.compile(r"\[[\w -]+ @ 0x[0-9a-f]+\] |\?timeout=\d+")


def last_lines(text: str, n: int = 3) -> str:
    """The last few distinct lines ffmpeg printed, without its internal addresses."""
    lines: list[str] = []
    for ln in (text or "").splitlines():
        ln = _NOISE.sub("", ln).strip()
        if ln and ln not in lines:
            lines.append(ln)
    return " | ".join(lines[-n:])[:500]
