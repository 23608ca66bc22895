"""/api/subscriptions: outside systems told of what concerns them, by signed webhook
(docs/police-exchange.md; rules and outbox in varta/exchange)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Path, Depends, Header, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from varta.clock import now_us
from varta.exchange.dispatcher import rights_check
from pydantic import BaseModel, Field

from varta.exchange.rules import SSE, ExchangeError
from varta.exchange.store import NotFound
from varta.web.api_requests import exchange_trace
from varta.web.auth import Caller, guard_any, public
from varta.web.deps import AppServices, services

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(prefix="/api/subscriptions", tags=["exchange"])
profile_router = APIRouter(tags=["exchange"])

# The exchange profile (docs/police-exchange.md): exactly these operations are published,
# e.g. as a Trembita (X-Road) REST service.
PROFILE = {("/api/requests", "post"), ("/api/requests/filed", "get"), ("/api/requests/{request_id}", "get"),
           ("/api/requests/{request_id}/documents/{document_id}", "get"), ("/api/subscriptions", "post"),
           ("/api/subscriptions", "get"), ("/api/subscriptions/{sid}", "get"), ("/api/subscriptions/{sid}", "delete"),
           ("/api/subscriptions/{sid}/deliveries", "get"), ("/api/subscriptions/{sid}/stream", "get"),
           ("/api/evidence/key", "get")}
PROFILE_VERSION = "1.0"


@profile_router.get("/api/exchange/openapi.json",
                    dependencies=[public("the exchange profile's description: no data in it")])
def exchange_openapi(request: Request) -> dict:
    """OpenAPI 3 of the exchange with the police (profile version 1.0): the operations an
    outside system uses, their schemas, nothing else."""
    full = request.app.openapi()
    paths = {p: {m: op for m, op in ops.items() if (p, m) in PROFILE} for p, ops in full["paths"].items()}
    paths = {p: ops for p, ops in paths.items() if ops}
    return {**full, "info": {**full["info"], "title": "Varta: exchange with the police (R11, MVS-3)",
                             "version": PROFILE_VERSION,
                             "description": "docs/police-exchange.md: filing requests, following them, "
                                            "alarm and request webhooks"},
            "paths": paths, "security": [{"bearer": []}],
            "components": {**full.get("components", {}), "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (varta token create)"}}}}

# Who may subscribe to what: a request's steps go to its filer, alarms to who may see them.
KIND_ACTION = {"requests": "request.file", "alarms": "event.view"}


class SubscriptionIn(BaseModel):
    kind: str = Field(examples=["requests"], description="requests: the steps of the requests this account filed; "
                                                         "alarms: the alarms of the cameras it may watch")
    url: str = Field(examples=["https://dispatch.police.example/varta/hook"])
    filters: dict = Field(default={}, description="requests: {events: [...]}; alarms: {groups, classes, rules, "
                                                  "severities}: lists, empty = all")


def _mine(caller: Caller) -> str | None:
    """Whose subscriptions this caller sees: all for the administrator, else its own."""
    return None if caller.may("token.manage") else caller.account.login


def _get(svc: AppServices, caller: Caller, sid: int) -> dict:
    try:
        return svc.evidence.exchange.get(sid, _mine(caller))
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("", status_code=201)
def subscribe(body: SubscriptionIn, request: Request, caller: Caller = guard_any("request.file", "event.view"),
              svc: AppServices = Depends(services)) -> dict:
    """A receiver for this account's events. The answer holds the signing secret, once: it
    is derived from the city's key and never stored (docs/police-exchange.md, *Signatures*)."""
    action = KIND_ACTION.get(body.kind)
    if action is None:
        raise HTTPException(422, f"kind: one of {', '.join(KIND_ACTION)}")
    caller.require(action)
    try:
        sub, secret = svc.evidence.exchange.subscribe(caller.account.login, body.kind, body.url, body.filters,
                                                      caller.account.login)
    except ExchangeError as exc:
        raise HTTPException(422, str(exc)) from None
    caller.record(action, f"subscription:{sub['id']}", detail=f"subscribed {body.kind} → {sub['url']} "
                  f"filters {sub['filters']}{exchange_trace(request)}")
    return {"subscription": sub, "secret": secret}


