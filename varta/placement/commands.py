"""`varta placement …`: import the city's incident records, candidate sites and excluded
zones; analyse a period; keep, list and report proposals, from the server's shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

placement_app = typer.Typer(help="where the next cameras should go (issue 17; MVS-3, MVS-4)", no_args_is_help=True)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")


def _import(what: str, path: Path, replace: bool) -> None:
    from varta.placement.inputs import InputError, parse_incidents, parse_sites, parse_zones
    from varta.placement.store import PlacementStore

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "placement.manage", obj="placement")
    text = _read(path)
    store = PlacementStore(engine)
    try:
        if what == "incidents":
            n = store.import_incidents(parse_incidents(text, settings.tz), path.name, who.login, replace=replace)
        elif what == "sites":
            n = store.import_sites(parse_sites(text), replace=replace)
        else:
            n = store.import_zones(parse_zones(text), replace=replace)
    except InputError as exc:
        access.record(who, "placement.manage", "placement", "failed", f"import refused: {path.name}: {exc}")
        fail(f"{path.name}: {exc}; nothing was imported")
    access.record(who, "placement.manage", "placement", detail=f"imported {n} {what} from {path.name}")
    c = store.counts()
    typer.echo(f"imported {n} {what} from {path.name}; now {c['incidents']} incidents, {c['sites']} sites, "
               f"{c['zones']} excluded zones")


@placement_app.command("import-incidents")
def import_incidents(file: Path, replace: bool = typer.Option(False, "--replace", help="drop the incidents imported before")):
    """CSV (lat,lon[,time,category,severity,id]) or GeoJSON points; all or nothing."""
    _import("incidents", file, replace)


@placement_app.command("import-sites")
def import_sites(file: Path, add: bool = typer.Option(False, "--add", help="keep the sites imported before")):
    """Candidate sites: CSV (lat,lon[,name,kind,id]) or GeoJSON points; replaces the list."""
    _import("sites", file, not add)


@placement_app.command("import-zones")
def import_zones(file: Path, add: bool = typer.Option(False, "--add")):
    """Excluded zones: GeoJSON polygons; no site is proposed inside them."""
    _import("zones", file, not add)


@placement_app.command("analyze")
def analyze(
    from_: str = typer.Option(..., "--from", help="ISO 8601 or dd.mm.yyyy (city time)"),
    to: str = typer.Option("now", "--to"),
    k: int = typer.Option(10, "--k", help="sites in the proposal (those already chosen included)"),
    radius: float = typer.Option(50.0, "--radius", help="metres a new camera covers"),
    spacing: float = typer.Option(0.0, "--min-spacing", help="metres between any two proposed sites"),
    categories: list[str] = typer.Option([], "--category", "--categories", help="repeat, or comma-separated"),
    sources: list[str] = typer.Option([], "--source", help="imported, register, alarms (repeat; default all)"),
    chosen: list[int] = typer.Option([], "--chosen", help="site id already decided (repeat)"),
    no_zones: bool = typer.Option(False, "--ignore-zones"),
    cell: Optional[float] = typer.Option(None, "--cell", help="hot-spot cell, metres"),
    split: Optional[str] = typer.Option(None, "--split", help="temporal check: fit before, score from"),
    time_limit: float = typer.Option(20.0, "--time-limit", help="the exact solver's seconds"),
    as_json: bool = typer.Option(False, "--json"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the PDF report here"),
    geojson: Optional[Path] = typer.Option(None, "--geojson", help="write the sites and layers as GeoJSON"),
    lang: str = typer.Option("uk", "--lang", help="the report's language: uk or en"),
    save: Optional[str] = typer.Option(None, "--save", help="keep it as a draft proposal with this title"),
) -> None:
    """Coverage today, hot spots, the k best new sites and the baselines."""
    from varta.clock import parse_time
    from varta.cameras.registry import CameraRegistry
    from varta.placement import service
    from varta.placement.analysis import AnalysisError
    from varta.placement.report import report_pdf
    from varta.placement.store import SOURCES, PlacementStore

    settings = load_settings()
    engine = open_engine(settings)
    cats = [c.strip() for v in categories for c in v.split(",") if c.strip()]
    try:
        params = service.Params(parse_time(from_, settings.tz), parse_time(to, settings.tz), k=k, radius_m=radius,
                                min_spacing_m=spacing, categories=cats, sources=sources or list(SOURCES),
                                chosen=chosen, use_zones=not no_zones, cell_m=cell,
                                split_us=parse_time(split, settings.tz) if split else None, time_limit_s=time_limit)
    except ValueError as exc:
        fail(str(exc))
    action = "placement.manage" if save else "placement.view"
    access, who = authorize(settings, engine, action, obj="placement")
    try:
        result = service.run(engine, CameraRegistry(engine), settings.tz, params)
    except AnalysisError as exc:
        access.record(who, action, "placement", "failed", f"analysis refused: {exc}")
        fail(str(exc))
    access.record(who, action, "placement", detail=(
        f"analysed {result['period']['from'][:16]} – {result['period']['to'][:16]}: {result['incidents']} incidents, k {k}, radius {radius:g} m: covered "
        f"{100 * result['coverage_now']['share']:.1f}% → {100 * result['coverage_proposed']['share']:.1f}%"))
    if save:
        pid = PlacementStore(engine).create(save, params.as_dict() | {"summary": service.summary(result)}, result,
                                            who.login)
        access.record(who, "placement.manage", f"proposal:{pid}", detail=f"proposal drafted: {save}")
        result["proposal_id"] = pid
    if out:
        out.write_bytes(report_pdf(result, save or "", lang))
    if geojson:
        geojson.write_text(service.geojson(result, save or ""), encoding="utf-8")
    if as_json:
        slim = {k: v for k, v in result.items() if k != "layers"}
        typer.echo(json.dumps(slim, ensure_ascii=False))
        return
    _print(result)


def _print(r: dict) -> None:
    def pct(c):
        return f"{100 * c['share']:.1f}% ({c['covered']}/{c['incidents']}; weighted {100 * c['weighted_share']:.1f}%)"

    typer.echo(f"{r['incidents']} incidents, {r['sites_considered']} candidate sites "
               f"({r['sites_excluded']} in excluded zones), {r['cameras_with_view']} cameras with a field of view")
    typer.echo(f"covered today: {pct(r['coverage_now'])}")
    typer.echo(f"with the proposal: {pct(r['coverage_proposed'])}  [{r['solver']['status']}, "
               f"{r['solver']['seconds']} s]")
    for s in r["sites"]:
        typer.echo(f"  {s['rank']:>3}. site {s['id']:<8} {s['lat']:.6f},{s['lon']:.6f}  +{s['gain']:<5} "
                   f"{s['name']}{'  (already chosen)' if s['chosen'] else ''}")
    b = r["baselines"]
    typer.echo(f"greedy: {pct(b['greedy']['coverage_proposed'])}; densest: {pct(b['densest']['coverage_proposed'])}; "
               f"random (mean of {b['random']['draws']}): {100 * b['random']['weighted_share_mean']:.1f}% weighted")
    h = r["hotspots"]
    typer.echo(f"hot spots: {h['hot']} of {h['cells']} cells of {h['cell_m']:g} m (FDR p ≤ {h['fdr_p']}) hold "
               f"{100 * h['share_in_hot']:.1f}% of the incidents on {100 * h['area_share_hot']:.1f}% of the area")
    t = r.get("temporal")
    if t:
        typer.echo(f"temporal check: fitted on {t['fit_incidents']} incidents before {t['split'][:16]}, scored on "
                   f"{t['test_incidents']} later: MIP {100 * t['mip']['test']['weighted_share']:.1f}%, greedy "
                   f"{100 * t['greedy']['test']['weighted_share']:.1f}%, densest "
                   f"{100 * t['densest']['test']['weighted_share']:.1f}%, random "
                   f"{100 * t['random']['test_weighted_share_mean']:.1f}% (today's cameras "
                   f"{100 * t['now']['weighted_share']:.1f}%)")


@placement_app.command("proposals")
def proposals(as_json: bool = typer.Option(False, "--json")) -> None:
    """Proposals kept, newest first, with their status."""
    from varta.clock import format_time
    from varta.placement.store import PlacementStore

    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "placement.view", obj="placement")
    rows = PlacementStore(engine).list()
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in r.items()} for r in rows], ensure_ascii=False, default=str))
        return
    for r in rows:
        s = r["params"].get("summary", {})
        typer.echo(f"{r['id']:>4}  {r['status']:<10} {format_time(r['created_us'], settings.tz)[:16]}  "
                   f"{r['title']}  → {r['sent_to'] or '—'}  "
                   f"{100 * s.get('coverage_proposed', {}).get('share', 0):.1f}%")


@placement_app.command("report")
def report(proposal: int, out: Path = typer.Option(..., "--out"), lang: str = typer.Option("uk", "--lang")) -> None:
    """A kept proposal's PDF report."""
    from varta.placement.report import report_pdf
    from varta.placement.store import PlacementStore

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "placement.view", obj=f"proposal:{proposal}")
    p = PlacementStore(engine).get(proposal)
    if p is None:
        fail(f"no proposal {proposal}")
    out.write_bytes(report_pdf(p["result"], p["title"], lang, p["status"]))
    access.record(who, "placement.view", f"proposal:{proposal}", detail="proposal read as pdf")
    typer.echo(f"{out}: {out.stat().st_size} bytes")
