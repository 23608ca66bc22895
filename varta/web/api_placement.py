"""/api/placement: where the next cameras should go (issue 17; MVS-3, MVS-4). Incident places
in, hot spots and proposals out; a proposal goes to the police unit for agreement. Thin:
guard → varta.placement → journal. Placement reads incident places, never video."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.access.policy import POLICE
from varta.placement import proposals as pr
from varta.placement import service
from varta.placement.analysis import AnalysisError
from varta.placement.inputs import InputError, parse_incidents, parse_sites, parse_zones
from varta.placement.report import report_pdf
from varta.placement.store import SOURCES, PlacementStore
from varta.web.auth import Caller, guard, guard_any
from varta.web.deps import AppServices, services, time_param

router = APIRouter(prefix="/api/placement", tags=["placement"])
MAX_UPLOAD = 64 * 1024 * 1024


class AnalyzeIn(BaseModel):
    from_: str = Field(alias="from", examples=["2026-01-01"])
    to: str = Field(examples=["2026-12-01"])
    k: int = Field(10, ge=1, le=1000, description="how many sites, those already chosen included")
    radius_m: float = Field(50.0, ge=5, le=2000, description="what a new camera covers, metres around it")
    min_spacing_m: float = Field(0.0, ge=0, le=10_000)
    categories: list[str] = Field([], description="incident categories (default: all)")
    sources: list[Literal["imported", "register", "alarms"]] = Field(list(SOURCES))
    chosen: list[int] = Field([], description="candidate site ids already decided")
    use_zones: bool = Field(True, description="keep sites out of the excluded zones")
    cell_m: float | None = Field(None, ge=10, le=20_000)
    split: str | None = Field(None, description="temporal check: fit before, score from (default: the last third)")
    time_limit_s: float = Field(20.0, ge=1, le=300)

    model_config = {"populate_by_name": True}


class ProposalIn(AnalyzeIn):
    title: str = Field(min_length=1, max_length=200)


class SendIn(BaseModel):
    to: str = Field(min_length=1, max_length=64, description="the police unit's account")
    text: str = Field("", max_length=4000)


class AnswerIn(BaseModel):
    verdict: Literal["agree", "comment"]
    text: str = Field("", max_length=4000)


class ApproveIn(BaseModel):
    text: str = Field("", max_length=4000)


def _params(body: AnalyzeIn, svc: AppServices) -> service.Params:
    return service.Params(
        time_param(body.from_, "from", svc), time_param(body.to, "to", svc), k=body.k, radius_m=body.radius_m,
        min_spacing_m=body.min_spacing_m, categories=body.categories, sources=list(body.sources), chosen=body.chosen,
        use_zones=body.use_zones, cell_m=body.cell_m,
        split_us=time_param(body.split, "split", svc) if body.split else None, time_limit_s=body.time_limit_s)


def _analyze(caller: Caller, svc: AppServices, body: AnalyzeIn) -> dict:
    try:
        result = service.run(svc.engine, svc.registry, svc.settings.tz, _params(body, svc))
    except AnalysisError as exc:
        caller.record(caller_action(caller), "placement", "failed", f"analysis refused: {exc}")
        raise HTTPException(422, str(exc)) from None
    caller.record(caller_action(caller), "placement", detail=describe(body, result))
    return result


def caller_action(caller: Caller) -> str:
    return "placement.manage" if caller.may("placement.manage") else "placement.view"


def describe(body: AnalyzeIn, result: dict) -> str:
    period = result["period"]
    return (f"analysed {period['from'][:16]} – {period['to'][:16]}: {result['incidents']} incidents, k {body.k}, radius "
            f"{body.radius_m:g} m: covered {100 * result['coverage_now']['share']:.1f}% → "
            f"{100 * result['coverage_proposed']['share']:.1f}%")


async def _import(request: Request, caller: Caller, svc: AppServices, what: str, replace: bool,
                  name: str) -> dict:
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise HTTPException(413, f"at most {MAX_UPLOAD // 2**20} MB in one file")
    text = body.decode("utf-8", errors="replace")
    store = PlacementStore(svc.engine)
    try:
        if what == "incidents":
            rows = parse_incidents(text, svc.settings.tz)
            n = store.import_incidents(rows, name, caller.principal.login, replace=replace)
        elif what == "sites":
            n = store.import_sites(parse_sites(text), replace=replace)
        else:
            n = store.import_zones(parse_zones(text), replace=replace)
    except InputError as exc:
        caller.record("placement.manage", "placement", "failed", f"import refused: {name}: {exc}")
        raise HTTPException(422, f"{exc}; nothing was imported") from None
    caller.record("placement.manage", "placement", detail=f"imported {n} {what} from {name}")
    return {"imported": n, "replaced": replace} | PlacementStore(svc.engine).counts()


@router.get("/data")
def data(caller: Caller = guard("placement.view"), svc: AppServices = Depends(services)) -> dict:
    """What the analysis has to work on: imported incidents (by category, first and last),
    candidate sites and excluded zones."""
    c = PlacementStore(svc.engine).counts()
    from varta.clock import format_time

    tz = svc.settings.tz
    return c | {"first": format_time(c["first_us"], tz) if c["first_us"] else None,
                "last": format_time(c["last_us"], tz) if c["last_us"] else None}


@router.put("/incidents")
async def import_incidents(request: Request, replace: bool = Query(False), name: str = Query("upload", max_length=100),
                           caller: Caller = guard("placement.manage"), svc: AppServices = Depends(services)) -> dict:
    """Incident records (CSV lat,lon[,time,category,severity,id] or GeoJSON points), all or
    none: a bad line is named and nothing is imported."""
    return await _import(request, caller, svc, "incidents", replace, name)


@router.put("/sites")
async def import_sites(request: Request, replace: bool = Query(True), name: str = Query("upload", max_length=100),
                       caller: Caller = guard("placement.manage"), svc: AppServices = Depends(services)) -> dict:
    """Candidate sites (CSV lat,lon[,name,kind,id] or GeoJSON points): poles, crossings, stops."""
    return await _import(request, caller, svc, "sites", replace, name)


@router.put("/zones")
async def import_zones(request: Request, replace: bool = Query(True), name: str = Query("upload", max_length=100),
                       caller: Caller = guard("placement.manage"), svc: AppServices = Depends(services)) -> dict:
    """Excluded zones (GeoJSON polygons): no site is proposed inside them."""
    return await _import(request, caller, svc, "zones", replace, name)


@router.get("/sites")
def list_sites(caller: Caller = guard("placement.view"), svc: AppServices = Depends(services)) -> dict:
    return {"sites": [{"id": s.id, "lat": s.lat, "lon": s.lon, "name": s.name, "kind": s.kind}
                      for s in PlacementStore(svc.engine).sites()],
            "zones": PlacementStore(svc.engine).zones()}


@router.post("/analyze")
def analyze(body: AnalyzeIn, caller: Caller = guard("placement.view"), svc: AppServices = Depends(services)) -> dict:
    """The analysis, not stored: coverage today, hot spots, the proposal (MCLP) and its
    baselines, the temporal check, and the map's layers."""
    return _analyze(caller, svc, body)


