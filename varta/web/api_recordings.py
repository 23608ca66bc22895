"""/api/cameras/{id}/recordings, segments, HLS playback and segment files (R9, R10)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from varta.clock import US, format_time
from varta.playback.hls import vod_playlist
from varta.playback.query import recordings_report
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param
from varta.web.files_http import segment_file_response

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(tags=["recordings"])

MAX_PLAYLIST_US = 24 * 3600 * US
FROM = Query(None, alias="from", description="ISO 8601; the city's time zone when no offset is given")
TO = Query(None, alias="to", description="ISO 8601; the city's time zone when no offset is given")


def _camera(svc: AppServices, camera_id: str) -> None:
    # Removed cameras keep their archive (until retention), so it stays searchable.
    if svc.registry.get(camera_id, include_removed=True) is None:
        raise HTTPException(404, f"no camera {camera_id}")


@router.get("/api/cameras/{camera_id}/recordings")
def recordings(camera_id: str, from_: str | None = FROM, to: str | None = TO,
               caller: Caller = guard("archive.search", "camera_id"), svc: AppServices = Depends(services)) -> dict:
    """Recorded ranges and gaps (with reasons) for the camera between ``from`` and ``to``."""
    _camera(svc, camera_id)
    t1, t2 = time_param(from_, "from", svc), time_param(to, "to", svc)
    try:
        return recordings_report(svc.index, camera_id, t1, t2, svc.settings.tz, svc.settings.segment_seconds)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def _segment_dict(svc: AppServices, s) -> dict:
    tz = svc.settings.tz
    return {
        "id": s.id, "start": format_time(s.start_us, tz), "end": format_time(s.end_us, tz),
        "duration_s": round(s.duration_us / US, 3), "bytes": s.bytes, "codec": s.codec, "width": s.width,
        "height": s.height, "fps": s.fps, "status": s.status, "url": f"/api/segments/{s.id}/file",
    }


@router.get("/api/cameras/{camera_id}/segments")
def segments(camera_id: str, from_: str | None = FROM, to: str | None = TO,
             caller: Caller = guard("archive.search", "camera_id"), svc: AppServices = Depends(services)) -> list[dict]:
    _camera(svc, camera_id)
    t1, t2 = time_param(from_, "from", svc), time_param(to, "to", svc)
    return [_segment_dict(svc, s) for s in svc.index.segments_between(camera_id, t1, t2)]


@router.get("/api/cameras/{camera_id}/segment-at")
def segment_at(camera_id: str, t: str = Query(..., description="ISO 8601 instant"),
               caller: Caller = guard("archive.search", "camera_id"), svc: AppServices = Depends(services)) -> dict:
    """The segment that holds the camera's picture at time ``t`` (404 in a gap)."""
    _camera(svc, camera_id)
    at = time_param(t, "t", svc)
    seg = svc.index.segment_at(camera_id, at)
    if seg is None:
        raise HTTPException(404, f"camera {camera_id} has no recording at {format_time(at, svc.settings.tz)}")
    return _segment_dict(svc, seg) | {"offset_s": round((at - seg.start_us) / US, 6)}


@router.get("/api/cameras/{camera_id}/playback.m3u8")
def playback(camera_id: str, from_: str | None = FROM, to: str | None = TO,
             caller: Caller = guard("archive.play", "camera_id"), svc: AppServices = Depends(services)) -> Response:
    """HLS VOD playlist that starts playing at ``from`` (default window: one hour)."""
    _camera(svc, camera_id)
    t1 = time_param(from_, "from", svc)
    t2 = time_param(to, "to", svc, default=t1 + 3600 * US)
    if t2 <= t1:
        raise HTTPException(422, "'to' must be after 'from'")
    t2 = min(t2, t1 + MAX_PLAYLIST_US)
    segs = svc.index.segments_between(camera_id, t1, t2)
    if not segs:
        raise HTTPException(404, f"camera {camera_id} has no recording between "
                                 f"{format_time(t1, svc.settings.tz)} and {format_time(t2, svc.settings.tz)}")
    body = vod_playlist(segs, lambda s: f"/api/segments/{s.id}/file", start_us=t1)
    tz = svc.settings.tz
    caller.record("archive.play", f"camera:{camera_id}", detail=f"{format_time(t1, tz)} – {format_time(t2, tz)}")
    return Response(body, media_type="application/vnd.apple.mpegurl")


@router.get("/api/segments/{segment_id}/file", response_class=Response,
            responses={200: {"content": {"video/mp4": {}}}})
def segment_file(segment_id: RowId, request: Request, caller: Caller = guard("archive.play"),
                 svc: AppServices = Depends(services)):
    """The segment's fMP4 bytes (HTTP Range supported, for HLS byte ranges and seeking),
    from whichever node's disk holds it."""
    seg = svc.index.get_segment(segment_id)
    if seg is None or seg.status == "missing":
        raise HTTPException(404, f"no segment {segment_id}")
    caller.require("archive.play", seg.camera_id)
    viewer = caller.session.id if caller.session else f"token:{caller.token.id}"
    # Recorded before a byte leaves; journaled as one line per viewed interval when it ends.
    svc.viewings.served(caller.principal, viewer, seg.camera_id, seg.start_us, seg.end_us)
    return segment_file_response(svc, request, seg, filename=f"{seg.camera_id}-{seg.path.rsplit('/', 1)[-1]}",
                                 what=f"segment {segment_id}")
