"""Recorded ranges and gaps with their reasons (R9, R10). Pure functions.

A *range* is a stretch of time with continuous footage (segments that touch, within
``JOIN_US``). A *gap* is everything else inside the asked window, cut into parts by the
outage records that explain them (camera refused, recorder down, schedule off…).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from varta.recording.index import JOIN_US
from varta.recording.outage import describe



@dataclass(frozen=True)
class Range:
    start_us: int
    end_us: int


@dataclass(frozen=True)
class Gap:
    start_us: int
    end_us: int
    reason: str
    detail: str = ""

    @property
    def description(self) -> str:
        return describe(self.reason)


def merge_ranges(segments: Iterable, t1: int, t2: int, join_us: int = JOIN_US) -> list[Range]:
    out: list[list[int]] = []
    for seg in sorted(segments, key=lambda s: s.start_us):
        s, e = max(seg.start_us, t1), min(seg.end_us, t2)
        if e <= s:
            continue
        if out and s - out[-1][1] <= join_us:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [Range(s, e) for s, e in out]


def find_gaps(ranges: Sequence[Range], outages: Sequence, t1: int, t2: int, now: int,
              recording_now: bool = False, tail_us: int = 0) -> list[Gap]:
    """Gaps in ``[t1, min(t2, now)]`` not covered by ``ranges``, each with a reason.

    ``recording_now`` + ``tail_us``: a gap that reaches ``now`` and began less than
    ``tail_us`` ago is the segment being written, reported as ``in_progress``.
    """
    end = min(t2, now)
    holes: list[tuple[int, int]] = []
    cur = t1
    for r in ranges:
        if r.start_us > cur:
            holes.append((cur, min(r.start_us, end)))
        cur = max(cur, r.end_us)
    if cur < end:
        holes.append((cur, end))
    gaps: list[Gap] = []
    for a, b in holes:
        if b <= a:
            continue
        for part in _explain(a, b, outages):
            gaps.append(part)
    if gaps and recording_now and gaps[-1].end_us >= end and now - gaps[-1].start_us <= tail_us \
            and gaps[-1].reason == "no_recording":
        g = gaps.pop()
        gaps.append(Gap(g.start_us, g.end_us, "in_progress"))
    return gaps


def _explain(a: int, b: int, outages: Sequence) -> list[Gap]:
    parts: list[Gap] = []
    cur = a
    for o in sorted(outages, key=lambda o: o.start_us):
        os_ = max(o.start_us, a)
        oe = min(o.end_us if o.end_us is not None else b, b)
        if oe <= cur or os_ >= b:
            continue
        if os_ > cur:
            parts.append(Gap(cur, os_, "no_recording"))
            cur = os_
        parts.append(Gap(cur, oe, o.reason, o.detail))
        cur = oe
    if cur < b:
        parts.append(Gap(cur, b, "no_recording"))
    merged: list[Gap] = []
    for g in parts:
        if merged and merged[-1].reason == g.reason and merged[-1].end_us == g.start_us:
            merged[-1] = Gap(merged[-1].start_us, g.end_us, g.reason, merged[-1].detail or g.detail)
        else:
            merged.append(g)
    return merged
