"""/api/requests: requests for recordings — register, resolve, prepare, transfer (A4.7–A4.11)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from urllib.parse import quote
from typing import Annotated

from fastapi import APIRouter, Path, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.clock import format_time, now_us
from varta.evidence import requests as rules
from varta.evidence.jobs import PACKAGE, TRANSFER
from varta.evidence.registers import requests_csv, requests_pdf
from varta.evidence.requests_store import AlreadyFiled
from varta.evidence.service import filer_view
from varta.web.auth import Caller, guard, guard_any, public
from varta.web.deps import AppServices, services, time_param
from varta.web.evidence_http import IntervalIn, domain_errors, intervals, register_file

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

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


class AttachmentIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["лист-12-3456.pdf"])
    media_type: str = Field("application/pdf", pattern="^(application/pdf|image/jpeg|image/png)$")
    content_base64: str = Field(description="the file, base64 (at most 20 MB decoded)")


class FiledRequestIn(RequestIn):
    attachments: list[AttachmentIn] = Field(default=[], max_length=5,
                                            description="the official letter and other documents (PDF, JPEG, PNG)")


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


MAX_ATTACHMENT = 20 * 1024 * 1024
# What a police system files: its own requests, and the rulings of an investigating judge it
# carries out (temporary access to things, CPC arts. 159–166): the ruling is the document.
FILED_KINDS = ("police", "court")
_MAGIC = {"application/pdf": b"%PDF-", "image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG"}
XROAD_HEADERS = ("X-Road-Client", "X-Road-Service", "X-Road-Id", "X-Road-UserId", "X-Road-Request-Hash")


def _documents(body: FiledRequestIn) -> list[tuple[str, str, bytes]]:
    out = []
    for a in body.attachments:
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(422, f"attachment {a.name!r}: content_base64 is not base64") from None
        if not content or len(content) > MAX_ATTACHMENT:
            raise HTTPException(422, f"attachment {a.name!r}: {len(content)} bytes; give 1 byte to 20 MB")
        if not content.startswith(_MAGIC[a.media_type]):
            raise HTTPException(422, f"attachment {a.name!r} is not a {a.media_type} file")
        out.append((a.name, a.media_type, content))
    return out


def exchange_trace(request: Request) -> str:
    """The X-Road (Trembita) message's identity, when the call came through it: journaled."""
    got = [f"{h}: {request.headers[h][:200]}" for h in XROAD_HEADERS if request.headers.get(h)]
    return f"; {'; '.join(got)}" if got else ""


@router.post("", status_code=201, responses={200: {"description": "the request this Idempotency-Key filed before"},
                                             422: {"description": "invalid, or the key was used for another body"}})
def register(body: FiledRequestIn, request: Request, response: Response,
             idempotency_key: str | None = Header(None, max_length=200, description="a retried call with the same "
                                                  "key and body registers nothing new and answers the same request"),
             caller: Caller = guard_any("request.register", "request.file"),
             svc: AppServices = Depends(services)) -> dict:
    """Register an incoming request; its intervals are held from this moment. The police's
    own system files through here with a token scoped ``request.file``
    (docs/police-exchange.md): the request is held and waits for the mayor's resolution
    like any other, and only that account sees it afterwards."""
    ev = svc.evidence
    filer = not caller.may("request.register")
    if filer and body.kind not in FILED_KINDS:
        caller.record("request.file", "requests", "refused", f"kind {body.kind!r}: on line only {FILED_KINDS}")
        raise HTTPException(403, "on-line filing is for the police's own requests (kind 'police') and the court "
                                 "rulings they carry out (kind 'court')")
    if filer and (body.redaction or body.incident_id):
        raise HTTPException(422, "redaction and incident links are the department's to set")
    docs = _documents(body)
    items = [rules.Interval(*iv) for iv in intervals(body.items, svc)]
    key = None
    if idempotency_key:
        digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
        key = (idempotency_key.strip(), digest)
    action = "request.file" if filer else "request.register"
    try:
        with domain_errors():
            req = ev.requests.register(
                caller.principal, kind=body.kind, incoming_no=body.incoming_no, incoming_date=body.incoming_date,
                requester=body.requester, contact=body.contact, basis=body.basis, purpose=body.purpose, items=items,
                incident_id=body.incident_id, redaction=body.redaction, filed_by=caller.account.login if filer else None,
                attachments=docs, idempotency=key)
    except AlreadyFiled as seen:
        if not seen.same:
            caller.record(action, "requests", "refused", f"Idempotency-Key {key[0]!r} reused for another request body")
            raise HTTPException(422, f"Idempotency-Key {key[0]!r} was used for a different request") from None
        req = ev.requests.get(seen.request_id)
        caller.record(action, _obj(req), detail=f"retried call (Idempotency-Key {key[0]}): nothing new registered"
                      + exchange_trace(request))
        response.status_code = 200
        return _as_seen_by(caller, req)
    caller.record(action, _obj(req), detail=f"{req['kind']} {req['incoming_no']} of {req['incoming_date']} "
                  f"from {req['requester']}; hold {req['hold_id']} on "
                  + "; ".join(f"{i['camera_id']} {i['from']} – {i['to']}" for i in req["items"])
                  + "".join(f"; document {a['name']} SHA-256 {a['sha256']}" for a in req.get("attachments", []))
                  + exchange_trace(request))
    return _as_seen_by(caller, req)


