"""/api/search/tracks: every camera's tracks, by class, time, place, direction, speed, dwell
and colour (issue 16, MVS-2). An archive action (A4.4, A4.5), journaled with its filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Depends, HTTPException, Query
from fastapi.responses import Response

from varta.search import query as sq
from varta.search.store import TrackStore, describe
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(prefix="/api/search", tags=["search"])


def searchable(caller: Caller, svc: AppServices) -> dict:
    """The cameras (removed ones too: their tracks stay under retention) this caller may search."""
    policy = caller.access.policy()
    return {c.id: c for c in svc.registry.list(include_removed=True)
            if policy.decide(caller.principal, "search.tracks", c.group_name)}


def _polygon(text: str | None) -> list[tuple[float, float]]:
    if not text:
        return []
    try:
        return [tuple(float(v) for v in p.split(",")) for p in text.split(";") if p.strip()]
    except ValueError:
        raise HTTPException(422, "polygon: lat,lon;lat,lon;… (at least three corners)") from None


@router.get("/tracks")
def search_tracks(
    from_: str = Query(..., alias="from"), to: str = Query(...),
    cls: list[str] = Query([], alias="class", description="person, car, bicycle, …"),
    camera: list[str] = Query([], description="camera ids (default: all one may search)"),
    heading: list[str] = Query([], description="n, ne, e, se, s, sw, w, nw (cameras with a field of view) or "
                                              "up, up-right, right, … (the picture's)"),
    colour: list[str] = Query([], description="any of: " + ", ".join(sq.COLOURS)),
    entry: list[str] = Query([]), exit: list[str] = Query([]),
    min_speed: float | None = Query(None, ge=0, description="picture widths a second"),
    min_dwell_s: float | None = Query(None, ge=0), max_dwell_s: float | None = Query(None, ge=0),
    polygon: str | None = Query(None, description="an area on the map: lat,lon;lat,lon;… — cameras standing in it"),
    limit: int = Query(200, ge=1, le=1000),
    caller: Caller = guard("search.tracks"), svc: AppServices = Depends(services),
) -> dict:
    """Tracks overlapping the window, newest first, each with its path, heading, colours and a
    thumbnail link; open one in playback at its ``start``."""
    try:
        q = sq.TrackQuery(time_param(from_, "from", svc), time_param(to, "to", svc), classes=cls, cameras=camera,
                          headings=heading, colours=colour, entry=entry, exit=exit, min_speed=min_speed,
                          min_dwell_s=min_dwell_s, max_dwell_s=max_dwell_s, polygon=_polygon(polygon),
                          limit=limit).checked()
    except sq.QueryError as exc:
        raise HTTPException(422, str(exc)) from None
    allowed = searchable(caller, svc)
    refused = sorted(set(q.cameras) - set(allowed))
    if refused:
        caller.record("search.tracks", "tracks", "refused", f"cameras not searchable: {refused}")
        raise HTTPException(403, f"cameras {refused} are not yours to search")
    cams = sq.cameras_for(q, allowed)
    rows = TrackStore(svc.engine).search(q, cams) if cams else []
    filters = {k: v for k, v in (("class", cls), ("camera", camera), ("heading", heading), ("colour", colour),
                                 ("entry", entry), ("exit", exit), ("min_speed", min_speed),
                                 ("min_dwell_s", min_dwell_s), ("max_dwell_s", max_dwell_s),
                                 ("polygon", polygon)) if v}
    caller.record("search.tracks", "tracks", detail=f"{from_} – {to} {filters}: {len(rows)} tracks")
    tz = svc.settings.tz
    return {"tracks": [describe(r, tz) | {"camera_name": allowed[r["camera_id"]].name} for r in rows],
            "cameras_searched": len(cams), "truncated": len(rows) == q.limit}


@router.get("/tracks/{track_id}/thumbnail.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def thumbnail(track_id: RowId, caller: Caller = guard("search.tracks"), svc: AppServices = Depends(services)):
    got = TrackStore(svc.engine).thumbnail(track_id)
    if got is None or got[1] is None:
        raise HTTPException(404, f"no picture of track {track_id}")
    caller.require("search.tracks", got[0])
    return Response(got[1], media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
