"""/api/lockdown: the state every operator's console shows as a banner, and the moves: asked
by the mayor or the Responsible Department, confirmed by a second named person (varta/lockdown)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, Field

from varta.lockdown.rules import LockdownError
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/lockdown", tags=["lockdown"])


class MoveIn(BaseModel):
    move: Literal["on", "off"]
    scope: Literal["sensitive", "all"] | None = Field(None, description="for 'on': sensitive or all cameras")
    reason: str = Field(min_length=1, max_length=2000)


class AlertIn(BaseModel):
    alert: bool = Field(description="true: an alert began; false: all clear")
    scope: Literal["sensitive", "all"] = "sensitive"
    detail: str = Field("", max_length=500, description="the feed's words (region, kind of alert)")


@router.get("")
def status(caller: Caller = guard("account.self"), svc: AppServices = Depends(services)) -> dict:
    """Whether a lockdown is in force (every signed-in person sees it); with the requests
    awaiting a second person for those who may confirm them."""
    return svc.lockdown.status(pending=caller.may("lockdown.manage"))


@router.get("/history")
def history(caller: Caller = guard("lockdown.manage"), svc: AppServices = Depends(services)) -> list[dict]:
    from varta.clock import format_time

    tz = svc.settings.tz
    return [{**r, "started": format_time(r["started_us"], tz),
             "ended": format_time(r["ended_us"], tz) if r["ended_us"] else None} for r in svc.lockdown.store.history()]


@router.post("/requests", status_code=201)
def ask(body: MoveIn, caller: Caller = guard("lockdown.manage"), svc: AppServices = Depends(services)) -> dict:
    """Ask for a move; it takes effect when another named person confirms it."""
    try:
        return svc.lockdown.ask(caller.principal, body.move, body.scope, body.reason)
    except LockdownError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/requests/{rid}/confirm")
def confirm(rid: int = Path(ge=1, le=2**62), caller: Caller = guard("lockdown.manage"),
            svc: AppServices = Depends(services)) -> dict:
    try:
        out = svc.lockdown.confirm(caller.principal, rid)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except LockdownError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"request": out, "lockdown": svc.lockdown.status()}


@router.post("/requests/{rid}/withdraw")
def withdraw(rid: int = Path(ge=1, le=2**62), caller: Caller = guard("lockdown.manage"),
             svc: AppServices = Depends(services)) -> dict:
    """The asker withdraws the request; anyone else who may confirm refuses it."""
    try:
        return svc.lockdown.withdraw(caller.principal, rid)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except LockdownError as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/alert")
def alert(body: AlertIn, caller: Caller = guard("lockdown.alert"), svc: AppServices = Depends(services)) -> dict:
    """An alert feed (e.g. an air-raid alert webhook, with a token scoped lockdown.alert):
    an alert locks down at once (no second person: it is the alert itself); the all-clear
    ends the lockdown the feed started, never one a person started. Tokens only: a person's
    session moves a lockdown through the two-person rule, never through here."""
    try:
        return svc.lockdown.alert(caller.principal, body.alert, body.scope, body.detail.strip())
    except LockdownError as exc:
        raise HTTPException(409, str(exc)) from None
