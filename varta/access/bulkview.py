"""Bulk viewing: one account or token opening an unusual number of cameras in a short time
(a scraped view, a stolen session, a bot) raises an alarm (pure; the thresholds are the
city's policy limits, varta/access/service.py ``limits``).

Counted per web node, in memory: a viewer spread over several web nodes is counted on each
of them separately (each node still sees its own share).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

# The policy's limits (name -> default, lowest, highest, what it is).
LIMITS = {
    # Above the console's largest wall (16 tiles) and a group switch or two.
    "bulk_view_cameras": (40.0, 2.0, 10_000.0, "different cameras one account or token may open within the window"),
    "bulk_view_window_s": (60.0, 5.0, 86_400.0, "the bulk-viewing window, seconds"),
}


def validate_limit(name: str, value: float) -> float:
    if name not in LIMITS:
        raise ValueError(f"unknown limit {name!r}; limits: {', '.join(LIMITS)}")
    _, lo, hi, _ = LIMITS[name]
    if not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g}")
    return float(value)


@dataclass
class BulkWatch:
    """Who opened which camera when, over the last window; says when a viewer crosses the limit."""

    _seen: dict[str, deque] = field(default_factory=dict)
    _alarmed: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, viewer: str, camera_id: str, t: float, max_cameras: float, window_s: float) -> int | None:
        """Record one opening; the number of different cameras in the window when it is
        above ``max_cameras`` for the first time in a window (None otherwise)."""
        with self._lock:  # a 16-tile wall opens its sockets at once, on as many threads
            return self._seen_locked(viewer, camera_id, t, max_cameras, window_s)

    def _seen_locked(self, viewer: str, camera_id: str, t: float, max_cameras: float, window_s: float) -> int | None:
        q = self._seen.setdefault(viewer, deque())
        q.append((t, camera_id))
        while q and q[0][0] < t - window_s:
            q.popleft()
        cameras = len({c for _, c in q})
        if cameras <= max_cameras:
            return None
        if t - self._alarmed.get(viewer, -1e18) < window_s:
            return None
        self._alarmed[viewer] = t
        if len(self._seen) > 10_000:  # forget the quiet ones
            for k in [k for k, d in self._seen.items() if not d or d[-1][0] < t - window_s]:
                del self._seen[k]
        return cameras
