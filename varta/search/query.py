"""A track search, checked (pure): the filters an investigator gives, and the area test."""

from __future__ import annotations

from dataclasses import dataclass, field

from varta.analytics.trackrecords import COLOURS, COMPASS, IMAGE_POINTS
from varta.clock import US

MAX_SPAN_US = 31 * 86400 * US
SIDES = ("top", "bottom", "left", "right", "inside")


class QueryError(ValueError):
    pass


@dataclass
class TrackQuery:
    start_us: int
    end_us: int
    classes: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)  # empty: every camera the caller may search
    headings: list[str] = field(default_factory=list)  # compass (n, ne, …) or the picture's (up, up-right, …)
    colours: list[str] = field(default_factory=list)  # any of them
    entry: list[str] = field(default_factory=list)
    exit: list[str] = field(default_factory=list)
    min_speed: float | None = None  # picture widths a second
    min_dwell_s: float | None = None
    max_dwell_s: float | None = None
    polygon: list[tuple[float, float]] = field(default_factory=list)  # (lat, lon): cameras standing inside
    limit: int = 200

    def checked(self) -> "TrackQuery":
        if self.end_us <= self.start_us:
            raise QueryError("'to' must be after 'from'")
        if self.end_us - self.start_us > MAX_SPAN_US:
            raise QueryError("search at most 31 days at a time")
        self.headings = [h.lower() for h in self.headings]
        bad = [h for h in self.headings if h not in COMPASS and h not in IMAGE_POINTS]
        if bad:
            raise QueryError(f"heading {bad}: one of {', '.join(COMPASS)} (compass) or {', '.join(IMAGE_POINTS)}")
        self.colours = [c.lower() for c in self.colours]
        bad = [c for c in self.colours if c not in COLOURS]
        if bad:
            raise QueryError(f"colour {bad}: one of {', '.join(COLOURS)}")
        for name, sides in (("entry", self.entry), ("exit", self.exit)):
            bad = [s for s in sides if s not in SIDES]
            if bad:
                raise QueryError(f"{name} {bad}: one of {', '.join(SIDES)}")
        if self.polygon and len(self.polygon) < 3:
            raise QueryError("an area needs at least three points")
        if not 1 <= self.limit <= 1000:
            raise QueryError("limit: 1 to 1000")
        return self

from varta.cameras.geo import inside  # noqa: E402


def cameras_for(q: TrackQuery, searchable: dict) -> list[str]:
    """The camera ids a search reads: those asked for (or all) of ``searchable`` (id → camera
    the caller may search), standing inside the query's area when it has one."""
    ids = [c for c in (q.cameras or searchable) if c in searchable]
    if q.polygon:
        ids = [c for c in ids if searchable[c].latitude is not None
               and inside(q.polygon, searchable[c].latitude, searchable[c].longitude)]
    return ids
