"""/api/journal: read, export (CSV/PDF), verify the access journal; record cabinet entries."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.access import wording
from varta.access.journal import heads_dir, load_heads
from varta.access.reports import journal_csv, journal_report_pdf
from varta.clock import format_time
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param

router = APIRouter(prefix="/api/journal", tags=["journal"])

MAX_LINES = 100_000


def _line_out(ln: dict, tz) -> dict:
    return {**ln, "time": format_time(ln["time_us"], tz)}


@router.get("")
def read_journal(
    from_: str | None = Query(None, alias="from"), to: str | None = Query(None),
    account: str | None = None, action: str | None = Query(None, description="e.g. archive.play or archive.*"),
    object: str | None = Query(None, description="e.g. camera:mel-0012"), result: str | None = None,
    access: str | None = Query(None, pattern="^(direct|remote)$",
                               description="direct: the direct-access journal (A4.3)"),
    after_seq: int = 0, limit: int = Query(1000, ge=1, le=MAX_LINES),
    order: str = Query("oldest", pattern="^(oldest|newest)$", description="newest: the newest lines first"),
    format: str = Query("json", pattern="^(json|csv|pdf)$"),
    lang: str | None = Query(None, pattern="^(uk|en)$", description="add each line as a reader sees it in this "
                                                                   "language (`shown`); the stored words stay"),
    caller: Caller = guard("journal.read"), svc: AppServices = Depends(services),
):
    """Journal lines in order, filtered; ``format=csv|pdf`` for a report to keep or print."""
    tz = svc.settings.tz
    t1 = time_param(from_, "from", svc) if from_ else None
    t2 = time_param(to, "to", svc) if to else None
    lines = svc.access.journal.lines(t1, t2, account=account, action=action, obj=object, result=result,
                                     access=access, after_seq=after_seq, limit=limit,
                                     newest_first=order == "newest")
    period = f"{format_time(t1, tz) if t1 else '…'} – {format_time(t2, tz) if t2 else '…'}"
    filters = {k: v for k, v in (("account", account), ("action", action), ("object", object),
                                 ("result", result), ("access", access)) if v}
    caller.record("journal.read", "journal", detail=f"{format} {period} {json.dumps(filters, ensure_ascii=False)}"
                                                    f" ({len(lines)} lines)")
    if format == "csv":
        return Response(journal_csv(lines, tz), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="varta-journal.csv"'})
    if format == "pdf":
        pdf = journal_report_pdf(svc.access.journal, load_heads(heads_dir(svc.settings.home)), lines, tz,
                                 svc.settings.instance_name, period,
                                 json.dumps(filters, ensure_ascii=False) if filters else "",
                                 f"{caller.account.full_name} ({caller.account.login})")
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": 'attachment; filename="varta-journal.pdf"'})
    last = max((ln["seq"] for ln in lines), default=after_seq)
    out = [_line_out(ln, tz) | ({"shown": wording.line(ln, lang)} if lang else {}) for ln in lines]
    return {"lines": out, "next_after_seq": last,
            "actions": {a: names[0 if lang == "uk" else 1] for a, names in wording.ACTIONS.items()}}


@router.get("/verify")
def verify(caller: Caller = guard("journal.read"), svc: AppServices = Depends(services)) -> dict:
    """Walk the whole chain and the published heads; name the first bad line."""
    heads = load_heads(heads_dir(svc.settings.home))
    v = svc.access.journal.verify(heads)
    caller.record("journal.read", "journal", "ok", f"verify: {'intact' if v.ok else 'BROKEN'} ({v.lines} lines)")
    return {"ok": v.ok, "lines": v.lines, "last_seq": v.last_seq, "last_hash": v.last_hash,
            "heads_checked": v.heads_checked, "problems": [str(p) for p in v.problems],
            "first_bad_line": v.problems[0].seq if v.problems else None}


@router.get("/viewers")
def viewers(camera: str, from_: str = Query(..., alias="from"), to: str = Query(...),
            caller: Caller = guard("journal.read"), svc: AppServices = Depends(services)) -> dict:
    """Who viewed one camera, live or recorded, in a period (one row per person and kind)."""
    tz = svc.settings.tz
    t1, t2 = time_param(from_, "from", svc), time_param(to, "to", svc)
    rows = svc.access.journal.viewers(camera, t1, t2)
    caller.record("journal.read", f"camera:{camera}", detail=f"who viewed {format_time(t1, tz)} – {format_time(t2, tz)}")
    return {"camera": camera, "from": format_time(t1, tz), "to": format_time(t2, tz),
            "viewers": [{**r, "first": format_time(r["first_us"], tz), "last": format_time(r["last_us"], tz)}
                        for r in rows]}


class CabinetIn(BaseModel):
    person: str = Field(min_length=3, max_length=300, description="full name of who entered")
    organisation: str = Field(default="", max_length=200)
    purpose: str = Field(min_length=3, max_length=500)
    let_in_by: str = Field(min_length=3, max_length=300, description="who opened the cabinet / let them in")
    entered: str = Field(description="ISO 8601, city time when no offset")
    left: str | None = None


@router.post("/cabinet", status_code=201)
def cabinet_entry(body: CabinetIn, caller: Caller = guard("journal.cabinet"),
                  svc: AppServices = Depends(services)) -> dict:
    """Record a physical access to the server cabinet (A4.3, C2) in the same chain."""
    tz = svc.settings.tz
    t_in = time_param(body.entered, "entered", svc)
    t_out = time_param(body.left, "left", svc) if body.left else None
    if t_out is not None and t_out < t_in:
        raise HTTPException(422, "'left' is before 'entered'")
    detail = json.dumps({"person": body.person, "organisation": body.organisation, "purpose": body.purpose,
                         "let_in_by": body.let_in_by, "entered": format_time(t_in, tz),
                         "left": format_time(t_out, tz) if t_out else None}, ensure_ascii=False)
    return {"recorded": True, "seq": caller.record("journal.cabinet", "cabinet", detail=detail)}
