"""/api/incidents: the register of offences and emergencies (R7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from varta.clock import format_time, now_us
from varta.evidence.incidents import TYPES
from varta.evidence.registers import incidents_csv, incidents_pdf
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param
from varta.web.evidence_http import domain_errors, register_file

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(prefix="/api/incidents", tags=["evidence"])


class IncidentIn(BaseModel):
    type: str = Field(examples=["traffic_accident"], description=" | ".join(TYPES))
    title: str = Field(examples=["Зіткнення двох автомобілів на перехресті"])
    description: str = ""
    place: str = ""
    cameras: list[str] = []
    from_: str = Field(alias="from", examples=["2026-03-03T14:05:00"])
    to: str | None = None
    status: str = "open"


class IncidentPatch(BaseModel):
    type: str | None = None
    title: str | None = None
    description: str | None = None
    place: str | None = None
    cameras: list[str] | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    status: str | None = None


class FromEventIn(BaseModel):
    type: str | None = None
    title: str | None = None
    description: str | None = None
    place: str | None = None


class LinkIn(BaseModel):
    event_id: int


class NoteIn(BaseModel):
    text: str


def _fields(body, svc: AppServices) -> dict:
    data = body.model_dump(by_alias=True, exclude_none=True)
    out = {k: v for k, v in data.items() if k not in ("from", "to")}
    if "from" in data:
        out["start_us"] = time_param(data["from"], "from", svc)
    if "to" in data:
        out["end_us"] = time_param(data["to"], "to", svc)
    for cam in out.get("cameras", []):
        if svc.registry.get(cam, include_removed=True) is None:
            raise HTTPException(404, f"no camera {cam}")
    return out


@router.get("")
def list_incidents(status: str | None = None, type: str | None = None, camera: str | None = None, q: str = "",
                   from_: str | None = Query(None, alias="from"), to: str | None = None,
                   format: str = Query("json", pattern="^(json|csv|pdf)$"),
                   caller: Caller = guard("incident.view"), svc: AppServices = Depends(services)):
    t1 = time_param(from_, "from", svc) if from_ else None
    t2 = time_param(to, "to", svc) if to else None
    incs = svc.evidence.incidents.list(status=status, type_=type, camera_id=camera, text=q, since_us=t1, until_us=t2)
    if format == "json":
        return {"incidents": incs}
    caller.record("incident.view", "incidents", detail=f"register as {format} ({len(incs)} incidents)")
    subtitle = f"{caller.account.full_name}, {format_time(now_us(), svc.settings.tz)}"
    return register_file(format, "incidents", lambda: incidents_csv(incs), lambda: incidents_pdf(
        incs, f"{svc.settings.instance_name}: реєстр інцидентів / incident register", subtitle))


@router.post("", status_code=201)
def create(body: IncidentIn, caller: Caller = guard("incident.manage"), svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        inc = svc.evidence.incidents.create(caller.principal, _fields(body, svc))
    caller.record("incident.manage", f"incident:{inc['number']}", detail=f"created: {inc['type']} {inc['title'][:200]}")
    return inc


@router.post("/from-event/{event_id}", status_code=201)
def create_from_event(body: FromEventIn, event_id: int = Path(ge=1, le=2**63 - 1), caller: Caller = guard("incident.manage"),
                      svc: AppServices = Depends(services)) -> dict:
    """An incident opened from an alarm (the console's Incident button)."""
    with domain_errors():
        inc = svc.evidence.incidents.from_event(caller.principal, event_id, body.model_dump(exclude_none=True))
    caller.record("incident.manage", f"incident:{inc['number']}", detail=f"created from event {event_id}")
    return inc


@router.get("/{incident_id}")
def get_incident(incident_id: RowId, caller: Caller = guard("incident.view"), svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        return svc.evidence.incidents.get(incident_id)


@router.patch("/{incident_id}")
def change(incident_id: RowId, body: IncidentPatch, caller: Caller = guard("incident.manage"),
           svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        inc = svc.evidence.incidents.update(incident_id, caller.principal, _fields(body, svc))
    caller.record("incident.manage", f"incident:{inc['number']}", detail="changed: " + ", ".join(
        body.model_dump(by_alias=True, exclude_none=True)))
    return inc


@router.post("/{incident_id}/events")
def link_event(incident_id: RowId, body: LinkIn, caller: Caller = guard("incident.manage"),
               svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        inc = svc.evidence.incidents.link_event(incident_id, caller.principal, body.event_id)
    caller.record("incident.manage", f"incident:{inc['number']}", detail=f"linked event {body.event_id}")
    return inc


@router.post("/{incident_id}/notes")
def note(incident_id: RowId, body: NoteIn, caller: Caller = guard("incident.manage"),
         svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        inc = svc.evidence.incidents.note(incident_id, caller.principal, body.text)
    caller.record("incident.manage", f"incident:{inc['number']}", detail=f"note: {body.text[:200]}")
    return inc
