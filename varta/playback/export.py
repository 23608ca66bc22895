"""Export footage to MP4 by stream copy (no re-encoding), one file per camera.

ffmpeg's concat demuxer reads the segments in order; ``inpoint`` on the first makes the
file start at the keyframe at or before ``from`` (the decoder needs it; nothing earlier
is included), ``outpoint`` on the last ends it at ``to``. Gaps inside the interval are
collapsed in the file (MP4 has no notion of "no video here") and reported beside it.
The SHA-256 is taken of the finished file, as the recipient will receive it.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from varta.clock import US, format_time, now_us
from varta.playback.ranges import find_gaps, merge_ranges
from varta.recording.index import ArchiveIndex
from varta.recording.probe import ProbeError, keyframe_at_or_before, probe_segment
from varta.storage.files import FileUnavailable, segment_reader, sha256_file  # noqa: F401 - sha256_file: re-exported

Progress = Callable[[float], None]


class ExportError(Exception):
    pass


@dataclass
class ExportedFile:
    camera_id: str
    path: str
    start: str  # the first frame in the file (keyframe at or before the asked start)
    end: str
    duration_s: float
    frames: int
    bytes: int
    sha256: str
    gaps: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def export_camera(index: ArchiveIndex, segments_from, ffmpeg: str, camera_id: str, t1: int, t2: int,
                  out_path: Path, tz, progress: Progress | None = None, faststart: bool = True) -> ExportedFile:
    """``segments_from``: the recordings folder, or a reader that finds each segment on
    whichever node holds it (varta.storage.files). ``faststart`` puts the index first (a
    download can start playing before it ends) at the price of rewriting the whole file
    once; evidence packages, which are zipped and read whole, skip it (bench/RESULTS.md §9:
    writing is what bounds a package build)."""
    reader = segment_reader(segments_from)
    if t2 <= t1:
        raise ExportError("the end of the interval must be after its start")
    segs = index.segments_between(camera_id, t1, t2)
    if not segs:
        raise ExportError(f"camera {camera_id} has no recording between {format_time(t1, tz)} and {format_time(t2, tz)}")
    paths, missing = {}, []
    if hasattr(reader, "prefetch"):  # segments in the archive bucket: several GETs in flight
        reader.prefetch(segs)
    for s in segs:
        try:
            paths[s.id] = reader.segment(s)
        except FileUnavailable as exc:
            raise ExportError(f"camera {camera_id}: recorded file {s.path} cannot be read now: {exc}") from None
        if not paths[s.id].is_file():
            missing.append(s.path)
    if missing:
        raise ExportError(f"camera {camera_id}: {len(missing)} recorded file(s) are missing on disk "
                          f"(first: {missing[0]}); run the recorder to reconcile, then export again")
    total_us = sum(min(s.end_us, t2) - max(s.start_us, t1) for s in segs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, dir=out_path.parent) as lst:
        lst.write("ffconcat version 1.0\n")
        for i, s in enumerate(segs):
            lst.write(f"file '{paths[s.id].resolve()}'\n")
            if i == 0 and t1 > s.start_us:
                lst.write(f"inpoint {(t1 - s.start_us) / US:.6f}\n")
            if i == len(segs) - 1 and t2 < s.end_us:
                lst.write(f"outpoint {(t2 - s.start_us) / US:.6f}\n")
        list_path = Path(lst.name)
    tmp_out = out_path.with_name(out_path.name + ".part")
    cmd = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "concat", "-safe", "0", "-i", str(list_path),
        "-map", "0:v:0", "-c", "copy",
        "-metadata", f"title=Varta camera {camera_id}",
        "-metadata", f"comment=camera {camera_id}; asked {format_time(t1)} to {format_time(t2)} (UTC)",
        *(["-movflags", "+faststart"] if faststart else []),
        "-progress", "pipe:1", "-nostats",
        "-f", "mp4", str(tmp_out),
    ]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in proc.stdout:
            if progress and line.startswith("out_time_us=") and total_us > 0:
                try:
                    progress(min(int(line.split("=", 1)[1]) / total_us, 0.999))
                except ValueError:
                    pass
        err = proc.stderr.read()
        code = proc.wait()
    finally:
        list_path.unlink(missing_ok=True)
    if code != 0:
        tmp_out.unlink(missing_ok=True)
        raise ExportError(f"camera {camera_id}: ffmpeg failed: {err.strip()[-500:]}")
    tmp_out.replace(out_path)
    try:
        info = probe_segment(out_path)
    except ProbeError as exc:
        raise ExportError(f"camera {camera_id}: the exported file cannot be read back: {exc}") from None
    first = segs[0]
    actual_start = first.start_us
    if t1 > first.start_us:
        try:
            actual_start += int(keyframe_at_or_before(paths[first.id], (t1 - first.start_us) / US) * US)
        except ProbeError:
            pass
    actual_end = min(actual_start + int(info.duration_s * US) + _gap_total(segs), t2)
    ranges = merge_ranges(segs, min(actual_start, t1), t2)
    gaps = find_gaps(ranges, index.outages_between(camera_id, t1, t2), min(actual_start, t1), t2, now_us())
    if progress:
        progress(1.0)
    return ExportedFile(
        camera_id=camera_id,
        path=str(out_path),
        start=format_time(actual_start, tz),
        end=format_time(actual_end, tz),
        duration_s=round(info.duration_s, 3),
        frames=info.frames or 0,
        bytes=out_path.stat().st_size,
        sha256=sha256_file(out_path),
        gaps=[{"start": format_time(g.start_us, tz), "end": format_time(g.end_us, tz), "reason": g.reason}
              for g in gaps],
    )


def _gap_total(segs) -> int:
    """Wall time between the exported segments (collapsed in the file)."""
    total = 0
    for a, b in zip(segs, segs[1:]):
        if b.start_us > a.end_us:
            total += b.start_us - a.end_us
    return total


def export_cameras(index: ArchiveIndex, segments_from, ffmpeg: str, camera_ids: list[str], t1: int, t2: int,
                   out: Path, tz, progress: Progress | None = None) -> list[ExportedFile]:
    """One camera → ``out`` is the file; several → ``out`` is a folder of ``<camera>.mp4``."""
    if not camera_ids:
        raise ExportError("name at least one camera")
    results = []
    n = len(camera_ids)
    for i, cam in enumerate(camera_ids):
        target = out if n == 1 and out.suffix.lower() == ".mp4" else out / f"{cam}.mp4"

        def part(p: float, i=i) -> None:
            if progress:
                progress((i + p) / n)

        results.append(export_camera(index, segments_from, ffmpeg, cam, t1, t2, target, tz, part))
    return results
