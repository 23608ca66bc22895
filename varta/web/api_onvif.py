"""/api/onvif (discover and add ONVIF cameras, their inventory and health) and
/api/cameras/{id}/ptz (turn, zoom, presets under the control lock). Thin: guard →
varta.onvif → journal. Credentials are taken, stored and used, never shown or logged."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.cameras.model import CameraError
from varta.onvif.model import OnvifError
from varta.onvif.service import Onvif, PtzBusy
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/onvif", tags=["onvif"])
ptz_router = APIRouter(prefix="/api/cameras/{camera_id}/ptz", tags=["onvif"])
CAM = Path(..., pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")


def onvif(svc: AppServices) -> Onvif:
    return Onvif(svc.engine, svc.registry, svc.settings, node=svc.node.identity.id if svc.node else "web")


class DiscoverIn(BaseModel):
    ranges: list[str] = Field([], description="address ranges for directed probes (camera VLANs pass no multicast)",
                              examples=[["10.20.0.0/24"]])
    multicast: bool = True
    user: str = Field("", description="to ask each device what it is (optional)")
    password: str = Field("", json_schema_extra={"format": "password"})
    timeout_s: float = Field(3.0, ge=0.5, le=30)


class AddIn(BaseModel):
    xaddr: str = Field(examples=["http://10.20.0.15/onvif/device_service"])
    id: str = Field(examples=["mel-0042"])
    user: str = ""
    password: str = Field("", json_schema_extra={"format": "password"})
    main_profile: str | None = None
    sub_profile: str | None = None
    name: str = ""
    kind: str = "other"
    group: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None


class BulkIn(BaseModel):
    user: str = ""
    password: str = Field("", json_schema_extra={"format": "password"})
    group: str = ""
    devices: list[AddIn] = Field(min_length=1, max_length=500)


def _camera_fields(b: AddIn, group: str = "") -> dict:
    return {"name": b.name, "kind": b.kind, "group_name": b.group or group, "address": b.address,
            "latitude": b.lat, "longitude": b.lon}


@router.post("/discover")
def discover(body: DiscoverIn, caller: Caller = guard("camera.manage"), svc: AppServices = Depends(services)) -> dict:
    """WS-Discovery: a multicast Probe and directed Probes to the ranges; each device with
    make, model, firmware, serial (when the credentials open it) and whether it is registered."""
    try:
        found = onvif(svc).discover(body.ranges, body.user, body.password, body.multicast, body.timeout_s)
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None
    caller.record("camera.manage", "cameras",
                  detail=f"ONVIF discovery: {len(found)} devices (ranges {body.ranges or '—'})")
    return {"devices": found}


def _add(caller: Caller, svc: AppServices, b: AddIn, user: str, password: str, group: str = "") -> dict:
    try:
        got = onvif(svc).add(b.xaddr, b.id, user, password, b.main_profile, b.sub_profile, **_camera_fields(b, group))
    except (OnvifError, CameraError) as exc:
        caller.record("camera.manage", f"camera:{b.id}", "failed", f"ONVIF add refused: {exc}")
        raise
    caller.record("camera.manage", f"camera:{b.id}", detail=(
        f"added by ONVIF from {b.xaddr}: {got['manufacturer']} {got['model']} firmware {got['firmware']}, "
        f"main {got['main']['token']}" + (f", sub {got['sub']['token']}" if got["sub"] else "")))
    return got


@router.post("/cameras", status_code=201)
def add_camera(body: AddIn, caller: Caller = guard("camera.manage"), svc: AppServices = Depends(services)) -> dict:
    """Add one camera from its ONVIF profiles (main: the largest picture, sub: the smallest,
    unless named); nothing is added unless the device answered everything."""
    try:
        return _add(caller, svc, body, body.user, body.password)
    except CameraError as exc:
        raise HTTPException(409 if "already exists" in str(exc) else 422, str(exc)) from None
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/cameras/bulk")
def add_cameras(body: BulkIn, caller: Caller = guard("camera.manage"), svc: AppServices = Depends(services)) -> dict:
    """Many at once with one credential set (each device may carry its own); each result
    says added or why not."""
    out = []
    for b in body.devices:
        try:
            got = _add(caller, svc, b, b.user or body.user, b.password or body.password, body.group)
            out.append({"id": b.id, "added": True, "model": got["model"]})
        except (OnvifError, CameraError) as exc:
            out.append({"id": b.id, "added": False, "error": str(exc)})
    return {"results": out, "added": sum(1 for r in out if r["added"])}


@router.get("/devices")
def devices(caller: Caller = guard("system.view"), svc: AppServices = Depends(services)) -> dict:
    """The ONVIF inventory: make, model, firmware, serial, clock offset, last check."""
    return {"devices": onvif(svc).inventory()}


@router.get("/inventory.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def inventory_csv(caller: Caller = guard("system.view"), svc: AppServices = Depends(services)):
    o = onvif(svc)
    rows = o.inventory()
    caller.record("system.view", "cameras", detail=f"csv ONVIF inventory ({len(rows)} lines)")
    return Response(o.inventory_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="onvif-inventory.csv"'})


@router.get("/inventory.pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def inventory_pdf(lang: str = "uk", caller: Caller = guard("system.view"), svc: AppServices = Depends(services)):
    """The same as a printable table (for the installation agreement with the police, MVS-4)."""
    o = onvif(svc)
    rows = o.inventory()
    caller.record("system.view", "cameras", detail=f"pdf ONVIF inventory ({len(rows)} lines)")
    return Response(o.inventory_pdf("en" if lang == "en" else "uk", rows), media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="onvif-inventory.pdf"'})


@router.post("/cameras/{camera_id}/check")
def check(camera_id: str = CAM, caller: Caller = guard("camera.manage"), svc: AppServices = Depends(services)) -> dict:
    """Check the device now: reachability, clock, streams, firmware (alarms as found)."""
    try:
        return onvif(svc).check(camera_id)
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None


# ---------------------------------------------------------------- PTZ


class MoveIn(BaseModel):
    pan: float = Field(0.0, ge=-1, le=1)
    tilt: float = Field(0.0, ge=-1, le=1)
    zoom: float = Field(0.0, ge=-1, le=1)
    seconds: float | None = Field(None, gt=0, le=10, description="stop after this long (else: until /stop)")


class PositionIn(BaseModel):
    pan: float = Field(ge=-1, le=1)
    tilt: float = Field(ge=-1, le=1)
    zoom: float | None = Field(None, ge=0, le=1)


class StepIn(BaseModel):
    pan: float = Field(0.0, ge=-2, le=2)
    tilt: float = Field(0.0, ge=-2, le=2)
    zoom: float = Field(0.0, ge=-1, le=1)


class PresetIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class GotoIn(BaseModel):
    preset: str = Field(min_length=1, max_length=64, description="the preset's token or name")


class HomeIn(BaseModel):
    seconds: int | None = Field(None, ge=5, le=86400, description="back home after this idle time; null: never")


def _command(caller: Caller, svc: AppServices, camera_id: str, op: str, detail: str, lock: bool = True, **kw):
    o = onvif(svc)
    taken = None
    try:
        if lock:
            taken = o.control(camera_id, caller.principal.login, caller.account.full_name, caller.principal.role)
        got = o.ptz(camera_id, op, **kw)
    except PtzBusy as exc:
        caller.record("ptz.control", f"camera:{camera_id}", "refused", f"ptz {detail}: {exc}")
        holder = exc.lock
        raise HTTPException(409, {"message": str(exc), "holder": holder.holder if holder else None,
                                  "holder_name": holder.full_name if holder else None}) from None
    except OnvifError as exc:
        caller.record("ptz.control", f"camera:{camera_id}", "failed", f"ptz {detail}: {exc}")
        raise HTTPException(422 if "not an ONVIF camera" in str(exc) or "no PTZ" in str(exc) else 502, str(exc)) from None
    if op not in ("presets", "status"):
        caller.record("ptz.control", f"camera:{camera_id}",
                      detail=f"ptz {detail}" + (f" (control taken from {taken})" if taken else ""))
    return got


@ptz_router.get("/presets")
def presets(camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
            svc: AppServices = Depends(services)) -> dict:
    return {"presets": _command(caller, svc, camera_id, "presets", "presets", lock=False)}


@ptz_router.get("/status")
def status(camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
           svc: AppServices = Depends(services)) -> dict:
    """Where it points, and who steers it now."""
    o = onvif(svc)
    pos = _command(caller, svc, camera_id, "status", "status", lock=False)
    lock, extra = o.store.lock(camera_id)
    from varta.clock import now_us

    held = lock is not None and lock.expires_us > now_us()
    return {"position": pos, "holder": lock.holder if held else None, "holder_name": lock.full_name if held else None,
            "yours": held and lock.holder == caller.principal.login, "away": extra["away"]}


def _preset_token(svc: AppServices, camera_id: str, preset: str) -> str:
    token = onvif(svc).preset_token(camera_id, preset)
    if token is None:
        raise HTTPException(404, f"no preset {preset!r} on {camera_id}")
    return token


@ptz_router.post("/goto")
def goto(body: GotoIn, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
         svc: AppServices = Depends(services)) -> dict:
    try:
        token = _preset_token(svc, camera_id, body.preset)
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None
    _command(caller, svc, camera_id, "goto", f"goto {body.preset}", preset=token)
    return {"ok": True, "preset": token}


@ptz_router.post("/presets", status_code=201)
def set_preset(body: PresetIn, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
               svc: AppServices = Depends(services)) -> dict:
    token = _command(caller, svc, camera_id, "set_preset", f"set-preset {body.name}", name=body.name)
    return {"token": token, "name": body.name}


@ptz_router.delete("/presets/{preset}")
def remove_preset(preset: str, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
                  svc: AppServices = Depends(services)) -> dict:
    try:
        token = _preset_token(svc, camera_id, preset)
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None
    _command(caller, svc, camera_id, "remove_preset", f"remove-preset {preset}", preset=token)
    return {"ok": True}


@ptz_router.post("/move")
def move(body: MoveIn, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
         svc: AppServices = Depends(services)) -> dict:
    """Continuous move at these speeds (−1…1), for ``seconds`` or until /stop."""
    _command(caller, svc, camera_id, "move", f"move pan {body.pan:+.2f} tilt {body.tilt:+.2f} zoom {body.zoom:+.2f}"
             + (f" for {body.seconds:g} s" if body.seconds else ""), pan=body.pan, tilt=body.tilt, zoom=body.zoom,
             seconds=body.seconds)
    return {"ok": True}


@ptz_router.post("/stop")
def stop(camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
         svc: AppServices = Depends(services)) -> dict:
    _command(caller, svc, camera_id, "stop", "stop")
    return {"ok": True}


@ptz_router.post("/absolute")
def absolute(body: PositionIn, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
             svc: AppServices = Depends(services)) -> dict:
    _command(caller, svc, camera_id, "absolute", f"absolute pan {body.pan:+.2f} tilt {body.tilt:+.2f}",
             pan=body.pan, tilt=body.tilt, zoom=body.zoom)
    return {"ok": True}


@ptz_router.post("/relative")
def relative(body: StepIn, camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
             svc: AppServices = Depends(services)) -> dict:
    _command(caller, svc, camera_id, "relative", f"relative pan {body.pan:+.2f} tilt {body.tilt:+.2f}",
             pan=body.pan, tilt=body.tilt, zoom=body.zoom)
    return {"ok": True}


@ptz_router.post("/release")
def release(camera_id: str = CAM, caller: Caller = guard("ptz.control", "camera_id"),
            svc: AppServices = Depends(services)) -> dict:
    onvif(svc).store.release(camera_id, caller.principal.login)
    caller.record("ptz.control", f"camera:{camera_id}", detail="ptz release")
    return {"ok": True}


@ptz_router.put("/home-after")
def home_after(body: HomeIn, camera_id: str = CAM, caller: Caller = guard("camera.manage"),
               svc: AppServices = Depends(services)) -> dict:
    """Return to the home position (a preset named "home", else the device's home) after
    this idle time."""
    try:
        onvif(svc).set_home_after(camera_id, body.seconds)
    except OnvifError as exc:
        raise HTTPException(422, str(exc)) from None
    caller.record("camera.manage", f"camera:{camera_id}", detail=f"changed: ptz home after {body.seconds} s")
    return {"ok": True, "home_after_s": body.seconds}
