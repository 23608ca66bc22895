"""/api/cameras: the registry and each camera's live recording state."""

from __future__ import annotations

from typing import Literal

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.cameras.importer import parse_camera_list
from varta.cameras import geo
from starlette.concurrency import run_in_threadpool

from varta.cameras.addresses import AddressBook, AddressError
from varta.cameras.model import Camera, CameraError
from varta.cameras.schedule import Schedule, ScheduleError
from varta.clock import format_time
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
addresses_router = APIRouter(prefix="/api/addresses", tags=["cameras"])


class CameraIn(BaseModel):
    id: str = Field(examples=["mel-0042"])
    url: str = Field(description="main stream URL (credentials are stored, never shown)")
    sub_url: str | None = None
    name: str = ""
    kind: str = "other"
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    group: str = ""
    retention_days: int | None = None
    schedule: dict | str | None = None
    recorder: str | None = None
    enabled: bool = True
    view_direction: float | None = Field(None, description="degrees from north, clockwise")
    view_angle: float | None = Field(None, description="width of the field of view, degrees")
    view_range_m: float | None = Field(None, description="how far it makes out a person, metres")
    sensitivity: Literal["normal", "sensitive"] = Field("normal", description="sensitive: shut by a lockdown")


class CameraPatch(BaseModel):
    url: str | None = None
    sub_url: str | None = None
    name: str | None = None
    kind: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    group: str | None = None
    retention_days: int | None = None
    schedule: dict | str | None = None
    recorder: str | None = None
    enabled: bool | None = None
    view_direction: float | None = None
    view_angle: float | None = None
    view_range_m: float | None = None
    sensitivity: Literal["normal", "sensitive"] | None = None


_names_cache: dict = {"at": 0.0, "names": {}}


def _node_names(svc: AppServices) -> dict[str, str]:
    """node id → name, read at most every 2 s (a camera list asks once per camera)."""
    import time

    registry = getattr(svc.node, "registry", None)
    if registry is None:
        return {}
    if time.monotonic() - _names_cache["at"] > 2.0:
        try:
            _names_cache.update(at=time.monotonic(), names=registry.names())
        except Exception:  # noqa: BLE001 - a label only
            pass
    return _names_cache["names"]


def status_dict(svc: AppServices, camera_id: str, row: dict | None) -> dict:
    tz = svc.settings.tz
    if row is None:
        return {"state": "unknown", "reason": "", "detail": "no recorder has reported on this camera yet"}
    return {
        "state": row["state"],
        "reason": row["reason"],
        "detail": row["detail"],
        "since": format_time(row["since_us"], tz),
        "recorder": row["recorder"],  # the id of the node recording it
        "node": _node_names(svc).get(row["recorder"], row["recorder"]),
        "last_segment_end": format_time(row["last_segment_end_us"], tz) if row["last_segment_end_us"] else None,
        "bitrate_kbps": round(row["bitrate_bps"] / 1000, 1) if row["bitrate_bps"] else None,
        "fps": row["fps"],
        "lag_s": row["lag_s"],
        "updated": format_time(row["updated_us"], tz),
    }


def _manages(svc: AppServices, caller: Caller) -> bool:
    return bool(svc.access.policy().decide(caller.principal, "camera.manage"))


def _camera_out(svc: AppServices, cam: Camera, status: dict | None, show_urls: bool = True) -> dict:
    out = cam.public_dict() | {"status": status_dict(svc, cam.id, status), "viewers": svc.live.viewers(cam.id)}
    if not show_urls:
        # Stream addresses (even redacted) map the city's network: only for who manages cameras.
        out.pop("main_url", None)
        out.pop("sub_url", None)
    return out


@router.get("")
def list_cameras(caller: Caller = guard("camera.list"), svc: AppServices = Depends(services)) -> list[dict]:
    """The cameras this account may see (police: their groups only)."""
    statuses = svc.index.statuses()
    show_urls = _manages(svc, caller)
    return [_camera_out(svc, c, statuses.get(c.id), show_urls) for c in svc.registry.list() if caller.sees_camera(c)]


