"""The ``motion`` and ``events`` recording modes (R8): keep footage only around activity.

Pure rules, no I/O. The recorder always writes every segment; the disk is the ring
buffer. Once a segment is old enough that no later activity could still want it as
pre-roll, the janitor drops it if it was recorded in a motion/events period and lies
outside every activity span widened by the pre- and post-roll. So the pre-roll is real
footage from before the activity began, which a camera-side ring buffer could not give
after a recorder restart, and a gap in analysis never loses footage: segments are only
dropped where the analytics worker was running and saw nothing.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from varta.recording.retention import Hold, Interval, is_held

ACTIVITY_MODES = frozenset({"motion", "events"})  # timetable modes, named as their activity kinds
SETTLE_MARGIN_US = 60_000_000  # analysis writes its spans a few seconds late; wait well past that


def settled_before(now_us: int, pre_roll_us: int, post_roll_us: int) -> int:
    """Segments ending before this instant can be judged: no activity can still claim them."""
    return now_us - max(pre_roll_us, post_roll_us) - SETTLE_MARGIN_US


def widen(spans: Iterable[tuple[int, int | None]], pre_us: int, post_us: int, open_end_us: int) -> list[tuple[int, int]]:
    """Activity spans with pre/post roll; a span still going on reaches ``open_end_us``."""
    return [(s - pre_us, (e if e is not None else open_end_us) + post_us) for s, e in spans]


def without_activity(segments: Sequence[Interval], mode_of: Callable[[int], str],
                     spans: dict[str, list[tuple[int, int]]], analysed: tuple[int, int] | None,
                     holds: Sequence[Hold] = ()) -> list:
    """The segments to drop.

    ``mode_of(start_us)`` is the timetable's mode when the segment began; ``spans`` maps
    "motion"/"events" to widened activity spans; ``analysed`` is the window (since, until)
    in which the analytics worker has watched this camera without a break (None: not
    now). Footage outside it is kept: no analysis means nobody knows what happened.
    """
    if analysed is None:
        return []
    since, until = analysed
    doomed = []
    for seg in segments:
        kind = mode_of(seg.start_us)
        if kind not in ACTIVITY_MODES or seg.start_us < since or seg.end_us > until or is_held(seg, holds):
            continue
        if any(seg.start_us < e and s < seg.end_us for s, e in spans.get(kind, ())):
            continue
        doomed.append(seg)
    return doomed
