"""The analytics rules engine: what in a camera's picture is worth an alarm (R3, R6, R8, 1.1).

Pure logic, no I/O. A camera's analytics config holds a list of rules (JSON objects); this
module validates them (:func:`parse_rules`, errors name the rule and the field) and turns the
tracker's confirmed tracks, frame by frame, into :class:`~varta.analytics.types.Occurrence`
objects that open, go on and close (:class:`RuleEngine`).

- R3 / clause 1.1 ("detecting situations atypical for the watched zone", "prevention of
  unlawful acts"): intrusion into a zone, crossing a line in a given direction, loitering,
  crowds, stopped vehicles, camera tampering.
- R6 (the operator sees the nature and place of the violation and the offender's direction
  of movement): every track-based occurrence carries the rule's zone, the object's label,
  box and ``detail["direction"]`` = :func:`varta.analytics.direction.track_motion`.
- R8 (programming of operating modes): every rule has a weekly ``schedule`` of when it is
  armed, in the same format as recording schedules (:mod:`varta.cameras.schedule`) with the
  modes ``"on"`` and ``"off"``.

Geometry in rules is normalised to 0..1 of the picture (x to the right, y down); the engine
converts it to pixels with ``FrameInfo.width``/``height``. Objects are placed by their
anchor (``Track.seen_anchor``: the bottom centre of the box, where the object stands) as the
detector last *saw* it: a box the tracker only predicts never moves an object into a zone or
across a line, and an occurrence opens only on a frame where its object (for a crowd: one of
its objects) was seen, so the alarm's picture shows what the box says.

Rule JSON, common fields::

    name       required, unique per camera (compared ignoring case)
    type       zone | line | loiter | crowd | stopped | tamper
    enabled    default true
    classes    labels from person, bicycle, car, motorcycle, bus, truck (not for tamper);
               default: zone, line: all; loiter, crowd: person; stopped: car, bus, truck,
               motorcycle
    schedule   weekly arming timetable, default always on; e.g. {"default": "off", "rules":
               [{"days": ["mon", "tue"], "from": "22:00", "to": "06:00", "mode": "on"}]}
               or just "on" / "off"
    severity   info | warning | alarm (default alarm)
    zone       optional place name shown to the operator (default: the rule's name)
    description  optional free text

Per type (points are [x, y] in 0..1, polygons are lists of >= 3 points):

    zone     polygon (required), min_dwell_s (default 1.0)
    line     a, b (required: the line's two ends), direction a_to_b | b_to_a | both
             (default both), hysteresis (fraction of the picture diagonal, default 0.01)
    loiter   polygon (optional: whole picture), dwell_s (default 30)
    crowd    polygon (optional), max_count (required), min_duration_s (default 3)
    stopped  polygon (optional), max_move (fraction of the diagonal, default 0.02),
             still_s (default 30)
    tamper   kinds (subset of covered, blinded, defocused, moved, video_lost; default all),
             min_duration_s (default 0)

Line sides. The line is drawn from its end ``a`` to its end ``b``: picture an arrow a -> b.
**Side A is on the left of that arrow and side B on its right, as you look at the picture**
(turn the picture until the arrow points up: A is then on your left hand, B on your right).
``"a_to_b"`` counts objects crossing from side A to side B, ``"b_to_a"`` the reverse,
``"both"`` either. Examples:

- a line across a street drawn from left to right (a = [0.1, 0.6], b = [0.9, 0.6]): side A
  is above the line (further from the camera), side B below; ``a_to_b`` = moving down the
  picture across the line, towards the camera;
- a line drawn from top to bottom (a = [0.5, 0.1], b = [0.5, 0.9]): side A is the picture's
  right part, side B its left; ``a_to_b`` = moving from right to left.

A crossing counts once: the anchor must be firmly (more than ``hysteresis``) on one side and
then firmly on the other, and the move between those two points must cross the drawn
segment (going round its end does not count); jitter inside the band changes nothing.

Engine semantics: ``step`` returns (opened, ongoing, closed). Occurrence keys:
``"<rule>:track <id>"`` (zone, loiter, stopped), ``"<rule>:crowd"``, ``"<rule>:<kind>"``
(tamper), ``"<rule>:track <id>:crossing <n>"`` (line; instant, in ``opened`` only).
``detail`` always has ``severity``; track-based ones have ``direction`` (track_motion or
None) and ``since`` (when the condition started holding, stream seconds); closed ones have
``end``: ``"track_lost"`` (the track vanished), ``"disarmed"`` (schedule off) or
``"cleared"`` (the condition stopped holding). Time ``t`` must not go backwards: a new
analysis run needs a new engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, Iterable

import numpy as np

from varta.analytics.direction import track_motion
from varta.analytics.types import Box, FrameInfo, Occurrence, Track
from varta.cameras.schedule import Schedule, ScheduleError

LABELS = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VEHICLES = ("car", "bus", "truck", "motorcycle")
TAMPER_KINDS = ("covered", "blinded", "defocused", "moved", "video_lost")
SEVERITIES = ("info", "warning", "alarm")
DIRECTIONS = ("a_to_b", "b_to_a", "both")
ARMING_MODES = ("on", "off")
ALWAYS_ON = Schedule("on", ())

Point = tuple[float, float]
Polygon = tuple[Point, ...]


class RuleError(ValueError):
    """A rule that cannot be used; the message names the rule and the field."""

    def __init__(self, message: str, rule: str | None = None, field: str | None = None):
        self.rule = rule
        self.field = field
        where = f"rule {rule}" if rule else "rule"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# Geometry helpers (pure, vectorised)


def point_in_polygon(points, polygon) -> np.ndarray | bool:
    """Whether each point lies inside ``polygon`` (even-odd ray casting).

    ``points`` is one (x, y) or an (N, 2) array; ``polygon`` an (M, 2) sequence of vertices in
    the same units. Returns a bool for one point, an (N,) bool array otherwise. Points exactly
    on an edge may fall either way.
    """
    p = np.asarray(points, dtype=float)
    single = p.ndim == 1
    p = p.reshape(-1, 2)
    v = np.asarray(polygon, dtype=float).reshape(-1, 2)
    w = np.roll(v, -1, axis=0)
    x, y = p[:, 0:1], p[:, 1:2]  # (N, 1)
    xi, yi, xj, yj = v[:, 0], v[:, 1], w[:, 0], w[:, 1]  # (M,)
    straddles = (yi > y) != (yj > y)  # (N, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = xi + (y - yi) * (xj - xi) / (yj - yi)
    inside = np.count_nonzero(straddles & (x < x_at), axis=1) % 2 == 1
    return bool(inside[0]) if single else inside


def _orient(o, a, b):
    """(a - o) x (b - o): > 0, < 0 or 0 (collinear), broadcast over leading axes."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def _on_segment(o, a, b):
    """For collinear o, a, b: whether b lies within the box of segment o-a."""
    return ((np.minimum(o[..., 0], a[..., 0]) <= b[..., 0]) & (b[..., 0] <= np.maximum(o[..., 0], a[..., 0]))
            & (np.minimum(o[..., 1], a[..., 1]) <= b[..., 1]) & (b[..., 1] <= np.maximum(o[..., 1], a[..., 1])))


