"""The few shapes the analytics pieces pass between them (no logic, no I/O).

Coordinates: boxes are in *source pixels* of the analysed frame (x1, y1, x2, y2); rule
geometry (zones, lines, masks) is stored *normalised* to 0..1 of the frame's width and
height, so one rule fits the sub-stream and the main stream alike. Times ``t`` are seconds
on the stream's own clock (monotonic within one analysis run); wall-clock times are UTC µs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels


@dataclass
class Track:
    """One object followed across frames by the tracker."""

    id: int
    label: str  # "person", "car", ...
    cls: int  # the detector's class index
    score: float  # best detection score seen
    box: Box  # latest box: the matched detection's, or the tracker's prediction (see ``seen_box``)
    first_t: float
    last_t: float  # last time a detection was matched to it
    hits: int = 1
    # What the detector last saw: the box and score of the detection matched at ``last_t``.
    # Only these are observations; ``box`` on any later frame is a prediction and is never
    # reported as seen (MOT output, alarm pictures, counts: see ``observed``).
    seen_box: Box | None = None
    seen_score: float = 0.0
    # The anchor point (bottom centre of the box: where the object stands) over time:
    # (t, x, y). Zones and lines test the anchor; direction is read off this path.
    path: list[tuple[float, float, float]] = field(default_factory=list)
    confirmed: bool = False

    def __post_init__(self):
        if self.seen_box is None:
            self.seen_box = self.box
            self.seen_score = self.seen_score or self.score

    def observed(self, t: float) -> bool:
        """Whether the detector saw this object on the frame at time ``t`` (else its box
        there is only predicted)."""
        return self.last_t == t

    @property
    def anchor(self) -> tuple[float, float]:
        """Where the object stands by the latest box (possibly predicted)."""
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, y2

    @property
    def seen_anchor(self) -> tuple[float, float]:
        """Where the object stood when last seen: what rules decide on."""
        x1, y1, x2, y2 = self.seen_box
        return (x1 + x2) / 2, y2

    @property
    def age_s(self) -> float:
        return self.last_t - self.first_t


@dataclass(frozen=True)
class MotionResult:
    """What the cheap motion gate saw in one frame."""

    boxes: tuple[Box, ...]  # regions that changed, source pixels
    fraction: float  # share of the unmasked picture that changed, 0..1

    @property
    def any(self) -> bool:
        return bool(self.boxes)


@dataclass(frozen=True)
class FrameInfo:
    """The context rules are evaluated in."""

    t: float  # stream seconds
    width: int
    height: int
    local: datetime | None = None  # city-local wall time, for weekly rule schedules
    motion: MotionResult | None = None
    # Camera tampering states that hold now (see tamper.py): subset of
    # {"covered", "blinded", "defocused", "moved", "video_lost"}.
    tamper: frozenset[str] = frozenset()


@dataclass
class Occurrence:
    """Something a rule says is happening; becomes (part of) an event.

    ``key`` is stable while the same thing goes on (e.g. ``"courtyard:track 7"``) so the
    pipeline can open one event, update it, and close it when the key stops appearing.
    """

    key: str
    rule: str  # the rule's name, as the city wrote it
    kind: str  # zone | line | loiter | crowd | stopped | tamper
    t: float
    zone: str | None = None
    label: str | None = None
    track_id: int | None = None
    score: float = 0.0
    box: Box | None = None
    detail: dict = field(default_factory=dict)
    instant: bool = False  # a line crossing: starts and ends at once
