"""`varta search tracks`: the same search as GET /api/search/tracks, from the server's shell."""

from __future__ import annotations

import json
from typing import Optional

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

search_app = typer.Typer(help="search every camera's tracks (issue 16)", no_args_is_help=True)


@search_app.command("tracks")
def tracks(
    from_: str = typer.Option(..., "--from", help="ISO 8601 or now-1h (city time without an offset)"),
    to: str = typer.Option("now", "--to"),
    cls: list[str] = typer.Option([], "--class", help="person, car, … (repeat)"),
    camera: list[str] = typer.Option([], "--camera", help="repeat; default: every camera"),
    heading: list[str] = typer.Option([], "--heading", help="n, ne, … or up, up-right, … (repeat)"),
    colour: list[str] = typer.Option([], "--colour", help="red, blue, black, … (any of them; repeat)"),
    min_dwell: Optional[float] = typer.Option(None, "--min-dwell", help="seconds"),
    max_dwell: Optional[float] = typer.Option(None, "--max-dwell", help="seconds"),
    min_speed: Optional[float] = typer.Option(None, "--min-speed", help="picture widths a second"),
    polygon: Optional[str] = typer.Option(None, "--polygon", help="lat,lon;lat,lon;… cameras standing inside"),
    limit: int = typer.Option(200, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Tracks overlapping the window, newest first."""
    from varta.cameras.registry import CameraRegistry
    from varta.clock import format_time, parse_time
    from varta.search import query as sq
    from varta.search.store import TrackStore, describe

    settings = load_settings()
    engine = open_engine(settings)
    try:
        poly = [tuple(float(v) for v in p.split(",")) for p in polygon.split(";") if p.strip()] if polygon else []
        q = sq.TrackQuery(parse_time(from_, settings.tz), parse_time(to, settings.tz), classes=cls, cameras=camera,
                          headings=heading, colours=colour, min_speed=min_speed, min_dwell_s=min_dwell,
                          max_dwell_s=max_dwell, polygon=poly, limit=limit).checked()
    except (ValueError, sq.QueryError) as exc:
        fail(str(exc))
    access, who = authorize(settings, engine, "search.tracks", obj="tracks")
    policy = access.policy()
    cams = {c.id: c for c in CameraRegistry(engine).list(include_removed=True)
            if policy.decide(who, "search.tracks", c.group_name)}
    ids = sq.cameras_for(q, cams)
    rows = TrackStore(engine).search(q, ids) if ids else []
    filters = {k: v for k, v in (("class", cls), ("camera", camera), ("heading", heading), ("colour", colour),
                                 ("min_speed", min_speed), ("min_dwell_s", min_dwell), ("max_dwell_s", max_dwell),
                                 ("polygon", polygon)) if v}
    access.record(who, "search.tracks", "tracks", detail=f"{from_} – {to} {filters}: {len(rows)} tracks")
    found = [describe(r, settings.tz) for r in rows]
    if as_json:
        typer.echo(json.dumps({"tracks": found}, ensure_ascii=False))
        return
    for t in found:
        typer.echo(f"{t['start'][:19].replace('T', ' ')}  {t['camera_id']:<14} {t['label']:<8} "
                   f"{(t['compass'] or t['heading'] or '·'):<10} {','.join(t['colours']):<14} "
                   f"{t['dwell_s']:>6.1f} s  {t['entry']}→{t['exit']}")
    if not found:
        typer.echo(f"no tracks between {format_time(q.start_us, settings.tz)} and {format_time(q.end_us, settings.tz)}")
