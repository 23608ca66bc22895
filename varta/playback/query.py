"""The archive questions, answered from the index: what is recorded for camera X between T1 and T2."""

from __future__ import annotations

from varta.clock import format_time, now_us
from varta.playback.ranges import Range, find_gaps
from varta.recording.index import ArchiveIndex


def recordings_report(index: ArchiveIndex, camera_id: str, t1: int, t2: int, tz, segment_seconds: int = 10) -> dict:
    """``{"camera", "from", "to", "ranges": [{start,end}], "gaps": [{start,end,reason,detail}]}``."""
    if t2 <= t1:
        raise ValueError("'to' must be after 'from'")
    ranges = [Range(s, e) for s, e in index.ranges_between(camera_id, t1, t2)]
    status = index.status(camera_id)
    recording = bool(status and status["state"] == "recording")
    now = now_us()
    gaps = find_gaps(ranges, index.outages_between(camera_id, t1, t2), t1, t2, now, recording_now=recording,
                     tail_us=(segment_seconds * 3 + 5) * 1_000_000)
    return {
        "camera": camera_id,
        "from": format_time(t1, tz),
        "to": format_time(t2, tz),
        "recorded_seconds": round(sum(r.end_us - r.start_us for r in ranges) / 1e6, 3),
        "ranges": [{"start": format_time(r.start_us, tz), "end": format_time(r.end_us, tz)} for r in ranges],
        "gaps": [
            {"start": format_time(g.start_us, tz), "end": format_time(g.end_us, tz), "reason": g.reason,
             "description": g.description, "detail": g.detail}
            for g in gaps
        ],
    }
