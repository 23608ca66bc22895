"""/api/cameras: the registry and each camera's live recording state."""

from __future__ import annotations

import yaml
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from varta.cameras.importer import parse_camera_list
from varta.cameras.model import Camera, CameraError
from varta.cameras.schedule import Schedule, ScheduleError
from varta.clock import format_time
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/cameras", tags=["cameras"])


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


def status_dict(svc: AppServices, camera_id: str, row: dict | None) -> dict:
    tz = svc.settings.tz
    if row is None:
        return {"state": "unknown", "reason": "", "detail": "no recorder has reported on this camera yet"}
    return {
        "state": row["state"],
        "reason": row["reason"],
        "detail": row["detail"],
        "since": format_time(row["since_us"], tz),
        "recorder": row["recorder"],
        "last_segment_end": format_time(row["last_segment_end_us"], tz) if row["last_segment_end_us"] else None,
        "bitrate_kbps": round(row["bitrate_bps"] / 1000, 1) if row["bitrate_bps"] else None,
        "fps": row["fps"],
        "lag_s": row["lag_s"],
        "updated": format_time(row["updated_us"], tz),
    }


def _camera_out(svc: AppServices, cam: Camera, status: dict | None) -> dict:
    return cam.public_dict() | {"status": status_dict(svc, cam.id, status)}


@router.get("")
def list_cameras(svc: AppServices = Depends(services)) -> list[dict]:
    statuses = svc.index.statuses()
    return [_camera_out(svc, c, statuses.get(c.id)) for c in svc.registry.list()]


def _get(svc: AppServices, camera_id: str) -> Camera:
    cam = svc.registry.get(camera_id)
    if cam is None:
        raise HTTPException(404, f"no camera {camera_id}")
    return cam


@router.get("/{camera_id}")
def get_camera(camera_id: str, svc: AppServices = Depends(services)) -> dict:
    cam = _get(svc, camera_id)
    return _camera_out(svc, cam, svc.index.status(camera_id))


@router.post("", status_code=201)
def add_camera(body: CameraIn, svc: AppServices = Depends(services)) -> dict:
    try:
        cam = Camera(
            id=body.id, main_url=body.url, sub_url=body.sub_url, name=body.name, kind=body.kind,
            address=body.address, latitude=body.lat, longitude=body.lon, group_name=body.group,
            retention_days=body.retention_days or svc.settings.default_retention_days,
            schedule=Schedule.from_json(body.schedule), recorder=body.recorder, enabled=body.enabled,
        )
        svc.registry.add(cam)
    except (CameraError, ScheduleError) as exc:
        raise HTTPException(400, str(exc)) from None
    return _camera_out(svc, cam, None)


_PATCH_FIELDS = {"url": "main_url", "lat": "latitude", "lon": "longitude", "group": "group_name"}


@router.patch("/{camera_id}")
def update_camera(camera_id: str, body: CameraPatch, svc: AppServices = Depends(services)) -> dict:
    _get(svc, camera_id)
    changes = {_PATCH_FIELDS.get(k, k): v for k, v in body.model_dump(exclude_unset=True).items()}
    try:
        if "schedule" in changes:
            changes["schedule"] = Schedule.from_json(changes["schedule"])
        cam = svc.registry.update(camera_id, **changes)
    except (CameraError, ScheduleError) as exc:
        raise HTTPException(400, str(exc)) from None
    return _camera_out(svc, cam, svc.index.status(camera_id))


@router.delete("/{camera_id}", status_code=204)
def remove_camera(camera_id: str, svc: AppServices = Depends(services)) -> None:
    try:
        svc.registry.remove(camera_id)
    except CameraError as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/import")
async def import_cameras(request: Request, svc: AppServices = Depends(services)) -> dict:
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
    return {"imported": len(outcome), "cameras": outcome}


@router.get("/{camera_id}/status")
def camera_status(camera_id: str, svc: AppServices = Depends(services)) -> dict:
    _get(svc, camera_id)
    return status_dict(svc, camera_id, svc.index.status(camera_id))
