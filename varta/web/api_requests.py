"""/api/requests: requests for recordings — register, resolve, prepare, transfer (A4.7–A4.11)."""

from __future__ import annotations

from fastapi import Request, APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.clock import format_time, now_us
from varta.evidence import requests as rules
from varta.evidence.jobs import PACKAGE, TRANSFER
from varta.evidence.registers import requests_csv, requests_pdf
from varta.web.auth import Caller, guard, public
from varta.web.deps import AppServices, services, time_param
from varta.web.evidence_http import IntervalIn, domain_errors, intervals, register_file

router = APIRouter(prefix="/api/requests", tags=["evidence"])
key_router = APIRouter(prefix="/api/evidence", tags=["evidence"])


class RequestIn(BaseModel):
    kind: str = Field(examples=["police"], description=" | ".join(rules.KINDS))
    incoming_no: str = Field(examples=["12/3456"])
    incoming_date: str = Field(examples=["2026-03-03"])
    requester: str = Field(examples=["Мелітопольський РВП ГУНП"])
    contact: str = ""
    basis: str = Field(examples=["ст. 93 КПК України; кримінальне провадження № 1202…"])
    purpose: str = ""
    items: list[IntervalIn] = Field(min_length=1)
    incident_id: int | None = None
    redaction: dict | None = Field(None, description="third parties only: {people: faces|people|none, plates, subject}")


class ResolutionIn(BaseModel):
    decision: str = Field(pattern="^(approve|refuse)$")
    text: str
    date: str | None = Field(None, description="the resolution's date (YYYY-MM-DD); today when empty")


class WithdrawIn(BaseModel):
    reason: str


def _obj(req: dict) -> str:
    return f"request:{req['number']}"


@router.get("")
def list_requests(state: str | None = None, kind: str | None = None, open: bool = False, q: str = "",
                  from_: str | None = Query(None, alias="from"), to: str | None = None,
                  format: str = Query("json", pattern="^(json|csv|pdf)$"),
                  caller: Caller = guard("request.view"), svc: AppServices = Depends(services)):
    """The request register, newest first, filtered; ``format=csv|pdf`` to keep or print it."""
    ev = svc.evidence
    t1 = time_param(from_, "from", svc) if from_ else None
    t2 = time_param(to, "to", svc) if to else None
    reqs = ev.requests.list(state=state, kind=kind, open_only=open, text=q, since_us=t1, until_us=t2)
    if format == "json":
        return {"requests": reqs}
    caller.record("request.view", "requests", detail=f"register as {format} ({len(reqs)} requests)")
    tz = svc.settings.tz
    subtitle = (f"{format_time(t1, tz) if t1 else '…'} – {format_time(t2, tz) if t2 else '…'}; "
                f"{caller.account.full_name}, {format_time(now_us(), tz)}")
    return register_file(format, "requests", lambda: requests_csv(reqs), lambda: requests_pdf(
        reqs, f"{svc.settings.instance_name}: журнал запитів / request register", subtitle))


@router.get("/deadlines")
def deadlines(caller: Caller = guard("request.view"), svc: AppServices = Depends(services)) -> dict:
    """Approved requests not yet answered, by how near the 5-working-day deadline is (A4.10)."""
    d = svc.evidence.requests.deadlines()
    return {**d, "rules": svc.settings.holiday_rules}


@router.post("", status_code=201)
def register(body: RequestIn, caller: Caller = guard("request.register"), svc: AppServices = Depends(services)) -> dict:
    """Register an incoming request; its intervals are held from this moment."""
    items = [rules.Interval(*iv) for iv in intervals(body.items, svc)]
    with domain_errors():
        req = svc.evidence.requests.register(
            caller.principal, kind=body.kind, incoming_no=body.incoming_no, incoming_date=body.incoming_date,
            requester=body.requester, contact=body.contact, basis=body.basis, purpose=body.purpose, items=items,
            incident_id=body.incident_id, redaction=body.redaction)
    caller.record("request.register", _obj(req), detail=f"{req['kind']} {req['incoming_no']} of {req['incoming_date']} "
                  f"from {req['requester']}; hold {req['hold_id']} on "
                  + "; ".join(f"{i['camera_id']} {i['from']} – {i['to']}" for i in req["items"]))
    return req


@router.get("/{request_id}")
def get_request(request_id: str, caller: Caller = guard("request.view"), svc: AppServices = Depends(services)) -> dict:
    ev = svc.evidence
    with domain_errors():
        rid = ev.requests.find(request_id).id
        return {**ev.requests.get(rid), "jobs": ev.jobs.for_request(rid)}