def segments_cross(p1, p2, q1, q2) -> np.ndarray | bool:
    """Whether segment p1-p2 meets segment q1-q2 (touching counts).

    Each argument is one (x, y) or an array (..., 2); they broadcast against each other.
    Returns a bool when all are single points, a bool array otherwise.
    """
    p1, p2, q1, q2 = (np.asarray(a, dtype=float) for a in (p1, p2, q1, q2))
    single = max(a.ndim for a in (p1, p2, q1, q2)) == 1
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    proper = (np.sign(d1) * np.sign(d2) < 0) & (np.sign(d3) * np.sign(d4) < 0)
    touch = (((d1 == 0) & _on_segment(q1, q2, p1)) | ((d2 == 0) & _on_segment(q1, q2, p2))
             | ((d3 == 0) & _on_segment(p1, p2, q1)) | ((d4 == 0) & _on_segment(p1, p2, q2)))
    out = proper | touch
    return bool(out) if single else out


def _polygon_area(poly: Polygon) -> float:
    xs = np.array([p[0] for p in poly])
    ys = np.array([p[1] for p in poly])
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))))


def _side(a: Point, b: Point, p: Point) -> float:
    """> 0 on side B (right of the arrow a->b on the picture, y down), < 0 on side A."""
    return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])


# ---------------------------------------------------------------------------------------------
# Rule definitions