def _get(svc: AppServices, camera_id: str) -> Camera:
    cam = svc.registry.get(camera_id)
    if cam is None:
        raise HTTPException(404, f"no camera {camera_id}")
    return cam


@router.get("/near")
def cameras_near(lat: float | None = Query(None, ge=-90, le=90), lon: float | None = Query(None, ge=-180, le=180),
                 address: str | None = Query(None, max_length=300, description="found in the city's address list"),
                 radius_m: float = Query(150.0, gt=0, le=5000),
                 caller: Caller = guard("camera.list"), svc: AppServices = Depends(services)) -> dict:
    """Cameras whose field of view covers the point, then those within ``radius_m``, nearest
    first — of the camera groups this account may see (police: its own)."""
    point = {"latitude": lat, "longitude": lon, "address": None}
    if address:
        found = AddressBook(svc.engine).locate(address)
        if found is None:
            raise HTTPException(404, f"address {address!r} is not in the city's address list")
        point = {"latitude": found["latitude"], "longitude": found["longitude"], "address": found["address"]}
    elif lat is None or lon is None:
        raise HTTPException(422, "give lat and lon, or an address")
    cams = {c.id: c for c in svc.registry.list() if c.latitude is not None and caller.sees_camera(c)}
    found = geo.near(geo.views_of(cams.values()), point["latitude"], point["longitude"], radius_m)
    statuses = svc.index.statuses()
    caller.record("camera.list", "cameras", detail=f"near {point['address'] or ''} "
                  f"{point['latitude']:.6f},{point['longitude']:.6f} within {radius_m:.0f} m: {len(found)} cameras")
    return {"point": point, "radius_m": radius_m,
            "cameras": [_camera_out(svc, cams[f["id"]], statuses.get(f["id"]), _manages(svc, caller)) | f
                        for f in found]}


@addresses_router.get("")
def search_addresses(q: str = Query(..., min_length=2, max_length=300), limit: int = Query(10, ge=1, le=50),
                     caller: Caller = guard("camera.list"), svc: AppServices = Depends(services)) -> dict:
    """Addresses of the city's list holding every word typed (for the map's search box)."""
    return {"addresses": AddressBook(svc.engine).search(q, limit)}


