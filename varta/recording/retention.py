"""Retention rules (A4.6, R2, R4). Pure functions: no files, no database.

* Footage is kept at least ``retention_days`` (never fewer than 10) and then deleted.
* Footage overlapping an active hold is never deleted, by age or by lack of space;
  only a recorded destruction instruction (releasing the hold) returns it to retention.
* When the disk is full, expired footage goes first; if that is not enough, the oldest
  unheld footage goes next, and each time a critical alarm says so: recording never stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from varta.clock import DAY_US


class Interval(Protocol):
    start_us: int
    end_us: int


@dataclass(frozen=True)
class Hold:
    start_us: int
    end_us: int


def cutoff_us(now_us: int, retention_days: int) -> int:
    """Segments that ended at or before this instant are past retention."""
    return now_us - retention_days * DAY_US


def is_held(seg: Interval, holds: Iterable[Hold]) -> bool:
    """A segment is held if any part of it overlaps a held interval (keep whole segments)."""
    return any(seg.start_us < h.end_us and h.start_us < seg.end_us for h in holds)


def expired(segments: Iterable[Interval], now_us: int, retention_days: int, holds: Sequence[Hold]) -> list:
    limit = cutoff_us(now_us, retention_days)
    return [s for s in segments if s.end_us <= limit and not is_held(s, holds)]


# When a write has already failed for lack of space, free at least this share of the disk
# at once, so recording resumes without a stop-and-go at every segment.
URGENT_FREE_FRACTION = 0.05


def free_target_bytes(total_bytes: int, min_free_percent: float, min_free_mb: int) -> int:
    """Free space to keep on the recordings disk (the larger of the two settings)."""
    return max(int(total_bytes * min_free_percent / 100), min_free_mb * 1024 * 1024)


def choose_to_free(candidates: Iterable, bytes_needed: int, holds_by_camera: dict[str, Sequence[Hold]]) -> list:
    """Oldest-first unheld segments whose sizes add up to ``bytes_needed``.

    ``candidates`` must already be ordered oldest first and carry ``camera_id``,
    ``bytes``, ``start_us``, ``end_us``.
    """
    chosen, freed = [], 0
    for seg in candidates:
        if freed >= bytes_needed:
            break
        if is_held(seg, holds_by_camera.get(seg.camera_id, ())):
            continue
        chosen.append(seg)
        freed += seg.bytes
    return chosen


@dataclass(frozen=True)
class StorageForecast:
    days_capacity: float | None  # how many days of footage the disk holds at current bitrates
    required_days: int  # the longest retention configured
    daily_bytes: float
    free_bytes: int
    used_bytes: int

    @property
    def short(self) -> bool:
        return self.days_capacity is not None and self.days_capacity < self.required_days


def forecast(free_bytes: int, used_bytes: int, reserve_bytes: int, bitrates_bps: dict[str, float],
             retention_days: dict[str, int]) -> StorageForecast:
    """Days of footage the disk can hold: (what Varta uses + what is free − reserve) / daily volume."""
    daily = sum(b / 8 * 86_400 for b in bitrates_bps.values())
    required = max(retention_days.values(), default=0)
    usable = max(free_bytes + used_bytes - reserve_bytes, 0)
    days = usable / daily if daily > 0 else None
    return StorageForecast(days, required, daily, free_bytes, used_bytes)


# --- whole days of the index (PostgreSQL day partitions: varta/db/partitions.py) -------------
def day_droppable(day_start_us: int, day_end_us: int, max_segment_us: int, cutoffs: Iterable[int],
                  holds: Iterable[Hold]) -> bool:
    """A day of the index may go as a whole when every camera's footage in it has expired
    (a segment starting that day ends at most ``max_segment_us`` after it) and no active hold
    touches it. ``cutoffs``: one per retention class in use; none → nothing to judge by."""
    cutoffs = list(cutoffs)
    if not cutoffs or day_end_us + max_segment_us > min(cutoffs):
        return False
    return not any(h.start_us < day_end_us + max_segment_us and day_start_us < h.end_us for h in holds)


def mend_span(span_start_us: int, span_end_us: int, span_bytes: int, dropped_bytes: int, day_start_us: int,
              next_start_us: int | None) -> tuple:
    """What becomes of a continuous stretch (a ``spans`` row) when the day it reaches into is
    dropped: ``("rebuild",)`` when it began before that day (footage kept before it, e.g.
    held: recomputed from the segments), ``("delete",)`` when nothing of it is left, else
    ``("update", new_start, new_bytes)``: it now begins at the first segment after the day."""
    if span_start_us < day_start_us:
        return ("rebuild",)
    if next_start_us is None or next_start_us > span_end_us:
        return ("delete",)
    return ("update", next_start_us, max(0, span_bytes - dropped_bytes))
