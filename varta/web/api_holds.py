"""/api/holds: footage kept indefinitely on an official's instruction (A4.6)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Depends, Query
from pydantic import BaseModel, Field

from varta.clock import format_time, now_us
from varta.evidence.holds import Instruction
from varta.evidence.holds_store import HeldInterval
from varta.evidence.records import parse_date
from varta.evidence.registers import holds_csv, holds_pdf
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param
from varta.web.evidence_http import IntervalIn, domain_errors, intervals, register_file

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(prefix="/api/holds", tags=["evidence"])


class InstructionIn(BaseModel):
    number: str = Field(examples=["127-р"])
    date: str = Field(examples=["2026-03-04"])
    author: str = Field(examples=["Петренко Іван Васильович"])
    office: str = Field(examples=["mayor"], description="mayor | first_deputy | deputy_mayor")

    def parsed(self) -> Instruction:
        return Instruction(self.number.strip(), parse_date(self.date, "instruction date"), self.author.strip(),
                           self.office)


class HoldIn(BaseModel):
    intervals: list[IntervalIn] = Field(min_length=1)
    instruction: InstructionIn
    reason: str = ""
    incident_id: int | None = None


class ReleaseIn(BaseModel):
    instruction: InstructionIn = Field(description="the destruction instruction (A4.6)")
    note: str = ""


@router.get("")
def list_holds(active: bool | None = None, camera: str | None = None, kind: str | None = None,
               from_: str | None = Query(None, alias="from"), to: str | None = None,
               format: str = Query("json", pattern="^(json|csv|pdf)$"),
               caller: Caller = guard("hold.view"), svc: AppServices = Depends(services)):
    """The hold register, newest first; ``from``/``to`` select holds overlapping that time."""
    t1 = time_param(from_, "from", svc) if from_ else None
    t2 = time_param(to, "to", svc) if to else None
    holds = svc.evidence.holds.list(active=active, camera_id=camera, kind=kind, since_us=t1, until_us=t2)
    if format == "json":
        return {"holds": holds}
    caller.record("hold.view", "holds", detail=f"register as {format} ({len(holds)} holds)")
    subtitle = f"{caller.account.full_name}, {format_time(now_us(), svc.settings.tz)}"
    return register_file(format, "holds", lambda: holds_csv(holds), lambda: holds_pdf(
        holds, f"{svc.settings.instance_name}: реєстр утримань записів / hold register", subtitle))


@router.post("", status_code=201)
def place(body: HoldIn, caller: Caller = guard("hold.manage"), svc: AppServices = Depends(services)) -> dict:
    ivs = [HeldInterval(*iv) for iv in intervals(body.intervals, svc)]
    with domain_errors():
        hold = svc.evidence.holds.place(ivs, caller.principal, instruction=body.instruction.parsed(),
                                        reason=body.reason, incident_id=body.incident_id)
    ins = hold["instruction"]
    caller.record("hold.manage", f"hold:{hold['number']}",
                  detail=f"placed on instruction {ins['number']} of {ins['date']} by {ins['office']} {ins['author']}: "
                  + "; ".join(f"{i['camera_id']} {i['from']} – {i['to']}" for i in hold["intervals"]))
    return hold


@router.get("/{hold_id}")
def get_hold(hold_id: RowId, caller: Caller = guard("hold.view"), svc: AppServices = Depends(services)) -> dict:
    with domain_errors():
        return svc.evidence.holds.get(hold_id)


@router.post("/{hold_id}/release")
def release(hold_id: RowId, body: ReleaseIn, caller: Caller = guard("hold.manage"),
            svc: AppServices = Depends(services)) -> dict:
    """A4.6: a destruction instruction returns the footage to ordinary retention."""
    with domain_errors():
        hold = svc.evidence.holds.release(hold_id, body.instruction.parsed(), caller.principal, body.note)
    de = hold["destruction"]
    caller.record("hold.manage", f"hold:{hold['number']}",
                  detail=f"released on destruction instruction {de['number']} of {de['date']} by {de['office']} "
                         f"{de['author']}")
    return hold
