"""One compact record per track, for search across every camera (issue 16, MVS-2): what it
was, when, where it came in and went out, which way it went, how fast, how long it stayed,
its dominant colours and its best picture. Pure, except JPEG encoding of the thumbnail.

A record is built while the track lives (``TrackAccumulator.observe`` on the frames where the
detector saw it) and finished when the tracker drops it. Only what was *seen* counts: the
tracker's predictions never enter a record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from varta.analytics.direction import heading as image_heading

COMPASS = ("n", "ne", "e", "se", "s", "sw", "w", "nw")
IMAGE_POINTS = ("up", "up-right", "right", "down-right", "down", "down-left", "left", "up-left")
EDGE = 0.08  # within 8 % of the picture's edge: came in / went out that side
SAMPLE_S = 0.5  # one path point each half second
THUMB_MAX = 96  # the thumbnail's longer side, pixels

# Named colours by hue (degrees, OpenCV's 0..180 doubled), then by saturation and value.
_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (200, "cyan"), (260, "blue"),
         (290, "purple"), (340, "pink"), (361, "red"))
COLOURS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown", "black", "grey", "white")


@dataclass
class TrackRecord:
    track_id: int
    label: str
    start_us: int
    end_us: int
    path: list[list[float]]  # [[t_s from start, x, y]] normalised 0..1, simplified
    entry: str  # top | bottom | left | right | inside
    exit: str
    heading: str | None  # the picture's terms: up, up-right, ... (None: it hardly moved)
    compass: str | None  # n, ne, ... when the camera's view direction is known
    speed: float  # picture widths a second, net displacement over the time seen
    dwell_s: float
    colours: list[str]
    score: float
    thumbnail: bytes | None = None


@dataclass
class TrackAccumulator:
    track_id: int
    label: str
    first_t: float
    first_us: int
    points: list[tuple[float, float, float]] = field(default_factory=list)  # (t, x, y) anchors, pixels
    last_t: float = 0.0
    last_us: int = 0
    best_score: float = -1.0
    best_crop: np.ndarray | None = None
    hits: int = 0
    last_anchor: tuple[float, float, float] | None = None  # the latest sighting (between samples)

    def observe(self, t: float, wall_us: int, box, score: float, bgr: np.ndarray | None) -> None:
        x1, y1, x2, y2 = box
        anchor = ((x1 + x2) / 2, y2)
        if not self.points or t - self.points[-1][0] >= SAMPLE_S:
            self.points.append((t, *anchor))
        self.last_t, self.last_us, self.hits = t, wall_us, self.hits + 1
        self.last_anchor = (t, *anchor)
        if bgr is not None and score > self.best_score:
            h, w = bgr.shape[:2]
            xa, ya, xb, yb = max(0, int(x1)), max(0, int(y1)), min(w, int(x2)), min(h, int(y2))
            if xb - xa >= 4 and yb - ya >= 4:
                self.best_score, self.best_crop = score, bgr[ya:yb, xa:xb].copy()

    def finish(self, width: int, height: int, view_direction: float | None = None,
               thumbnail: bool = True) -> TrackRecord | None:
        if not self.points or not width or not height:
            return None
        pts = list(self.points)
        if self.last_anchor and self.last_anchor[0] > pts[-1][0]:
            pts.append(self.last_anchor)
        t0 = pts[0][0]
        norm = [(t - t0, x / width, y / height) for t, x, y in pts]
        (_, xa, ya), (_, xb, yb) = norm[0], norm[-1]
        dx, dy = (xb - xa) * width, (yb - ya) * height
        moved = math.hypot(dx, dy) >= 0.03 * max(width, height)
        head = image_heading(dx, dy) if moved else None
        compass = None
        if head is not None and view_direction is not None:
            angle = math.degrees(math.atan2(dx, -dy)) % 360  # 0 = up the picture = where the camera looks
            compass = COMPASS[int(((view_direction + angle) % 360 + 22.5) // 45) % 8]
        dwell = max(0.0, self.last_t - self.first_t)
        speed = math.hypot(xb - xa, yb - ya) / dwell if dwell > 0 else 0.0
        crop = self.best_crop
        return TrackRecord(
            track_id=self.track_id, label=self.label, start_us=self.first_us, end_us=max(self.last_us, self.first_us),
            path=[[round(t, 2), round(x, 4), round(y, 4)] for t, x, y in simplify(norm, 0.01)],
            entry=side(xa, ya), exit=side(xb, yb), heading=head, compass=compass, speed=round(speed, 4),
            dwell_s=round(dwell, 2), colours=dominant_colours(crop) if crop is not None else [],
            score=round(max(self.best_score, 0.0), 3), thumbnail=_jpeg(crop) if thumbnail and crop is not None else None)


def side(x: float, y: float) -> str:
    """Which edge of the picture a normalised point is at (the nearest, if within EDGE)."""
    d = {"left": x, "right": 1 - x, "top": y, "bottom": 1 - y}
    edge = min(d, key=d.get)
    return edge if d[edge] <= EDGE else "inside"


def simplify(points: list[tuple[float, float, float]], tol: float) -> list[tuple[float, float, float]]:
    """Ramer–Douglas–Peucker on (x, y), keeping the times of the points kept."""
    if len(points) <= 2:
        return list(points)
    (_, x1, y1), (_, x2, y2) = points[0], points[-1]
    dx, dy = x2 - x1, y2 - y1
    norm = math.hypot(dx, dy)
    far, at = -1.0, 0
    for i in range(1, len(points) - 1):
        _, x, y = points[i]
        d = abs(dy * x - dx * y + x2 * y1 - y2 * x1) / norm if norm else math.hypot(x - x1, y - y1)
        if d > far:
            far, at = d, i
    if far <= tol:
        return [points[0], points[-1]]
    return simplify(points[:at + 1], tol)[:-1] + simplify(points[at:], tol)


def colour_name(h: float, s: float, v: float) -> str:
    """One pixel's colour word: h 0..360, s and v 0..1."""
    if v < 0.2:
        return "black"
    if s < 0.18:
        return "white" if v > 0.8 else "grey"
    if 15 <= h < 40 and v < 0.6:
        return "brown"
    return next(name for top, name in _HUES if h < top)


def dominant_colours(crop: np.ndarray, share: float = 0.2, most: int = 2) -> list[str]:
    """The object's main colours: pixels of the middle of its box (a person's clothes, a car's
    body: less of the background) named, the words covering at least ``share`` of them."""
    import cv2

    h, w = crop.shape[:2]
    core = crop[int(h * 0.2):max(int(h * 0.2) + 1, int(h * 0.8)), int(w * 0.25):max(int(w * 0.25) + 1, int(w * 0.75))]
    if core.size == 0:
        return []
    small = cv2.resize(core, (16, 24), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(float)
    names = [colour_name(p[0] * 2, p[1] / 255, p[2] / 255) for p in hsv]
    counts = {n: names.count(n) for n in set(names)}
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [n for n, c in ranked[:most] if c / len(names) >= share]


def _jpeg(crop: np.ndarray) -> bytes | None:
    import cv2

    h, w = crop.shape[:2]
    k = THUMB_MAX / max(h, w)
    if k < 1:
        crop = cv2.resize(crop, (max(1, int(w * k)), max(1, int(h * k))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return buf.tobytes() if ok else None
