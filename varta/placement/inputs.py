"""Incident records, candidate sites and excluded zones read from the files a city exports
(CSV or GeoJSON, WGS84): pure parsing, validated as a whole. A bad line is named and
nothing of the file is taken (the caller stores all rows or none)."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

MAX_ROWS = 500_000


class InputError(ValueError):
    pass


@dataclass(frozen=True)
class IncidentRow:
    lat: float
    lon: float
    time_us: int | None
    category: str
    severity: float
    ref: str = ""


@dataclass(frozen=True)
class SiteRow:
    lat: float
    lon: float
    name: str
    kind: str
    ref: str = ""


@dataclass(frozen=True)
class ZoneRow:
    name: str
    polygon: tuple[tuple[float, float], ...]  # (lat, lon) corners, the outer ring


_COLS = {
    "lat": ("lat", "latitude", "y", "широта"),
    "lon": ("lon", "lng", "longitude", "x", "довгота"),
    "time": ("time", "datetime", "date", "час", "дата"),
    "category": ("category", "type", "offence", "категорія", "тип"),
    "severity": ("severity", "weight", "вага", "тяжкість"),
    "name": ("name", "назва", "address", "адреса"),
    "kind": ("kind", "вид"),
    "ref": ("id", "ref", "number", "номер"),
}


def _number(text, what: str, where: str) -> float:
    try:
        v = float(str(text).strip().replace(",", "."))
    except (TypeError, ValueError):
        raise InputError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{where}: {what} {text!r} is not a number")
    return v


def _place(lat, lon, where: str) -> tuple[float, float]:
    la, lo = _number(lat, "latitude", where), _number(lon, "longitude", where)
    if not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise InputError(f"{where}: {la}, {lo} is not a place on Earth (latitude, longitude in WGS84 degrees)")
    return la, lo


def _time(text, tz: ZoneInfo, where: str) -> int | None:
    if text is None or str(text).strip() == "":
        return None
    s = str(text).strip()
    try:
        if s.replace(".", "", 1).isdigit() and len(s) >= 9:  # Unix seconds
            return int(float(s) * 1_000_000)
        for fmt in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"):
            try:
                dt = datetime.strptime(s, fmt)
                break
            except ValueError:
                dt = None
        if dt is None:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: time {s!r} is neither ISO 8601 nor dd.mm.yyyy hh:mm") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)  # the city's time, as a city's register writes it
    return int(dt.timestamp() * 1_000_000)


def _severity(text, where: str) -> float:
    if text is None or str(text).strip() == "":
        return 1.0
    v = _number(text, "severity", where)
    if not 0 < v <= 1000:
        raise InputError(f"{where}: severity {v} must be above 0 and at most 1000")
    return v


def _records(text: str, kind: str) -> list[tuple[str, dict, tuple | None]]:
    """(where, properties, point-or-polygon) for each record of a CSV or GeoJSON text."""
    body = text.lstrip("\ufeff").strip()
    if not body:
        raise InputError("the file is empty")
    if body[0] in "{[":
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise InputError(f"line {exc.lineno}: not valid JSON ({exc.msg})") from None
        feats = doc.get("features") if isinstance(doc, dict) else None
        if isinstance(doc, dict) and doc.get("type") == "Feature":
            feats = [doc]
        if not isinstance(feats, list):
            raise InputError("GeoJSON: expected a FeatureCollection of features")
        out = []
        for i, f in enumerate(feats, start=1):
            where = f"feature {i}"
            if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict):
                raise InputError(f"{where}: no geometry")
            g, props = f["geometry"], f.get("properties") or {}
            if not isinstance(props, dict):
                raise InputError(f"{where}: properties must be an object")
            out.append((where, {str(k).lower(): v for k, v in props.items()}, (g.get("type"), g.get("coordinates"))))
        return out
    reader = csv.reader(io.StringIO(body), delimiter=";" if body.split("\n", 1)[0].count(";") > body.split("\n", 1)[0].count(",") else ",")
    rows = list(reader)
    head = [h.strip().lower() for h in rows[0]]
    out = []
    for n, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(head):
            raise InputError(f"line {n}: {len(r)} fields, the header has {len(head)}")
        out.append((f"line {n}", dict(zip(head, r)), None))
    return out


def _get(props: dict, key: str):
    for name in _COLS[key]:
        if name in props and props[name] not in (None, ""):
            return props[name]
    return None


def _point(where: str, props: dict, geom) -> tuple[float, float]:
    if geom is not None:
        gtype, coords = geom
        if gtype != "Point" or not isinstance(coords, list) or len(coords) < 2:
            raise InputError(f"{where}: a point is expected, not {gtype}")
        return _place(coords[1], coords[0], where)  # GeoJSON is lon, lat
    lat, lon = _get(props, "lat"), _get(props, "lon")
    if lat is None or lon is None:
        raise InputError(f"{where}: latitude and longitude are required")
    return _place(lat, lon, where)


def _check_size(items: list, what: str) -> None:
    if not items:
        raise InputError(f"no {what} in the file")
    if len(items) > MAX_ROWS:
        raise InputError(f"{len(items)} {what}: at most {MAX_ROWS} in one file")


def parse_incidents(text: str, tz: ZoneInfo) -> list[IncidentRow]:
    """CSV (lat,lon[,time,category,severity,id]) or GeoJSON points with those properties."""
    out = []
    for where, props, geom in _records(text, "incidents"):
        lat, lon = _point(where, props, geom)
        cat = str(_get(props, "category") or "").strip()[:64] or "incident"
        out.append(IncidentRow(lat, lon, _time(_get(props, "time"), tz, where), cat,
                               _severity(_get(props, "severity"), where), str(_get(props, "ref") or "")[:64]))
    _check_size(out, "incidents")
    return out


def parse_sites(text: str) -> list[SiteRow]:
    """CSV (lat,lon[,name,kind,id]) or GeoJSON points: poles, intersections, stops."""
    out = []
    for where, props, geom in _records(text, "sites"):
        lat, lon = _point(where, props, geom)
        ref = str(_get(props, "ref") or "")[:64]
        name = str(_get(props, "name") or "").strip()[:200]
        out.append(SiteRow(lat, lon, name, str(_get(props, "kind") or "").strip()[:32], ref))
    _check_size(out, "sites")
    return out


def parse_zones(text: str) -> list[ZoneRow]:
    """GeoJSON polygons (the outer ring of each; MultiPolygon parts become zones of the
    same name) or CSV name,polygon with 'lat lon; lat lon; …'."""
    out = []
    for where, props, geom in _records(text, "zones"):
        name = str(_get(props, "name") or "").strip()[:200] or where
        rings = []
        if geom is not None:
            gtype, coords = geom
            try:
                if gtype == "Polygon":
                    rings = [coords[0]]
                elif gtype == "MultiPolygon":
                    rings = [p[0] for p in coords]
                else:
                    raise InputError(f"{where}: a polygon is expected, not {gtype}")
                polys = [tuple(_place(c[1], c[0], where) for c in ring) for ring in rings]
            except (TypeError, IndexError):
                raise InputError(f"{where}: malformed polygon coordinates") from None
        else:
            raw = props.get("polygon") or props.get("полігон") or ""
            try:
                polys = [tuple(_place(*p.replace(",", " ").split()[:2], where) for p in raw.split(";") if p.strip())]
            except TypeError:
                raise InputError(f"{where}: polygon corners are 'lat lon; lat lon; …'") from None
        for p in polys:
            if len(p) < 3:
                raise InputError(f"{where}: a polygon needs at least three corners")
            out.append(ZoneRow(name, p))
    _check_size(out, "zones")
    return out