@router.get("/police-units")
def police_units(caller: Caller = guard("placement.manage"), svc: AppServices = Depends(services)) -> dict:
    """The police accounts a proposal can be sent to (their names, nothing else)."""
    return {"units": [{"login": a.login, "full_name": a.full_name, "organisation": a.organisation}
                      for a in svc.access.accounts.list() if a.role == POLICE and a.active]}


@router.post("/proposals", status_code=201)
def create_proposal(body: ProposalIn, caller: Caller = guard("placement.manage"),
                    svc: AppServices = Depends(services)) -> dict:
    """Run the analysis and keep it as a draft proposal (the figures are the server's own)."""
    result = _analyze(caller, svc, body)
    params = body.model_dump(by_alias=True, exclude={"title"}) | {"summary": service.summary(result)}
    pid = PlacementStore(svc.engine).create(body.title.strip(), params, result, caller.principal.login)
    caller.record("placement.manage", f"proposal:{pid}", detail=f"proposal drafted: {body.title.strip()}")
    return _out(PlacementStore(svc.engine).get(pid), svc)


def _visible(caller: Caller, pid: int, svc: AppServices, with_result: bool = True) -> dict:
    p = PlacementStore(svc.engine).get(pid, with_result)
    if p is not None and caller.principal.role == POLICE and not pr.visible_to(p["sent_to"], caller.principal.login,
                                                                                POLICE):
        caller.record("placement.review", f"proposal:{pid}", "refused", "proposal not sent to this unit")
        p = None
    if p is None:
        raise HTTPException(404, f"no proposal {pid}")
    return p


def _out(p: dict, svc: AppServices) -> dict:
    from varta.clock import format_time

    tz = svc.settings.tz
    out = {k: v for k, v in p.items() if k not in ("created_us", "updated_us")}
    out["created"] = format_time(p["created_us"], tz)
    out["updated"] = format_time(p["updated_us"], tz)
    out["notes"] = [{"account": n["account"], "full_name": n["full_name"], "step": n["step"], "text": n["text"],
                     "time": format_time(n["time_us"], tz)} for n in p.get("notes", [])]
    return out