@dataclass(frozen=True, kw_only=True)
class RuleDef:
    """Fields every rule has; one subclass per type."""

    TYPE: ClassVar[str] = ""
    DEFAULT_CLASSES: ClassVar[tuple[str, ...]] = LABELS

    name: str
    enabled: bool = True
    classes: tuple[str, ...] = ()
    schedule: Schedule = ALWAYS_ON
    severity: str = "alarm"
    zone: str | None = None
    description: str = ""

    @property
    def type(self) -> str:
        return self.TYPE

    @property
    def zone_name(self) -> str:
        """The place the operator is told about: the rule's ``zone`` or else its name."""
        return self.zone or self.name

    def armed_at(self, local: datetime | None) -> bool:
        """Enabled and its schedule is "on" at this city-local time (None: always armed)."""
        if not self.enabled:
            return False
        return local is None or self.schedule.mode_at(local) == "on"

    def to_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.TYPE, "enabled": self.enabled}
        if self.TYPE != "tamper":
            out["classes"] = list(self.classes)
        out["schedule"] = self.schedule.to_json()
        out["severity"] = self.severity
        if self.zone:
            out["zone"] = self.zone
        if self.description:
            out["description"] = self.description
        out.update(self._params_json())
        return out

    def _params_json(self) -> dict:
        return {}


def _poly_json(poly: Polygon | None) -> dict:
    return {} if poly is None else {"polygon": [list(p) for p in poly]}


@dataclass(frozen=True, kw_only=True)
class ZoneRule(RuleDef):
    """Intrusion: an object's anchor inside ``polygon`` for at least ``min_dwell_s``."""

    TYPE: ClassVar[str] = "zone"
    polygon: Polygon
    min_dwell_s: float = 1.0

    def _params_json(self) -> dict:
        return {**_poly_json(self.polygon), "min_dwell_s": self.min_dwell_s}


@dataclass(frozen=True, kw_only=True)
class LineRule(RuleDef):
    """Crossing the segment a-b in a direction (see the module docstring for sides A/B)."""

    TYPE: ClassVar[str] = "line"
    a: Point
    b: Point
    direction: str = "both"
    hysteresis: float = 0.01

    def side_of(self, point: Point) -> str | None:
        """"A", "B" or None (exactly on the line) for a normalised point."""
        s = _side(self.a, self.b, point)
        return "B" if s > 0 else "A" if s < 0 else None

    def _params_json(self) -> dict:
        return {"a": list(self.a), "b": list(self.b), "direction": self.direction,
                "hysteresis": self.hysteresis}


@dataclass(frozen=True, kw_only=True)
class LoiterRule(RuleDef):
    """Loitering: an object inside ``polygon`` (or anywhere) for longer than ``dwell_s``."""

    TYPE: ClassVar[str] = "loiter"
    DEFAULT_CLASSES: ClassVar[tuple[str, ...]] = ("person",)
    polygon: Polygon | None = None
    dwell_s: float = 30.0

    def _params_json(self) -> dict:
        return {**_poly_json(self.polygon), "dwell_s": self.dwell_s}


@dataclass(frozen=True, kw_only=True)
class CrowdRule(RuleDef):
    """More than ``max_count`` objects inside ``polygon`` for at least ``min_duration_s``."""

    TYPE: ClassVar[str] = "crowd"
    DEFAULT_CLASSES: ClassVar[tuple[str, ...]] = ("person",)
    polygon: Polygon | None = None
    max_count: int
    min_duration_s: float = 3.0

    def _params_json(self) -> dict:
        return {**_poly_json(self.polygon), "max_count": self.max_count,
                "min_duration_s": self.min_duration_s}


@dataclass(frozen=True, kw_only=True)
class StoppedRule(RuleDef):
    """A vehicle whose anchor stayed within ``max_move`` (of the diagonal) for ``still_s``."""

    TYPE: ClassVar[str] = "stopped"
    DEFAULT_CLASSES: ClassVar[tuple[str, ...]] = VEHICLES
    polygon: Polygon | None = None
    max_move: float = 0.02
    still_s: float = 30.0

    def _params_json(self) -> dict:
        return {**_poly_json(self.polygon), "max_move": self.max_move, "still_s": self.still_s}


@dataclass(frozen=True, kw_only=True)
class TamperRule(RuleDef):
    """Camera tampering states (FrameInfo.tamper) held for ``min_duration_s``."""

    TYPE: ClassVar[str] = "tamper"
    DEFAULT_CLASSES: ClassVar[tuple[str, ...]] = ()
    kinds: tuple[str, ...] = TAMPER_KINDS
    min_duration_s: float = 0.0

    def _params_json(self) -> dict:
        return {"kinds": list(self.kinds), "min_duration_s": self.min_duration_s}