def _as_seen_by(caller: Caller, req: dict) -> dict:
    """The whole request for the department and leaders; the filer's view for the police."""
    if caller.may("request.view"):
        return req
    return {**filer_view(req), "attachments": req.get("attachments", [])}


def _own(caller: Caller, svc: AppServices, request_id: str):
    """The request's row, if this caller may read it: ``request.view``, or its filer."""
    with domain_errors():
        row = svc.evidence.requests.find(request_id)
    if caller.may("request.view"):
        return row
    if row.filed_by != caller.account.login:  # another unit's, or typed in: as if it did not exist
        caller.record("request.file", f"request:{row.number}", "refused", "not filed by this account")
        raise HTTPException(404, f"no request {request_id}")
    return row


class MoreItemsIn(BaseModel):
    items: list[IntervalIn] = Field(min_length=1)


@router.post("/{request_id}/items")
def add_items(request_id: str, body: MoreItemsIn, caller: Caller = guard("request.register"),
              svc: AppServices = Depends(services)) -> dict:
    """More camera intervals for a request not yet resolved (e.g. a track found by search),
    held at once; after the resolution a new request is needed (A4.10)."""
    ev = svc.evidence
    with domain_errors():
        row = ev.requests.find(request_id)
    items = [rules.Interval(*iv) for iv in intervals(body.items, svc)]
    with domain_errors(caller, "request.register", _obj({"number": row.number})):
        req = ev.requests.add_items(row.id, caller.principal, items)
    tz = svc.settings.tz
    caller.record("request.register", f"request:{row.number}", detail="intervals added: " + "; ".join(
        f"{i.camera_id} {format_time(i.start_us, tz)} – {format_time(i.end_us, tz)}" for i in items))
    return req


@router.get("/filed")
def filed(request: Request, caller: Caller = guard("request.file"), svc: AppServices = Depends(services)) -> dict:
    """The requests this account filed on line, newest first, with their state and answer."""
    reqs = [r for r in svc.evidence.requests.list(filed_by=caller.account.login)]
    caller.record("request.file", "requests", detail=f"own requests ({len(reqs)}){exchange_trace(request)}")
    return {"requests": [filer_view(r) for r in reqs]}


@router.get("/{request_id}")
def get_request(request_id: str, request: Request, caller: Caller = guard_any("request.view", "request.file"),
                svc: AppServices = Depends(services)) -> dict:
    ev = svc.evidence
    row = _own(caller, svc, request_id)
    if not caller.may("request.view"):
        caller.record("request.file", f"request:{row.number}", detail=f"state {row.state}{exchange_trace(request)}")
        return _as_seen_by(caller, ev.requests.get(row.id))
    return {**ev.requests.get(row.id), "jobs": ev.jobs.for_request(row.id)}


@router.get("/{request_id}/documents/{document_id}", response_class=Response,
            responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}})
def document(request_id: str, document_id: RowId, caller: Caller = guard_any("request.view", "request.file"),
             svc: AppServices = Depends(services)) -> Response:
    """A document filed with the request (the letter), as it came."""
    row = _own(caller, svc, request_id)
    with domain_errors():
        name, media_type, content = svc.evidence.requests.attachment(row.id, document_id)
    caller.record("request.view" if caller.may("request.view") else "request.file", f"request:{row.number}",
                  detail=f"document {name}")
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


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
        else:
            _lockdown(caller, svc, row)
        job = ev.jobs.start(kind, row.id, caller.principal)
    caller.record(action, f"request:{row.number}", detail=f"{kind} job {job['id']} started")
    return job


def _lockdown(caller: Caller, svc: AppServices, row) -> None:
    """A package carries recorded video out: during a lockdown, not of the cameras in its
    scope (varta/lockdown), whatever the route's own rule allows."""
    for it in row.items:
        cam = svc.registry.get(it["camera_id"], include_removed=True)
        if cam is not None:
            caller.lockdown_check("archive.export", cam)


@router.post("/{request_id}/link")
def new_link(request_id: str, caller: Caller = guard("request.transfer"), svc: AppServices = Depends(services)) -> dict:
    """A fresh presigned link when the first one expired."""
    ev = svc.evidence
    with domain_errors():
        row = ev.requests.find(request_id)
        _lockdown(caller, svc, row)
        rid = row.id
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
        _lockdown(caller, svc, row)
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