@addresses_router.put("", responses={200: {"description": "how many addresses the list now holds"}})
async def import_addresses(request: Request, caller: Caller = guard("camera.manage"),
                           svc: AppServices = Depends(services)) -> dict:
    """Replace the address list with a CSV (address, latitude, longitude; UTF-8)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        n = await run_in_threadpool(AddressBook(svc.engine).import_csv, text)
    except AddressError as exc:
        raise HTTPException(422, str(exc)) from None
    await run_in_threadpool(caller.record, "camera.manage", "addresses", "ok", f"address list imported: {n} addresses")
    return {"addresses": n}


@router.get("/{camera_id}")
def get_camera(camera_id: str, caller: Caller = guard("camera.list", "camera_id"),
               svc: AppServices = Depends(services)) -> dict:
    cam = _get(svc, camera_id)
    return _camera_out(svc, cam, svc.index.status(camera_id), _manages(svc, caller))


@router.post("", status_code=201)
def add_camera(body: CameraIn, caller: Caller = guard("camera.manage"), svc: AppServices = Depends(services)) -> dict:
    try:
        cam = Camera(
            id=body.id, main_url=body.url, sub_url=body.sub_url, name=body.name, kind=body.kind,
            address=body.address, latitude=body.lat, longitude=body.lon, group_name=body.group,
            retention_days=body.retention_days or svc.settings.default_retention_days,
            schedule=Schedule.from_json(body.schedule), recorder=body.recorder, enabled=body.enabled,
            view_direction=body.view_direction, view_angle=body.view_angle, view_range_m=body.view_range_m,
            sensitivity=body.sensitivity,
        )
        svc.registry.add(cam)
    except (CameraError, ScheduleError) as exc:
        raise HTTPException(400, str(exc)) from None
    caller.record("camera.manage", f"camera:{cam.id}", detail=f"added: {cam.name!r}, group {cam.group_name!r}, "
                                                              f"{cam.public_dict()['main_url']}")
    return _camera_out(svc, cam, None)


_PATCH_FIELDS = {"url": "main_url", "lat": "latitude", "lon": "longitude", "group": "group_name"}


@router.patch("/{camera_id}")
def update_camera(camera_id: str, body: CameraPatch, caller: Caller = guard("camera.manage"),
                  svc: AppServices = Depends(services)) -> dict:
    _get(svc, camera_id)
    changes = {_PATCH_FIELDS.get(k, k): v for k, v in body.model_dump(exclude_unset=True).items()}
    try:
        if "schedule" in changes:
            changes["schedule"] = Schedule.from_json(changes["schedule"])
        cam = svc.registry.update(camera_id, **changes)
    except (CameraError, ScheduleError) as exc:
        raise HTTPException(400, str(exc)) from None
    shown = {k: ("(credentials hidden)" if k in ("url", "sub_url") else v)
             for k, v in body.model_dump(exclude_unset=True).items()}
    caller.record("camera.manage", f"camera:{camera_id}", detail=f"changed: {shown}")
    return _camera_out(svc, cam, svc.index.status(camera_id))


@router.delete("/{camera_id}", status_code=204)
def remove_camera(camera_id: str, caller: Caller = guard("camera.manage"),
                  svc: AppServices = Depends(services)) -> None:
    try:
        svc.registry.remove(camera_id)
    except CameraError as exc:
        raise HTTPException(404, str(exc)) from None
    caller.record("camera.manage", f"camera:{camera_id}", detail="removed (footage kept under retention)")


@router.post("/import")
async def import_cameras(request: Request, caller: Caller = guard("camera.manage"),
                         svc: AppServices = Depends(services)) -> dict:
    """Body: the camera list as YAML (or JSON, which is YAML); all or nothing."""
    text = (await request.body()).decode("utf-8", "replace")
    try:
        data = yaml.safe_load(text)
        cams = parse_camera_list(data, source="request body")
        for cam in cams:
            if not cam.retention_days:
                cam.retention_days = svc.settings.default_retention_days
        outcome = {cam.id: svc.registry.upsert(cam) for cam in cams}
    except yaml.YAMLError as exc:
        raise HTTPException(400, f"request body is not YAML/JSON: {exc}") from None
    except CameraError as exc:
        raise HTTPException(400, str(exc)) from None
    caller.record("camera.manage", "cameras", detail=f"imported {len(outcome)}: {outcome}")
    return {"imported": len(outcome), "cameras": outcome}


@router.get("/{camera_id}/snapshot.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
async def snapshot(camera_id: str, width: int | None = Query(None, ge=64, le=3840),
                   stream: str = Query("sub", pattern="^(sub|main)$"),
                   caller: Caller = guard("live.view", "camera_id"), svc: AppServices = Depends(services)) -> Response:
    """What the camera sees now, as one JPEG (from the sub-stream when there is one), taken
    from the camera's live relay: no new camera connection per request."""
    from starlette.concurrency import run_in_threadpool

    from varta.live.hub import SnapshotError

    cam = await run_in_threadpool(_get, svc, camera_id)
    try:
        jpeg = await svc.live.snapshot(cam, stream, width)
    except SnapshotError as exc:
        await run_in_threadpool(caller.record, "live.view", f"camera:{camera_id}", "failed", f"snapshot: {exc}")
        raise HTTPException(502, str(exc)) from None
    await run_in_threadpool(caller.record, "live.view", f"camera:{camera_id}", detail="snapshot")
    return Response(jpeg, media_type="image/jpeg")


@router.get("/{camera_id}/status")
def camera_status(camera_id: str, caller: Caller = guard("camera.list", "camera_id"),
                  svc: AppServices = Depends(services)) -> dict:
    _get(svc, camera_id)
    return status_dict(svc, camera_id, svc.index.status(camera_id))
