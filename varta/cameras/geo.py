"""Where cameras look (pure): distances and bearings on the city's scale, whether a camera's
field of view covers a point, and address text normalised for search."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

EARTH_M = 6_371_008.8  # mean radius


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); within a city it is exact to centimetres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from the first point to the second, degrees from north, clockwise."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def angle_between(a: float, b: float) -> float:
    """The smaller angle between two bearings, 0..180."""
    d = abs(a - b) % 360.0
    return 360.0 - d if d > 180.0 else d


@dataclass(frozen=True)
class View:
    lat: float
    lon: float
    direction: float | None = None
    angle: float | None = None
    range_m: float | None = None


def sees(view: View, lat: float, lon: float) -> bool:
    """Is the point inside the camera's field of view (a sector: within range, within half
    the angle of where it looks)? A camera without a surveyed view sees nothing for sure."""
    if view.range_m is None or view.direction is None or view.angle is None:
        return False
    d = distance_m(view.lat, view.lon, lat, lon)
    if d > view.range_m:
        return False
    if d < 1.0 or view.angle >= 360:
        return True
    return angle_between(bearing_deg(view.lat, view.lon, lat, lon), view.direction) <= view.angle / 2


def views_of(cameras) -> dict[str, View]:
    """The placed cameras' views (cameras without coordinates are nowhere on the map)."""
    return {c.id: View(c.latitude, c.longitude, c.view_direction, c.view_angle, c.view_range_m)
            for c in cameras if c.latitude is not None}


def near(views: dict[str, View], lat: float, lon: float, radius_m: float) -> list[dict]:
    """Cameras that see the point or stand within ``radius_m``, those that see it first, then
    nearest first: [{id, distance_m, bearing_deg, sees}]."""
    out = []
    for cid, v in views.items():
        d = distance_m(v.lat, v.lon, lat, lon)
        s = sees(v, lat, lon)
        if s or d <= radius_m:
            out.append({"id": cid, "distance_m": round(d, 1), "bearing_deg": round(bearing_deg(v.lat, v.lon, lat, lon), 1),
                        "sees": s})
    return sorted(out, key=lambda c: (not c["sees"], c["distance_m"], c["id"]))


def sector(view: View, steps: int = 16) -> list[tuple[float, float]]:
    """The field of view as a polygon (lat, lon) for the map."""
    if view.range_m is None or view.direction is None or view.angle is None:
        return []
    pts = [(view.lat, view.lon)] if view.angle < 360 else []
    start = view.direction - view.angle / 2
    for i in range(steps + 1):
        pts.append(destination(view.lat, view.lon, start + view.angle * i / steps, view.range_m))
    return pts


def destination(lat: float, lon: float, bearing: float, dist_m: float) -> tuple[float, float]:
    p1, l1, b, d = math.radians(lat), math.radians(lon), math.radians(bearing), dist_m / EARTH_M
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def inside(polygon: list[tuple[float, float]], lat: float, lon: float) -> bool:
    """Point in polygon (ray casting; the polygon's (lat, lon) corners, either turn)."""
    hit = False
    n = len(polygon)
    for i in range(n):
        (y1, x1), (y2, x2) = polygon[i], polygon[(i + 1) % n]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


_ABBREV = {"вулиця": "вул", "вул.": "вул", "проспект": "просп", "пр-т": "просп", "просп.": "просп",
           "площа": "пл", "пл.": "пл", "бульвар": "бул", "бульв.": "бул", "бул.": "бул", "провулок": "пров",
           "пров.": "пров", "street": "вул", "st": "вул", "st.": "вул", "avenue": "просп", "ave": "просп",
           "square": "пл", "буд.": "", "будинок": "", "б.": ""}


def normalise(text: str) -> str:
    """Address text as searched: lower case, the street word in one form, the apostrophe in
    one form, no punctuation: "Вулиця Соборна, буд. 12" and "вул Соборна 12" meet."""
    t = text.lower().replace("’", "'").replace("ʼ", "'").replace("`", "'")
    words = []
    for w in re.split(r"[\s,;]+", t):
        w = _ABBREV.get(w, _ABBREV.get(w.rstrip("."), w.rstrip(".")))
        if w:
            words.append(w)
    return " ".join(words)
