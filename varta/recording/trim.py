"""Cut a segment short by stream copy (no re-encoding): where a planned move ends a node's
footage, the next node's footage begins.

A segment must *start* on a keyframe, but it may *end* on any frame (every frame kept was
decodable from the keyframe before it), so the node giving a camera away can stop at the
exact instant the taking node's first keyframe was recorded: the index stays contiguous
and nothing is indexed twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import av

from varta.recording.ffmpeg import FMP4_FLAGS
from varta.recording.mp4box import SegmentCheck, check_segment


def trim_segment(path: Path, keep_s: float) -> SegmentCheck | None:
    """Keep the first ``keep_s`` seconds of ``path`` (in decode order), replacing the file
    atomically; None (and the file removed) when nothing would be left."""
    path = Path(path)
    tmp = path.with_name(path.name + ".trim")
    kept = 0
    with av.open(str(path), "r") as inp:
        video = inp.streams.video[0]
        tb = video.time_base
        out = av.open(str(tmp), "w", format="mp4", options={"movflags": FMP4_FLAGS})
        try:
            stream = out.add_stream_from_template(video)
            for packet in inp.demux(video):
                if packet.dts is None:
                    continue
                if packet.dts * tb >= keep_s:
                    break
                packet.stream = stream
                out.mux(packet)
                kept += 1
        finally:
            out.close()
    if kept == 0:
        tmp.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        return None
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return check_segment(path)