RULE_TYPES: dict[str, type[RuleDef]] = {
    c.TYPE: c for c in (ZoneRule, LineRule, LoiterRule, CrowdRule, StoppedRule, TamperRule)
}
COMMON_FIELDS = ("name", "type", "enabled", "classes", "schedule", "severity", "zone", "description")
TYPE_FIELDS = {
    "zone": ("polygon", "min_dwell_s"),
    "line": ("a", "b", "direction", "hysteresis"),
    "loiter": ("polygon", "dwell_s"),
    "crowd": ("polygon", "max_count", "min_duration_s"),
    "stopped": ("polygon", "max_move", "still_s"),
    "tamper": ("kinds", "min_duration_s"),
}


# ---------------------------------------------------------------------------------------------
# Parsing and validation


class _Reader:
    """Reads one rule's dict, raising RuleError that names the rule and the field."""

    def __init__(self, data: dict, label: str):
        self.data = data
        self.label = label

    def fail(self, field: str | None, message: str):
        raise RuleError(message, rule=self.label, field=field)

    def number(self, key: str, default=None, *, minimum: float | None = None, above: float | None = None,
               maximum: float | None = None, integer: bool = False):
        if key not in self.data:
            if default is None:
                self.fail(key, "is required")
            return default
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(key, f"must be a number, got {v!r}")
        if integer:
            if v != int(v):
                self.fail(key, f"must be a whole number, got {v!r}")
            v = int(v)
        else:
            v = float(v)
        if minimum is not None and v < minimum:
            self.fail(key, f"must be at least {minimum:g}, got {v:g}")
        if above is not None and v <= above:
            self.fail(key, f"must be more than {above:g}, got {v:g}")
        if maximum is not None and v > maximum:
            self.fail(key, f"must be at most {maximum:g}, got {v:g}")
        return v

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        v = self.data.get(key, default)
        if not isinstance(v, str) or v.strip().lower() not in options:
            self.fail(key, f"{v!r} is not one of {', '.join(options)}")
        return v.strip().lower()

    def text(self, key: str) -> str:
        v = self.data.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            self.fail(key, f"must be text, got {v!r}")
        return v.strip()

    def names(self, key: str, allowed: tuple[str, ...], default: tuple[str, ...], what: str) -> tuple[str, ...]:
        if key not in self.data or self.data[key] is None:
            return default
        v = self.data[key]
        if isinstance(v, str):
            v = [s for s in v.split(",")]
        if not isinstance(v, (list, tuple)):
            self.fail(key, f"must be a list of {what}s from {', '.join(allowed)}")
        out: list[str] = []
        for item in v:
            if not isinstance(item, str) or item.strip().lower() not in allowed:
                self.fail(key, f"unknown {what} {item!r}; use {', '.join(allowed)}")
            item = item.strip().lower()
            if item not in out:
                out.append(item)
        if not out:
            self.fail(key, f"lists no {what}; leave it out for the default ({', '.join(default)})")
        return tuple(out)

    def point(self, key: str, v, where: str = "") -> Point:
        if (not isinstance(v, (list, tuple)) or len(v) != 2
                or any(isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) for c in v)):
            self.fail(key, f"{where}must be a point [x, y] of two numbers, got {v!r}")
        x, y = float(v[0]), float(v[1])
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            self.fail(key, f"{where}{[v[0], v[1]]} is outside the picture: x and y are fractions 0..1")
        return (x, y)

    def polygon(self, key: str, required: bool) -> Polygon | None:
        v = self.data.get(key)
        if v is None:
            if required:
                self.fail(key, "is required: a list of at least 3 points [x, y] in 0..1")
            return None
        if not isinstance(v, (list, tuple)) or len(v) < 3:
            n = len(v) if isinstance(v, (list, tuple)) else 0
            self.fail(key, f"needs at least 3 points [x, y], got {n}")
        poly = tuple(self.point(key, p, f"point {i + 1} ") for i, p in enumerate(v))
        if _polygon_area(poly) < 1e-6:
            self.fail(key, "has no area (its points lie on one line)")
        return poly


