"""A camera's analytics settings, validated (pure, no I/O).

Stored as JSON in ``analytics_config`` and edited with ``varta analytics set CAMERA FILE``
or PUT /api/cameras/{id}/analytics. Example::

    {"enabled": true, "fps": 5, "stream": "auto", "priority": "high",
     "detect": true, "masks": [[[0, 0], [0.3, 0], [0.3, 0.2], [0, 0.2]]],
     "pre_roll_s": 5, "post_roll_s": 10,
     "rules": [{"name": "courtyard at night", "type": "zone", "zone": "courtyard",
                "polygon": [[0.1, 0.5], [0.9, 0.5], [0.9, 1], [0.1, 1]], "classes": ["person"],
                "schedule": {"default": "off", "rules": [{"from": "22:00", "to": "06:00", "mode": "on"}]}}]}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from varta.analytics.rules import RuleError, parse_rules

PRIORITIES = {"high": 3, "normal": 2, "low": 1}
STREAMS = ("auto", "sub", "main")
REGIONS = ("motion", "frame")
MAX_FPS = 25.0


class AnalyticsError(ValueError):
    """Settings that cannot be accepted; the message says which field and why."""


def _polygon(points, where: str) -> list[tuple[float, float]]:
    if not isinstance(points, (list, tuple)) or len(points) < 3:
        raise AnalyticsError(f"{where}: a polygon needs at least 3 points [[x, y], ...]")
    out = []
    for p in points:
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            raise AnalyticsError(f"{where}: point {p!r} is not [x, y]") from None
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise AnalyticsError(f"{where}: point {p!r} is outside the picture (0..1 of width and height)")
        out.append((x, y))
    return out


@dataclass
class AnalyticsConfig:
    enabled: bool = True
    fps: float = 5.0  # frames analysed per second
    stream: str = "auto"  # auto = the sub-stream where the camera has one
    width: int = 640  # the main stream is decoded down to this width
    priority: str = "normal"  # who keeps their rate when the machine is overloaded
    detect: bool = True  # run the object detector (False = motion only)
    score: float = 0.3  # detector threshold
    stationary_interval_s: float = 1.0  # re-detect this often while objects are tracked
    # While only tracked objects move, re-detect only this often (0 = every frame with motion).
    # 0.4 s halves the detector's runs on busy scenes but cost 12-20 points of box recall
    # (bench/RESULTS.md §8): off by default, for a city that must analyse more cameras.
    tracked_interval_s: float = 0.0
    # Where the detector looks on frames with motion: "motion" = only the moving regions and
    # the tracked objects (at the whole picture's scale, so the same objects at the same
    # size for less work; the whole picture every stationary_interval_s), "frame" = always
    # the whole picture (bench/RESULTS.md §12).
    detect_region: str = "motion"
    motion_threshold: int = 25
    motion_min_area: float = 0.0008
    masks: list[list[tuple[float, float]]] = field(default_factory=list)
    rules: list[dict] = field(default_factory=list)
    pre_roll_s: float = 5.0  # footage kept before activity in motion/events recording modes
    post_roll_s: float = 10.0
    tamper: bool = True  # watch for covered/blinded/defocused/moved (feeds "tamper" rules)

    @property
    def rank(self) -> int:
        return PRIORITIES[self.priority]

    def to_json(self) -> dict:
        out = dict(self.__dict__)
        out["masks"] = [[list(p) for p in m] for m in self.masks]
        return out


def parse_config(data: dict | None) -> AnalyticsConfig:
    if data is None:
        return AnalyticsConfig(enabled=False)
    if not isinstance(data, dict):
        raise AnalyticsError("analytics settings must be a JSON object")
    known = set(AnalyticsConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise AnalyticsError(f"unknown analytics setting(s) {unknown}; known: {sorted(known)}")
    cfg = AnalyticsConfig(**{k: v for k, v in data.items() if k not in ("masks", "rules")})
    try:
        cfg.fps = float(cfg.fps)
        cfg.width = int(cfg.width)
        cfg.score = float(cfg.score)
        cfg.stationary_interval_s = float(cfg.stationary_interval_s)
        cfg.tracked_interval_s = float(cfg.tracked_interval_s)
        cfg.pre_roll_s, cfg.post_roll_s = float(cfg.pre_roll_s), float(cfg.post_roll_s)
        cfg.motion_threshold, cfg.motion_min_area = int(cfg.motion_threshold), float(cfg.motion_min_area)
    except (TypeError, ValueError) as exc:
        raise AnalyticsError(f"a numeric analytics setting is not a number: {exc}") from None
    if not 0.2 <= cfg.fps <= MAX_FPS:
        raise AnalyticsError(f"fps {cfg.fps} is outside 0.2..{MAX_FPS:g}")
    if cfg.stream not in STREAMS:
        raise AnalyticsError(f"stream {cfg.stream!r} is not one of {', '.join(STREAMS)}")
    if cfg.detect_region not in REGIONS:
        raise AnalyticsError(f"detect_region {cfg.detect_region!r} is not one of {', '.join(REGIONS)}")
    if cfg.priority not in PRIORITIES:
        raise AnalyticsError(f"priority {cfg.priority!r} is not one of {', '.join(PRIORITIES)}")
    if not 160 <= cfg.width <= 1920:
        raise AnalyticsError(f"width {cfg.width} is outside 160..1920")
    if not 0.05 <= cfg.score <= 0.95:
        raise AnalyticsError(f"score {cfg.score} is outside 0.05..0.95")
    if cfg.pre_roll_s < 0 or cfg.post_roll_s < 0 or cfg.pre_roll_s > 300 or cfg.post_roll_s > 600:
        raise AnalyticsError("pre_roll_s must be 0..300 and post_roll_s 0..600 seconds")
    cfg.masks = [_polygon(m, f"mask {i + 1}") for i, m in enumerate(data.get("masks") or [])]
    try:
        parse_rules(data.get("rules") or [])  # the pipeline parses them again; this checks
    except RuleError as exc:
        raise AnalyticsError(str(exc)) from None
    cfg.rules = list(data.get("rules") or [])
    return cfg
