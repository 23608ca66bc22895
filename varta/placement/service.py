"""The placement analysis as the console, the API and the CLI run it: what to read (period,
categories, sources, constraints), read it, analyse it, and the exports (GeoJSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field

from varta.cameras.addresses import AddressBook
from varta.clock import format_time
from varta.placement.analysis import AnalysisError, Options, analyze
from varta.placement.store import SOURCES, PlacementStore


@dataclass
class Params:
    """What the department asks: the period, the incidents and the constraints."""

    start_us: int
    end_us: int
    k: int = 10
    radius_m: float = 50.0
    min_spacing_m: float = 0.0
    categories: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=lambda: list(SOURCES))
    chosen: list[int] = field(default_factory=list)
    use_zones: bool = True
    cell_m: float | None = None
    split_us: int | None = None
    time_limit_s: float = 20.0
    permutations: int = 999

    def checked(self) -> "Params":
        if self.end_us <= self.start_us:
            raise AnalysisError("the period ends before it starts")
        bad = [s for s in self.sources if s not in SOURCES]
        if bad or not self.sources:
            raise AnalysisError(f"sources: any of {', '.join(SOURCES)}")
        if self.split_us is not None and not self.start_us < self.split_us < self.end_us:
            raise AnalysisError("the temporal check's split must fall inside the period")
        if not 1 <= self.time_limit_s <= 300:
            raise AnalysisError("solver time limit: from 1 to 300 seconds")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def run(engine, registry, tz, params: Params) -> dict:
    params = params.checked()
    store = PlacementStore(engine)
    book = AddressBook(engine)

    def locate(place: str):
        hit = book.locate(place)
        return (hit["latitude"], hit["longitude"]) if hit else None

    found = store.incidents(params.start_us, params.end_us, params.categories, params.sources, locate)
    zones = store.zones() if params.use_zones else []
    opts = Options(k=params.k, radius_m=params.radius_m, min_spacing_m=params.min_spacing_m,
                   excluded=tuple(tuple(tuple(c) for c in z["polygon"]) for z in zones), chosen=tuple(params.chosen),
                   cell_m=params.cell_m, split_us=params.split_us, time_limit_s=params.time_limit_s,
                   permutations=params.permutations)
    result = analyze(found, store.sites(), store.views(registry), opts, tz)
    result["period"] = {"from": format_time(params.start_us, tz), "to": format_time(params.end_us, tz)}
    result["categories"] = params.categories
    result["sources"] = {s: sum(1 for i in found if i.source == s.rstrip("s")) for s in params.sources}
    result["undated"] = sum(1 for i in found if i.time_us is None)
    result["zones"] = [{"name": z["name"], "polygon": z["polygon"]} for z in zones]
    return result


def summary(result: dict) -> dict:
    """What a list of proposals shows without the layers."""
    return {"incidents": result["incidents"], "coverage_now": result["coverage_now"],
            "coverage_proposed": result["coverage_proposed"], "sites": len(result["sites"]),
            "period": result.get("period")}


def geojson(result: dict, title: str = "") -> str:
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
              "properties": {"layer": "proposed_site", "rank": s["rank"], "site_id": s["id"], "name": s["name"],
                             "kind": s["kind"], "gain": s["gain"], "gain_weighted": s["gain_weighted"],
                             "chosen": s["chosen"]}} for s in result["sites"]]
    for c in result["layers"]["cells"]:
        if c["hot"]:
            (s, w), (n, e) = c["bounds"]
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
                [[w, s], [e, s], [e, n], [w, n], [w, s]]]},
                "properties": {"layer": "hot_spot", "incidents": c["count"], "z": c["z"], "p": c["p"]}})
    for ring in result["layers"]["views"]:
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
            [[lo, la] for la, lo in ring] + [[ring[0][1], ring[0][0]]]]}, "properties": {"layer": "field_of_view"}})
    return json.dumps({"type": "FeatureCollection", "name": title or "placement", "features": feats},
                      ensure_ascii=False)


def sites_csv(result: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["rank", "site_id", "lat", "lon", "name", "kind", "gain", "gain_weighted", "chosen"])
    for s in result["sites"]:
        w.writerow([s["rank"], s["id"], s["lat"], s["lon"], s["name"], s["kind"], s["gain"], s["gain_weighted"],
                    "yes" if s["chosen"] else ""])
    return out.getvalue()