def parse_rule(data: dict, index: int = 1) -> RuleDef:
    """One rule from its JSON dict; ``index`` (1-based) names it in errors when it has no name."""
    label = f"#{index}"
    if not isinstance(data, dict):
        raise RuleError(f"must be an object with name and type, got {type(data).__name__}", rule=label)
    r = _Reader(data, label)
    name = data.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        r.fail("name", "is required (a non-empty text)")
    if not isinstance(name, str):
        r.fail("name", f"must be text, got {name!r}")
    name = name.strip()
    r.label = repr(name)
    kind = data.get("type")
    if kind not in RULE_TYPES:
        r.fail("type", f"{kind!r} is not one of {', '.join(RULE_TYPES)}")
    allowed = set(COMMON_FIELDS) | set(TYPE_FIELDS[kind])
    if kind == "tamper":
        allowed.discard("classes")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        r.fail(unknown[0], f"unknown field for a {kind} rule; allowed: {', '.join(sorted(allowed))}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        r.fail("enabled", f"must be true or false, got {enabled!r}")
    cls = RULE_TYPES[kind]
    common: dict[str, Any] = {
        "name": name, "enabled": enabled,
        "classes": r.names("classes", LABELS, cls.DEFAULT_CLASSES, "class") if kind != "tamper" else (),
        "schedule": _parse_schedule(r, data.get("schedule")),
        "severity": r.choice("severity", SEVERITIES, "alarm"),
        "zone": r.text("zone") or None,
        "description": r.text("description"),
    }
    if kind == "zone":
        return ZoneRule(**common, polygon=r.polygon("polygon", required=True),
                        min_dwell_s=r.number("min_dwell_s", 1.0, minimum=0))
    if kind == "line":
        if "a" not in data or "b" not in data:
            r.fail("a" if "a" not in data else "b", "is required: the line's ends a and b, each [x, y] in 0..1")
        a, b = r.point("a", data["a"]), r.point("b", data["b"])
        if math.dist(a, b) < 1e-3:
            r.fail("b", "is the same point as a: a line needs two distinct ends")
        return LineRule(**common, a=a, b=b, direction=r.choice("direction", DIRECTIONS, "both"),
                        hysteresis=r.number("hysteresis", 0.01, minimum=0, maximum=0.2))
    if kind == "loiter":
        return LoiterRule(**common, polygon=r.polygon("polygon", required=False),
                          dwell_s=r.number("dwell_s", 30.0, above=0))
    if kind == "crowd":
        return CrowdRule(**common, polygon=r.polygon("polygon", required=False),
                         max_count=r.number("max_count", None, minimum=0, integer=True),
                         min_duration_s=r.number("min_duration_s", 3.0, minimum=0))
    if kind == "stopped":
        return StoppedRule(**common, polygon=r.polygon("polygon", required=False),
                           max_move=r.number("max_move", 0.02, above=0, maximum=1),
                           still_s=r.number("still_s", 30.0, above=0))
    return TamperRule(**common, kinds=r.names("kinds", TAMPER_KINDS, TAMPER_KINDS, "tamper kind"),
                      min_duration_s=r.number("min_duration_s", 0.0, minimum=0))


def _parse_schedule(r: _Reader, data) -> Schedule:
    if data is None:
        return ALWAYS_ON
    if isinstance(data, dict):
        entries = data.get("rules") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            r.fail("schedule", "rules must be a list of {days, from, to, mode}")
        for i, e in enumerate(entries):
            days = e.get("days")
            if days is not None and not isinstance(days, str) and (
                    not isinstance(days, list) or not all(isinstance(d, str) for d in days)):
                r.fail("schedule", f"rule {i + 1}: days must be a list like [\"mon\", \"tue\"]")
    try:
        return Schedule.from_json(data, modes=ARMING_MODES, default_mode="on", what="mode")
    except ScheduleError as e:
        r.fail("schedule", str(e))
    raise AssertionError("unreachable")


def _check_unique(rules: Iterable[RuleDef]) -> None:
    seen: dict[str, str] = {}
    for rule in rules:
        folded = rule.name.casefold()
        if folded in seen:
            raise RuleError(f"duplicate rule name (already used by {seen[folded]!r}); names must be unique "
                            "per camera", rule=repr(rule.name), field="name")
        seen[folded] = rule.name


def parse_rules(data: list[dict]) -> list[RuleDef]:
    """A camera's rules from its analytics config (a list of dicts); names must be unique."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise RuleError("the analytics rules must be a list of rule objects")
    rules = [parse_rule(d, i + 1) for i, d in enumerate(data)]
    _check_unique(rules)
    return rules


def rules_to_json(rules: list[RuleDef]) -> list[dict]:
    """The JSON form of rules, every default written out; ``parse_rules`` reads it back equal."""
    return [r.to_json() for r in rules]


# ---------------------------------------------------------------------------------------------
# The engine


@dataclass
class _Ctx:
    """What evaluators see in one step."""

    frame: FrameInfo
    tracks: list[Track]
    anchors: dict[int, Point]
    history: dict[int, np.ndarray]  # track id -> (K, 3) rows of (t, x, y), the last one now
    new_ids: set[int]  # tracks the engine sees for the first time this step
    diag: float


def _scale(points, frame: FrameInfo) -> np.ndarray:
    return np.asarray(points, dtype=float) * np.array([frame.width, frame.height], dtype=float)


def _union(boxes: list[Box]) -> Box | None:
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


class _Evaluator:
    def __init__(self, rule: RuleDef):
        self.rule = rule

    def reset(self) -> None:
        pass

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        raise NotImplementedError

    def _poly_px(self, frame: FrameInfo, poly: Polygon | None) -> np.ndarray | None:
        return None if poly is None else _scale(poly, frame)

    def _track_occurrence(self, ctx: _Ctx, tr: Track, key: str, **detail) -> Occurrence:
        return Occurrence(
            key=key, rule=self.rule.name, kind=self.rule.TYPE, t=ctx.frame.t, zone=self.rule.zone_name,
            label=tr.label, track_id=tr.id, score=tr.score, box=tr.seen_box,
            detail={"severity": self.rule.severity, "direction": track_motion(tr.path), **detail},
        )

    def _mine(self, ctx: _Ctx) -> list[Track]:
        classes = self.rule.classes
        return [tr for tr in ctx.tracks if tr.label in classes]


class _DwellEvaluator(_Evaluator):
    """zone and loiter: anchor inside a polygon (or anywhere) for at least ``dwell`` seconds."""

    def __init__(self, rule: RuleDef, polygon: Polygon | None, dwell: float):
        super().__init__(rule)
        self.polygon = polygon
        self.dwell = dwell
        self.since: dict[int, float] = {}

    def reset(self) -> None:
        self.since.clear()

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        poly = self._poly_px(ctx.frame, self.polygon)
        out, still_in = [], set()
        for tr in self._mine(ctx):
            if poly is not None and not point_in_polygon(ctx.anchors[tr.id], poly):
                continue
            still_in.add(tr.id)
            if tr.id not in self.since:
                self.since[tr.id] = self._entered(ctx.history[tr.id], poly)
            since = self.since[tr.id]
            if ctx.frame.t - since >= self.dwell:
                out.append(self._track_occurrence(ctx, tr, f"{self.rule.name}:track {tr.id}",
                                                  since=since, dwell_s=ctx.frame.t - since))
        for tid in list(self.since):
            if tid not in still_in:
                del self.since[tid]
        return out

    @staticmethod
    def _entered(hist: np.ndarray, poly: np.ndarray | None) -> float:
        """Start of the trailing run of history points inside the polygon (the last is inside)."""
        if poly is None:
            return float(hist[0, 0])
        inside = point_in_polygon(hist[:, 1:], poly)
        outside = np.flatnonzero(~inside)
        first = outside[-1] + 1 if outside.size else 0
        return float(hist[min(first, len(hist) - 1), 0])


class _LineEvaluator(_Evaluator):
    rule: LineRule

    def __init__(self, rule: LineRule):
        super().__init__(rule)
        self.state: dict[int, tuple[int, Point]] = {}  # track id -> (firm side -1 A/+1 B, point there)
        self.count = 0
        self.by_direction = {"a_to_b": 0, "b_to_a": 0}

    def reset(self) -> None:
        self.state.clear()  # counts survive disarming

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        a, b = _scale([self.rule.a, self.rule.b], ctx.frame)
        length = float(np.hypot(*(b - a)))
        band = self.rule.hysteresis * ctx.diag
        out, present = [], set()
        for tr in self._mine(ctx):
            present.add(tr.id)
            # A track new to the engine replays its path (crossings while it was being confirmed).
            points = ctx.history[tr.id][:, 1:] if tr.id in ctx.new_ids else [ctx.anchors[tr.id]]
            for p in points:
                p = (float(p[0]), float(p[1]))
                dist = _side(a, b, p) / length
                side = 1 if dist > band else -1 if dist < -band else 0
                if side == 0:
                    continue
                prev = self.state.get(tr.id)
                self.state[tr.id] = (side, p)
                if prev is None or prev[0] == side or not segments_cross(prev[1], p, a, b):
                    continue
                crossing = "a_to_b" if side > 0 else "b_to_a"
                self.by_direction[crossing] += 1
                if self.rule.direction in (crossing, "both"):
                    self.count += 1
                    occ = self._track_occurrence(ctx, tr, f"{self.rule.name}:track {tr.id}:crossing {self.count}",
                                                 crossing=crossing, count=self.count)
                    occ.instant = True
                    out.append(occ)
        for tid in list(self.state):
            if tid not in present:
                del self.state[tid]
        return out


class _CrowdEvaluator(_Evaluator):
    rule: CrowdRule

    def __init__(self, rule: CrowdRule):
        super().__init__(rule)
        self.since: float | None = None
        self.peak = 0

    def reset(self) -> None:
        self.since, self.peak = None, 0

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        mine = self._mine(ctx)
        poly = self._poly_px(ctx.frame, self.rule.polygon)
        if poly is not None and mine:
            inside = point_in_polygon([ctx.anchors[tr.id] for tr in mine], poly)
            mine = [tr for tr, ok in zip(mine, inside) if ok]
        n = len(mine)
        if n <= self.rule.max_count:
            self.reset()
            return []
        if self.since is None:
            self.since = ctx.frame.t
        self.peak = max(self.peak, n)
        if ctx.frame.t - self.since < self.rule.min_duration_s:
            return []
        classes = self.rule.classes
        return [Occurrence(
            key=f"{self.rule.name}:crowd", rule=self.rule.name, kind="crowd", t=ctx.frame.t,
            zone=self.rule.zone_name, label=classes[0] if len(classes) == 1 else None,
            score=max(tr.score for tr in mine), box=_union([tr.seen_box for tr in mine]),
            detail={"severity": self.rule.severity, "count": n, "peak": self.peak, "since": self.since,
                    "max_count": self.rule.max_count, "track_ids": [tr.id for tr in mine]},
        )]


class _StoppedEvaluator(_Evaluator):
    rule: StoppedRule

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        poly = self._poly_px(ctx.frame, self.rule.polygon)
        limit = self.rule.max_move * ctx.diag
        out = []
        for tr in self._mine(ctx):
            x, y = ctx.anchors[tr.id]
            if poly is not None and not point_in_polygon((x, y), poly):
                continue
            hist = ctx.history[tr.id]
            moved = np.flatnonzero(np.hypot(hist[:, 1] - x, hist[:, 2] - y) >= limit)
            since = float(hist[moved[-1] + 1, 0]) if moved.size else float(hist[0, 0])
            if ctx.frame.t - since >= self.rule.still_s:
                out.append(self._track_occurrence(ctx, tr, f"{self.rule.name}:track {tr.id}",
                                                  since=since, stopped_s=ctx.frame.t - since))
        return out


class _TamperEvaluator(_Evaluator):
    rule: TamperRule

    def __init__(self, rule: TamperRule):
        super().__init__(rule)
        self.since: dict[str, float] = {}

    def reset(self) -> None:
        self.since.clear()

    def step(self, ctx: _Ctx) -> list[Occurrence]:
        out = []
        for kind in self.rule.kinds:
            if kind not in ctx.frame.tamper:
                self.since.pop(kind, None)
                continue
            since = self.since.setdefault(kind, ctx.frame.t)
            if ctx.frame.t - since >= self.rule.min_duration_s:
                out.append(Occurrence(
                    key=f"{self.rule.name}:{kind}", rule=self.rule.name, kind="tamper", t=ctx.frame.t,
                    zone=self.rule.zone_name, detail={"severity": self.rule.severity, "tamper": kind, "since": since},
                ))
        return out


def _evaluator(rule: RuleDef) -> _Evaluator:
    if isinstance(rule, ZoneRule):
        return _DwellEvaluator(rule, rule.polygon, rule.min_dwell_s)
    if isinstance(rule, LoiterRule):
        return _DwellEvaluator(rule, rule.polygon, rule.dwell_s)
    if isinstance(rule, LineRule):
        return _LineEvaluator(rule)
    if isinstance(rule, CrowdRule):
        return _CrowdEvaluator(rule)
    if isinstance(rule, StoppedRule):
        return _StoppedEvaluator(rule)
    if isinstance(rule, TamperRule):
        return _TamperEvaluator(rule)
    raise RuleError(f"unsupported rule object {rule!r}")


class RuleEngine:
    """Evaluates one camera's rules frame by frame; see the module docstring for semantics."""

    def __init__(self, rules: list[dict] | list[RuleDef]):
        parsed = [r if isinstance(r, RuleDef) else parse_rule(r, i + 1) for i, r in enumerate(rules or [])]
        _check_unique(parsed)
        self.rules: list[RuleDef] = parsed
        self._evals = [_evaluator(r) for r in parsed]
        self._open: dict[str, Occurrence] = {}
        self._history: dict[int, np.ndarray] = {}
        # How far back track history must reach: the longest dwell/stillness a rule waits for.
        self._horizon = 5.0 + max([getattr(r, f, 0.0) for r in parsed
                                   for f in ("min_dwell_s", "dwell_s", "still_s")] + [0.0])

    def counts(self) -> dict[str, int]:
        """Line crossings counted so far per line rule (in its configured direction)."""
        return {ev.rule.name: ev.count for ev in self._evals if isinstance(ev, _LineEvaluator)}

    def counts_by_direction(self) -> dict[str, dict[str, int]]:
        """Every crossing seen while armed, per line rule and direction (both directions)."""
        return {ev.rule.name: dict(ev.by_direction) for ev in self._evals if isinstance(ev, _LineEvaluator)}

    def step(self, frame: FrameInfo, tracks: list[Track]) -> tuple[list[Occurrence], list[Occurrence], list[Occurrence]]:
        """Evaluate all rules on one frame: (opened, ongoing, closed)."""
        if frame.width <= 0 or frame.height <= 0:
            raise ValueError(f"frame size {frame.width}x{frame.height} is not positive")
        ctx = self._context(frame, tracks)
        holding: dict[str, Occurrence] = {}
        opened: list[Occurrence] = []
        ongoing: list[Occurrence] = []
        disarmed: set[str] = set()
        for ev in self._evals:
            if not ev.rule.armed_at(frame.local):
                ev.reset()
                disarmed.add(ev.rule.name)
                continue
            for occ in ev.step(ctx):
                if occ.key not in self._open and not self._seen_now(occ, ctx):
                    continue  # an alarm opens on a frame where its object was seen, never on a prediction
                if occ.instant:
                    opened.append(occ)
                elif occ.key not in holding:
                    holding[occ.key] = occ
                    (ongoing if occ.key in self._open else opened).append(occ)
        closed = []
        for key, last in self._open.items():
            if key in holding:
                continue
            end = ("disarmed" if last.rule in disarmed
                   else "track_lost" if last.track_id is not None and last.track_id not in ctx.anchors
                   else "cleared")
            closed.append(replace(last, t=frame.t, detail={**last.detail, "end": end}))
        self._open = holding
        return opened, ongoing, closed

    @staticmethod
    def _seen_now(occ: Occurrence, ctx: _Ctx) -> bool:
        """The occurrence rests on an object the detector saw on this frame (tamper and
        other picture states need no object)."""
        ids = [occ.track_id] if occ.track_id is not None else occ.detail.get("track_ids")
        if not ids:
            return True
        seen = {tr.id for tr in ctx.tracks if tr.observed(ctx.frame.t)}
        return any(i in seen for i in ids)

    def _context(self, frame: FrameInfo, tracks: list[Track]) -> _Ctx:
        # Rules decide on what was seen: where each object stood when the detector last
        # saw it, never where the tracker predicts it now.
        anchors = {tr.id: tuple(map(float, tr.seen_anchor)) for tr in tracks}
        cutoff = frame.t - self._horizon
        new_ids = set()
        history: dict[int, np.ndarray] = {}
        for tr in tracks:
            now = np.array([[tr.last_t, *anchors[tr.id]]])
            old = self._history.get(tr.id)
            if old is None:
                new_ids.add(tr.id)
                seed = [p for p in tr.path if cutoff <= p[0] < tr.last_t]
                old = np.array(seed, dtype=float).reshape(-1, 3)
            else:
                old = old[old[:, 0] >= cutoff]
                old = old[old[:, 0] < tr.last_t]  # the same observation twice: keep the latest
            history[tr.id] = np.vstack([old, now])
        self._history = history  # tracks that vanished are forgotten
        return _Ctx(frame, list(tracks), anchors, history, new_ids, math.hypot(frame.width, frame.height))