@router.get("/proposals")
def list_proposals(caller: Caller = guard_any("placement.view", "placement.review"),
                   svc: AppServices = Depends(services)) -> dict:
    """Proposals, newest first; the police unit sees those sent to it."""
    police = caller.principal.role == POLICE
    rows = PlacementStore(svc.engine).list(sent_to=caller.principal.login if police else None)
    return {"proposals": [_out(r, svc) for r in rows]}


@router.get("/proposals/{pid}")
def get_proposal(pid: int = Path(ge=1, le=2**62), caller: Caller = guard_any("placement.view", "placement.review"),
                 svc: AppServices = Depends(services)) -> dict:
    p = _visible(caller, pid, svc)
    caller.record(_read_action(caller), f"proposal:{pid}", detail="proposal read")
    return _out(p, svc)


def _read_action(caller: Caller) -> str:
    return "placement.review" if caller.principal.role == POLICE else "placement.view"


@router.get("/proposals/{pid}/report.pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def proposal_report(pid: int = Path(ge=1, le=2**62), lang: Literal["uk", "en"] = "uk",
                    caller: Caller = guard_any("placement.view", "placement.review"),
                    svc: AppServices = Depends(services)):
    """The report for the council: maps, tables, the method in plain words."""
    p = _visible(caller, pid, svc)
    status = {"uk": {"draft": "чернетка", "sent": "надіслано поліції", "agreed": "погоджено поліцією",
                     "commented": "є зауваження поліції", "approved": "затверджено"},
              "en": {}}[lang].get(p["status"], p["status"])
    pdf = report_pdf(p["result"], p["title"], lang, status)
    caller.record(_read_action(caller), f"proposal:{pid}", detail="proposal read as pdf")
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="placement-{pid}.pdf"'})


@router.get("/proposals/{pid}/export.{fmt}", response_class=Response)
def proposal_export(fmt: Literal["geojson", "csv"], pid: int = Path(ge=1, le=2**62),
                    caller: Caller = guard_any("placement.view", "placement.review"),
                    svc: AppServices = Depends(services)):
    """The proposed sites (and hot spots, fields of view) as GeoJSON, or the sites as CSV."""
    p = _visible(caller, pid, svc)
    caller.record(_read_action(caller), f"proposal:{pid}", detail=f"proposal read as {fmt}")
    if fmt == "geojson":
        return Response(service.geojson(p["result"], p["title"]), media_type="application/geo+json",
                        headers={"Content-Disposition": f'attachment; filename="placement-{pid}.geojson"'})
    return Response(service.sites_csv(p["result"]), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="placement-{pid}.csv"'})


def _step(caller: Caller, svc: AppServices, pid: int, step: str, action: str, text: str, to: str | None = None):
    p = _visible(caller, pid, svc, with_result=False)
    try:
        new = pr.next_status(p["status"], step, caller.principal.role)
    except pr.ProposalError as exc:
        caller.record(action, f"proposal:{pid}", "refused", str(exc))
        raise HTTPException(409, str(exc)) from None
    ok = PlacementStore(svc.engine).step(pid, p["status"], new, caller.principal.login, caller.account.full_name,
                                         step, text, sent_to=to)
    if not ok:
        raise HTTPException(409, "the proposal changed meanwhile: reload it")
    caller.record(action, f"proposal:{pid}",
                  detail=f"proposal {pr.NOTE_OF[step]}{' to ' + to if to else ''}{': ' + text if text else ''}")
    return _out(PlacementStore(svc.engine).get(pid, with_result=False), svc)


@router.post("/proposals/{pid}/send")
def send_proposal(body: SendIn, pid: int = Path(ge=1, le=2**62), caller: Caller = guard("placement.manage"),
                  svc: AppServices = Depends(services)) -> dict:
    """To the territorial police unit for agreement (MVS-4): its account then reads it."""
    unit = svc.access.accounts.get(body.to)
    if unit is None or unit.role != POLICE or not unit.active:
        raise HTTPException(422, f"{body.to} is not an active police account")
    return _step(caller, svc, pid, "send", "placement.manage", body.text.strip(), to=unit.login)


@router.post("/proposals/{pid}/answer")
def answer_proposal(body: AnswerIn, pid: int = Path(ge=1, le=2**62), caller: Caller = guard("placement.review"),
                    svc: AppServices = Depends(services)) -> dict:
    """The police unit agrees or comments (its own proposals only)."""
    if body.verdict == "comment" and not body.text.strip():
        raise HTTPException(422, "a comment needs its text")
    return _step(caller, svc, pid, body.verdict, "placement.review", body.text.strip())


@router.post("/proposals/{pid}/approve")
def approve_proposal(body: ApproveIn, pid: int = Path(ge=1, le=2**62), caller: Caller = guard("placement.approve"),
                     svc: AppServices = Depends(services)) -> dict:
    """Approved once the police agreed."""
    return _step(caller, svc, pid, "approve", "placement.approve", body.text.strip())