def _record(caller: Caller, obj: str, detail: str, request: Request) -> None:
    """Every exchange call is journaled with the token's (or session's) owner."""
    action = "token.manage" if caller.may("token.manage") else (
        "request.file" if caller.may("request.file") else "event.view")
    caller.record(action, obj, detail=detail + exchange_trace(request))


@router.get("")
def list_subscriptions(request: Request, caller: Caller = guard_any("request.file", "event.view", "token.manage"),
                       svc: AppServices = Depends(services)) -> dict:
    subs = svc.evidence.exchange.list(_mine(caller))
    _record(caller, "subscriptions", f"list ({len(subs)})", request)
    return {"subscriptions": subs}


@router.get("/{sid}")
def get_subscription(sid: RowId, request: Request,
                     caller: Caller = guard_any("request.file", "event.view", "token.manage"),
                     svc: AppServices = Depends(services)) -> dict:
    sub = _get(svc, caller, sid)
    _record(caller, f"subscription:{sid}", "read", request)
    return sub


@router.delete("/{sid}")
def cancel(sid: RowId, request: Request, caller: Caller = guard_any("request.file", "event.view", "token.manage"),
           svc: AppServices = Depends(services)) -> dict:
    """Stop the deliveries (the log stays)."""
    _get(svc, caller, sid)
    sub = svc.evidence.exchange.cancel(sid)
    caller.record("token.manage" if _mine(caller) is None else KIND_ACTION[sub["kind"]], f"subscription:{sid}",
                  detail=f"cancelled{exchange_trace(request)}")
    return sub


@router.get("/{sid}/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
def stream(sid: RowId, request: Request, last_event_id: str | None = Header(None, description="resume after this event"),
           caller: Caller = guard_any("request.file", "event.view"), svc: AppServices = Depends(services)):
    """Server-Sent Events: the deliveries of a subscription made with ``"url": "sse:"``, in
    order, each with its delivery id; reconnect with ``Last-Event-ID`` to resume after the
    last one read (at least once, like the webhooks)."""
    ex = svc.evidence.exchange
    _get(svc, caller, sid)
    sub = ex.row(sid)
    if sub.url != SSE:
        raise HTTPException(409, "this subscription is delivered by webhook; subscribe with \"url\": \"sse:\" to read it here")
    try:
        last = int(last_event_id or 0)
    except ValueError:
        raise HTTPException(422, "Last-Event-ID: a delivery id (a number)") from None
    allowed = rights_check(svc.access)
    from varta.lockdown.service import withheld_picture, without_picture

    withhold = withheld_picture(svc.engine)
    caller.record(KIND_ACTION[sub.kind], f"subscription:{sid}", detail=f"stream opened after {last}"
                  f"{exchange_trace(request)}")

    async def events():
        nonlocal last
        yield ": connected\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            rows = await run_in_threadpool(ex.after, sid, last)
            for d in rows:
                why = await run_in_threadpool(allowed, sub, d.payload)
                if why:
                    await run_in_threadpool(ex.mark, d.id, state="withheld", last_error=f"not sent: {why}")
                else:
                    held = await run_in_threadpool(withhold, d.payload)  # a lockdown: no picture
                    payload = without_picture(d.payload, held) if held else d.payload
                    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
                    yield f"id: {d.id}\nevent: {d.event_type}\ndata: {data}\n\n"
                    if d.state == "pending":
                        await run_in_threadpool(ex.mark, d.id, state="delivered", attempts=d.attempts + 1,
                                                delivered_us=now_us())
                last = d.id
            if rows:
                quiet = 0.0
                continue
            await asyncio.sleep(0.5)
            quiet += 0.5
            if quiet >= 15:
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{sid}/deliveries")
def deliveries(sid: RowId, request: Request, caller: Caller = guard_any("request.file", "event.view", "token.manage"),
               svc: AppServices = Depends(services)) -> dict:
    """The delivery log, newest first: each event, its attempts, the receiver's last answer."""
    sub = _get(svc, caller, sid)
    _record(caller, f"subscription:{sid}", "delivery log read", request)
    return {"subscription": sub, "deliveries": svc.evidence.exchange.deliveries(sid)}
