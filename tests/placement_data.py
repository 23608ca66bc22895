"""Real, public incident data that ships offline inside PySAL (libpysal's built-in examples):
GeoDaNet's 287 crime points and the 293 streets they lie on (Arizona State Plane feet,
with its .prj), in WGS84 through pyproj. The street segments' ends are the candidate sites
(intersections and corners: where a city puts poles). Burkitt's lymphoma cases (188, with
the day each was seen) serve the temporal check."""

from __future__ import annotations

import json

import numpy as np


def crimes() -> list[tuple[float, float]]:
    import geopandas as gpd
    from libpysal.examples import get_path

    g = gpd.read_file(get_path("crimes.shp")).to_crs(4326)
    return [(p.y, p.x) for p in g.geometry]


def intersections() -> list[tuple[float, float]]:
    import geopandas as gpd
    from libpysal.examples import get_path

    s = gpd.read_file(get_path("streets.shp")).to_crs(4326)
    ends = set()
    for geom in s.geometry:
        for line in getattr(geom, "geoms", [geom]):
            cs = list(line.coords)
            ends.add((round(cs[0][1], 7), round(cs[0][0], 7)))
            ends.add((round(cs[-1][1], 7), round(cs[-1][0], 7)))
    return sorted(ends)


def halves(points: list, seed: int = 17) -> tuple[list, list]:
    """A fixed random split: fit on one half, hold the other out."""
    idx = np.random.default_rng(seed).permutation(len(points))
    half = len(points) // 2
    return [points[i] for i in sorted(idx[:half])], [points[i] for i in sorted(idx[half:])]


def burkitt() -> list[tuple[float, float, int]]:
    """(x_km, y_km, day) of the Burkitt's lymphoma cases, West Nile district, 1961–1975."""
    import geopandas as gpd
    from libpysal.examples import get_path

    b = gpd.read_file(get_path("burkitt.shp"))
    return [(float(r.X), float(r.Y), int(r.T)) for r in b.itertuples()]


def incidents_csv(points, categories=("theft", "robbery", "vandalism")) -> str:
    rows = ["lat,lon,category,severity"]
    for n, (lat, lon) in enumerate(points):
        rows.append(f"{lat:.7f},{lon:.7f},{categories[n % len(categories)]},{1 + n % 3}")
    return "\n".join(rows) + "\n"


def sites_geojson(points) -> str:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"name": f"перехрестя {n + 1}", "kind": "intersection", "id": f"x{n + 1}"}}
        for n, (lat, lon) in enumerate(points)]})
