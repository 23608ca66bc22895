"""HLS VOD playlists over the recorded fMP4 segments (R9). Pure.

Each segment file is ``init section + fragments``; the playlist points at both halves
of the same file with byte ranges, so nothing is copied or remuxed to play footage.
Segments carry their own timestamps from 0 (one ffmpeg segment each) and may differ in
codec parameters after a camera restart, so every segment is preceded by a
DISCONTINUITY and its own EXT-X-MAP. EXT-X-PROGRAM-DATE-TIME gives players the wall
clock of each segment, and EXT-X-START with PRECISE=YES makes playback begin at the
asked instant (the player decodes from the keyframe before it and shows the frame at or
just before the asked time).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from varta.clock import US, format_time


def vod_playlist(segments: Sequence, url_for: Callable[[object], str], start_us: int | None = None) -> str:
    if not segments:
        raise ValueError("no segments")
    target = max(1, math.ceil(max(s.duration_us for s in segments) / US))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-MEDIA-SEQUENCE:0",
    ]
    if start_us is not None:
        offset = _offset_in_playlist(segments, start_us)
        lines.append(f"#EXT-X-START:TIME-OFFSET={offset:.3f},PRECISE=YES")
    for i, seg in enumerate(segments):
        url = url_for(seg)
        if i:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_time(seg.start_us)}")
        lines.append(f'#EXT-X-MAP:URI="{url}",BYTERANGE="{seg.init_bytes}@0"')
        lines.append(f"#EXTINF:{seg.duration_us / US:.3f},")
        lines.append(f"#EXT-X-BYTERANGE:{seg.bytes - seg.init_bytes}@{seg.init_bytes}")
        lines.append(url)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _offset_in_playlist(segments: Sequence, t: int) -> float:
    """Media-timeline offset of wall time ``t`` (gaps between segments are collapsed)."""
    elapsed = 0
    for seg in segments:
        if t < seg.start_us:
            return elapsed / US  # t falls in a gap: start at the next footage
        if t < seg.end_us:
            return (elapsed + t - seg.start_us) / US
        elapsed += seg.duration_us
    return max(0, elapsed - 1) / US