@router.post("/{request_id}/resolve")
def resolve(request_id: str, body: ResolutionIn, caller: Caller = guard("request.resolve"),
            svc: AppServices = Depends(services)) -> dict:
    """The mayor's (first deputy's, deputy's) decision; third-party requests: the mayor only (A4.8)."""
    ev = svc.evidence
    with domain_errors():
        row = ev.requests.find(request_id)
    obj = f"request:{row.number}"
    with domain_errors(caller, "request.resolve", obj):
        req = ev.requests.resolve(row.id, caller.principal, approve=body.decision == "approve", text=body.text,
                                  resolved_on=body.date)
    res = req["resolution"]
    caller.record("request.resolve", obj, detail=f"{res['decision']} on {res['date']}: {res['text'][:200]}"
                  + (f"; due {req['due_date']}" if req["due_date"] else ""))
    return req


@router.post("/{request_id}/prepare", status_code=202)
def prepare(request_id: str, caller: Caller = guard("request.prepare"), svc: AppServices = Depends(services)) -> dict:
    """Build the evidence package in the background (stream copy, signed manifest)."""
    return _start(request_id, PACKAGE, "request.prepare", caller, svc)


@router.post("/{request_id}/transfer", status_code=202)
def transfer(request_id: str, caller: Caller = guard("request.transfer"), svc: AppServices = Depends(services)) -> dict:
    """Upload the package to the configured storage and make a time-limited link (A4.11)."""
    return _start(request_id, TRANSFER, "request.transfer", caller, svc)


def _start(request_id: str, kind: str, action: str, caller: Caller, svc: AppServices) -> dict:
    ev = svc.evidence
    with domain_errors():
        row = ev.requests.find(request_id)
        if kind == PACKAGE:
            for it in row.items:  # the package reads recorded video: the camera rules apply
                caller.require("archive.export", it["camera_id"])
        job = ev.jobs.start(kind, row.id, caller.principal)
    caller.record(action, f"request:{row.number}", detail=f"{kind} job {job['id']} started")
    return job


@router.post("/{request_id}/link")
def new_link(request_id: str, caller: Caller = guard("request.transfer"), svc: AppServices = Depends(services)) -> dict:
    """A fresh presigned link when the first one expired."""
    ev = svc.evidence
    with domain_errors():
        rid = ev.requests.find(request_id).id
        url, expires_us = ev.jobs.new_link(rid)
        req = ev.requests.new_link(rid, caller.principal, url, format_time(expires_us, svc.settings.tz))
    caller.record("request.transfer", _obj(req), detail=f"new link until {req['transfer']['expires']}")
    return req


@router.post("/{request_id}/withdraw")
def withdraw(request_id: str, body: WithdrawIn, caller: Caller = guard("request.register"),
             svc: AppServices = Depends(services)) -> dict:
    ev = svc.evidence
    with domain_errors():
        rid = ev.requests.find(request_id).id
        req = ev.requests.withdraw(rid, caller.principal, body.reason)
    caller.record("request.register", _obj(req), detail=f"withdrawn: {body.reason[:200]}")
    return req


@router.get("/{request_id}/package", response_class=Response, responses={200: {"content": {"application/zip": {}}}})
def download_package(request_id: str, request: Request, caller: Caller = guard("request.prepare"),
                     svc: AppServices = Depends(services)):
    """The package's ZIP, for a hand-over on a disk (restricted zone, like any export),
    from the node that built it."""
    from varta.web.files_http import node_file_response

    ev = svc.evidence
    with domain_errors():
        row = ev.requests.find(request_id)
        node, name = ev.jobs.package_location(row.id)
    caller.record("request.prepare", f"request:{row.number}", detail=f"downloaded {name}")
    return node_file_response(svc, request, node, "packages", name, "application/zip", filename=name,
                              what=f"package {name}")


@router.get("/jobs/{job_id}")
def get_job(job_id: str, caller: Caller = guard("request.view"), svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        return svc.evidence.jobs.get(job_id)


@key_router.get("/key", dependencies=[public("the instance's public key: what anyone checks packages against")])
def instance_key(svc: AppServices = Depends(services)) -> dict:
    key = svc.evidence.key
    return {"fingerprint": key.fingerprint(), "public_key_pem": key.public_pem().decode(),
            "instance": svc.settings.instance_name}
