"""Turning ffmpeg's run-relative segment times into UTC instants (pure).

ffmpeg reports each finished segment as ``start,end`` seconds since the first packet of
the run. The segment list line arrives when the *next* segment's first keyframe arrives,
i.e. at the wall-clock end of the finished segment. So the first segment of a run fixes
the anchor (wall time of media time 0 = arrival - end); later segments are placed on that
anchor, which keeps consecutive segments exactly contiguous (no jitter between them).

Two clocks disagree over days: the camera's and ours. If media time runs ahead of the
wall clock (negative lag) the anchor is pulled back so nothing is ever dated in the
future (the next segment then starts exactly where the previous one ended, never
overlapping it). A positive lag is reported as *lag*: it is how a recorder that cannot keep up
shows itself (media arrives later than it was produced) before it loses anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from varta.clock import US


@dataclass
class RunClock:
    anchor_us: int | None = None
    last_end_us: int | None = None

    def place(self, start_s: float, end_s: float, arrived_us: int) -> tuple[int, int, float]:
        """(start_us, end_us, lag_s) for a segment reported at ``arrived_us``."""
        if self.anchor_us is None:
            self.anchor_us = arrived_us - int(round(end_s * US))
        end_us = self.anchor_us + int(round(end_s * US))
        lag_us = arrived_us - end_us
        if lag_us < 0:
            self.anchor_us += lag_us
            end_us += lag_us
            lag_us = 0
        start_us = self.anchor_us + int(round(start_s * US))
        if self.last_end_us is not None and start_us < self.last_end_us:
            # The anchor moved back a little (earliest arrival so far): keep the run
            # contiguous rather than overlap the previous segment by that much.
            start_us = self.last_end_us
        self.last_end_us = end_us
        return start_us, end_us, lag_us / US
