"""``varta request|hold|incident|evidence``: the evidence registers from the server's shell.

Every command is direct access, checked by the same policy as the web and journaled
(``varta --as LOGIN`` acts as that account). There is no ``request resolve`` here: the
leaders who resolve have remote access only (A4.3), so they resolve in the console or over
the API, in their own signed-in session.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine, parse_cli_time
from varta.evidence import requests as rules
from varta.evidence.holds import Instruction
from varta.evidence.holds_store import HeldInterval
from varta.evidence.records import NotFound, parse_date

request_app = typer.Typer(help="Requests for recordings: register, resolve, prepare, transfer (A4.7–A4.11).",
                          no_args_is_help=True)
hold_app = typer.Typer(help="Holds: footage kept on an official's instruction (A4.6).", no_args_is_help=True)
incident_app = typer.Typer(help="The incident register (R7).", no_args_is_help=True)
evidence_app = typer.Typer(help="The instance's signing key (its fingerprint is what courts check packages against).", no_args_is_help=True)

ITEM_HELP = "CAMERA,FROM,TO in city time, e.g. mel-0012,2026-03-03T14:05,2026-03-03T14:40 (repeat)"


def _ctx(action: str, obj: str = "", session=None):
    """``session``: the command's own cluster session (varta/cluster/session.py) when it runs
    a job itself; its leases are then held like any node's."""
    from varta.cameras.registry import CameraRegistry
    from varta.cli_support import command_node
    from varta.evidence.service import Evidence
    from varta.jobs.runner import JobRunner
    from varta.recording.ffmpeg import find_ffmpeg
    from varta.recording.index import ArchiveIndex

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, action, obj=obj)
    identity, files = command_node(settings, engine)
    files_node = identity.id if identity else None
    runner = JobRunner(engine, session.id if session else (files_node or "cli"), files_node=files_node)
    try:
        ev = Evidence(engine, settings, registry=CameraRegistry(engine), index=ArchiveIndex(engine),
                      ffmpeg=find_ffmpeg(settings.ffmpeg), access=access, runner=runner, files=files,
                      identity=identity)
    except ValueError as exc:
        fail(f"configuration: {exc}")
    return settings, ev, access, who


def _items(specs: list[str], settings, ev) -> list[tuple[str, int, int]]:
    out = []
    for spec in specs:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 3:
            fail(f"--item {spec!r}: expected {ITEM_HELP}")
        cam, a, b = parts
        if ev.registry.get(cam, include_removed=True) is None:
            fail(f"no camera {cam}")
        out.append((cam, parse_cli_time(a, settings, "from"), parse_cli_time(b, settings, "to")))
    return out


def _run(fn, *args, **kw):
    """Domain refusals as clear messages: 3 for a refusal by the order's rules, 2 otherwise."""
    try:
        return fn(*args, **kw)
    except PermissionError as exc:
        fail(str(exc), 3)
    except (NotFound, ValueError) as exc:
        fail(str(exc).strip("'\""))


def _echo(obj, as_json: bool, line) -> None:
    if as_json:
        typer.echo(json.dumps(obj, ensure_ascii=False, indent=2))
    else:
        line(obj)


def _write(path: Path, data: str | bytes) -> None:
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    typer.echo(f"written {path}")


def _export(kind: str, rows: list[dict], csv_out: Path | None, pdf_out: Path | None, title: str, ctx) -> bool:
    """Write a register as CSV and/or PDF (journaled); False when neither was asked for."""
    from varta.evidence import registers

    if not (csv_out or pdf_out):
        return False
    settings, access, who, action = ctx
    if csv_out:
        _write(csv_out, getattr(registers, f"{kind}_csv")(rows))
    if pdf_out:
        _write(pdf_out, getattr(registers, f"{kind}_pdf")(rows, f"{settings.instance_name}: {title}", who.full_name))
    access.record(who, action, kind, detail=f"register exported ({len(rows)} {kind})")
    return True


# --- requests ----------------------------------------------------------------------------
def _request_line(r: dict) -> None:
    due = f" due {r['due_date']} ({r['deadline']})" if r["due_date"] and r["deadline"] else ""
    typer.echo(f"{r['number']}  {r['kind']:<12} {r['state']:<11} {r['incoming_no']} of {r['incoming_date']}  "
               f"{r['requester']}{due}")


@request_app.command("add")
def request_add(
    kind: str = typer.Option(..., "--kind", help=" | ".join(rules.KINDS)),
    incoming_no: str = typer.Option(..., "--incoming-no", help="the incoming document's number"),
    incoming_date: str = typer.Option(..., "--incoming-date", help="its date, YYYY-MM-DD"),
    requester: str = typer.Option(..., "--requester", help="the requesting body"),
    basis: str = typer.Option(..., "--basis", help="legal basis, or the reasons of a third party"),
    item: list[str] = typer.Option(..., "--item", help=ITEM_HELP),
    contact: str = typer.Option("", "--contact"),
    purpose: str = typer.Option("", "--purpose"),
    incident: Optional[int] = typer.Option(None, "--incident", help="the incident it concerns"),
    redact: Optional[str] = typer.Option(None, "--redact", help="third parties: faces | people (blur) [+ plates]"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register an incoming request; its intervals are held at once."""
    settings, ev, access, who = _ctx("request.register")
    items = [rules.Interval(*i) for i in _items(item, settings, ev)]
    redaction = None
    if redact:
        people = redact.split("+")[0]
        redaction = {"people": people, "plates": "plates" in redact}
    req = _run(ev.requests.register, who, kind=kind, incoming_no=incoming_no, incoming_date=incoming_date,
               requester=requester, basis=basis, items=items, contact=contact, purpose=purpose,
               incident_id=incident, redaction=redaction)
    access.record(who, "request.register", f"request:{req['number']}",
                  detail=f"{kind} {incoming_no} of {incoming_date} from {requester}; hold {req['hold_id']}")
    _echo(req, as_json, lambda r: typer.echo(f"registered {r['number']}; its intervals are held (hold {r['hold_id']})"))


@request_app.command("list")
def request_list(state: Optional[str] = typer.Option(None, "--state"), open_only: bool = typer.Option(False, "--open"),
                 csv_out: Optional[Path] = typer.Option(None, "--csv"), pdf_out: Optional[Path] = typer.Option(None, "--pdf"),
                 as_json: bool = typer.Option(False, "--json")) -> None:
    """The request register (newest first); --csv/--pdf FILE to keep or print it."""
    settings, ev, access, who = _ctx("request.view")
    reqs = ev.requests.list(state=state, open_only=open_only)
    if _export("requests", reqs, csv_out, pdf_out, "журнал запитів / request register",
               (settings, access, who, "request.view")):
        return
    _echo(reqs, as_json, lambda rs: [_request_line(r) for r in rs])


@request_app.command("show")
def request_show(request: str = typer.Argument(..., help="id or number (REQ-2026-0001)")) -> None:
    settings, ev, access, who = _ctx("request.view")
    rid = _run(ev.requests.find, request).id
    typer.echo(json.dumps({**ev.requests.get(rid), "jobs": ev.jobs.for_request(rid)}, ensure_ascii=False, indent=2))


def _follow(ev, job: dict) -> dict:
    """Wait for a background job here, printing its progress."""
    last = -1
    while job["status"] in ("queued", "running"):
        pct = int(job["progress"] * 100)
        if pct != last:
            typer.echo(f"  {job['kind']} {pct}%", err=True)
            last = pct
        time.sleep(0.5)
        job = ev.jobs.get(job["id"])
    if job["status"] != "done":
        fail(f"{job['kind']} failed: {job['error']}")
    return job


def _session():
    from varta.cli_support import load_settings as _ls
    from varta.cluster.session import CommandSession

    settings = _ls()
    return CommandSession(open_engine(settings), f"{settings.node_name} (command)")


@request_app.command("prepare")
def request_prepare(request: str = typer.Argument(...)) -> None:
    """Build the signed evidence package (stream copy) and wait for it."""
    with _session() as session:
        settings, ev, access, who = _ctx("request.prepare", session=session)
        rid = _run(ev.requests.find, request).id
        job = _follow(ev, _run(ev.jobs.start, "package", rid, who))
    pkg = job["result"]
    typer.echo(f"package {pkg['name']}: {pkg['files']} files, {pkg['bytes']} bytes\n"
               f"  {settings.evidence_dir / 'packages' / pkg['zip']}\n  SHA-256 {pkg['sha256']}\n"
               f"  signed by key {pkg['fingerprint']}")


@request_app.command("transfer")
def request_transfer(request: str = typer.Argument(...)) -> None:
    """Upload the package to the configured storage and print the time-limited link."""
    with _session() as session:
        settings, ev, access, who = _ctx("request.transfer", session=session)
        rid = _run(ev.requests.find, request).id
        job = _follow(ev, _run(ev.jobs.start, "transfer", rid, who))
    tr = job["result"]
    typer.echo(f"transferred to {tr['location']} (server-side encryption: {tr['sse']})")
    if tr.get("url"):
        typer.echo(f"link (until {tr['expires']}):\n{tr['url']}")


@request_app.command("withdraw")
def request_withdraw(request: str = typer.Argument(...), reason: str = typer.Option(..., "--reason")) -> None:
    settings, ev, access, who = _ctx("request.register")
    rid = _run(ev.requests.find, request).id
    req = _run(ev.requests.withdraw, rid, who, reason)
    access.record(who, "request.register", f"request:{req['number']}", detail=f"withdrawn: {reason[:200]}")
    typer.echo(f"{req['number']} withdrawn; its hold is released")


@request_app.command("deadlines")
def request_deadlines(pdf_out: Optional[Path] = typer.Option(None, "--pdf", help="also write the report as PDF"),
                      as_json: bool = typer.Option(False, "--json")) -> None:
    """Approved requests not yet answered: overdue, due today, due soon (A4.10)."""
    from varta.evidence.registers import deadline_report_pdf

    settings, ev, access, who = _ctx("request.view")
    d = ev.requests.deadlines()
    if pdf_out:
        _write(pdf_out, deadline_report_pdf(d, f"{settings.instance_name}: строки відповідей / request deadlines",
                                            settings.holiday_rules))
    if as_json:
        typer.echo(json.dumps(d, ensure_ascii=False, indent=2))
        return
    for key in ("overdue", "due_today", "due_soon", "on_time"):
        for r in d[key]:
            typer.echo(f"{key:<9} {r['number']} due {r['due_date']}  {r['requester']}")


# --- holds -------------------------------------------------------------------------------
def _instruction(number: str, date: str, author: str, office: str) -> Instruction:
    try:
        return Instruction(number, parse_date(date, "instruction date"), author, office)
    except ValueError as exc:
        fail(str(exc))


@hold_app.command("add")
def hold_add(item: list[str] = typer.Option(..., "--item", help=ITEM_HELP),
             number: str = typer.Option(..., "--instruction-no"), date: str = typer.Option(..., "--instruction-date"),
             author: str = typer.Option(..., "--author", help="the official's full name"),
             office: str = typer.Option(..., "--office", help="mayor | first_deputy | deputy_mayor"),
             reason: str = typer.Option("", "--reason"), incident: Optional[int] = typer.Option(None, "--incident"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Hold footage indefinitely on the instruction of the mayor or a deputy (A4.6)."""
    settings, ev, access, who = _ctx("hold.manage")
    ivs = [HeldInterval(*i) for i in _items(item, settings, ev)]
    hold = _run(ev.holds.place, ivs, who, instruction=_instruction(number, date, author, office), reason=reason,
                incident_id=incident)
    access.record(who, "hold.manage", f"hold:{hold['number']}",
                  detail=f"placed on instruction {number} of {date} by {office} {author}")
    _echo(hold, as_json, lambda h: typer.echo(f"hold {h['number']} (id {h['id']}) placed"))


@hold_app.command("list")
def hold_list(active: Optional[bool] = typer.Option(None, "--active/--released"),
              camera: Optional[str] = typer.Option(None, "--camera"),
              csv_out: Optional[Path] = typer.Option(None, "--csv"), pdf_out: Optional[Path] = typer.Option(None, "--pdf"),
              as_json: bool = typer.Option(False, "--json")) -> None:
    settings, ev, access, who = _ctx("hold.view")
    holds = ev.holds.list(active=active, camera_id=camera)
    if _export("holds", holds, csv_out, pdf_out, "реєстр утримань / hold register", (settings, access, who, "hold.view")):
        return
    _echo(holds, as_json, lambda hs: [typer.echo(
        f"{h['id']:>5} {h['number']}  {'active  ' if h['active'] else 'released'} {h['kind']:<11} "
        + "; ".join(f"{i['camera_id']} {i['from'][:16]} – {i['to'][:16]}" for i in h["intervals"])) for h in hs])


@hold_app.command("release")
def hold_release(hold: int = typer.Argument(..., help="the hold's id"),
                 number: str = typer.Option(..., "--instruction-no", help="the destruction instruction's number"),
                 date: str = typer.Option(..., "--instruction-date"), author: str = typer.Option(..., "--author"),
                 office: str = typer.Option(..., "--office"), note: str = typer.Option("", "--note")) -> None:
    """Release a hold on a destruction instruction (A4.6); ordinary retention applies again."""
    settings, ev, access, who = _ctx("hold.manage")
    h = _run(ev.holds.release, hold, _instruction(number, date, author, office), who, note)
    access.record(who, "hold.manage", f"hold:{h['number']}",
                  detail=f"released on destruction instruction {number} of {date} by {office} {author}")
    typer.echo(f"hold {h['number']} released; its footage is under ordinary retention again")


# --- incidents ---------------------------------------------------------------------------
@incident_app.command("add")
def incident_add(type_: str = typer.Option(..., "--type"), title: str = typer.Option(..., "--title"),
                 start: str = typer.Option(..., "--from"), end: Optional[str] = typer.Option(None, "--to"),
                 place: str = typer.Option("", "--place"), camera: list[str] = typer.Option([], "--camera"),
                 description: str = typer.Option("", "--description"),
                 event: list[int] = typer.Option([], "--event", help="a linked alarm's id (repeat)")) -> None:
    """Register an offence or emergency (R7)."""
    settings, ev, access, who = _ctx("incident.manage")
    fields = {"type": type_, "title": title, "place": place, "cameras": camera, "description": description,
              "start_us": parse_cli_time(start, settings, "from"),
              "end_us": parse_cli_time(end, settings, "to") if end else None}
    inc = _run(ev.incidents.create, who, fields, event)
    access.record(who, "incident.manage", f"incident:{inc['number']}", detail=f"created: {type_} {title[:200]}")
    typer.echo(f"incident {inc['number']} (id {inc['id']}) registered")


@incident_app.command("list")
def incident_list(status: Optional[str] = typer.Option(None, "--status"),
                  csv_out: Optional[Path] = typer.Option(None, "--csv"), pdf_out: Optional[Path] = typer.Option(None, "--pdf"),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    settings, ev, access, who = _ctx("incident.view")
    incs = ev.incidents.list(status=status)
    if _export("incidents", incs, csv_out, pdf_out, "реєстр інцидентів / incident register",
               (settings, access, who, "incident.view")):
        return
    _echo(incs, as_json, lambda xs: [typer.echo(f"{i['id']:>5} {i['number']}  {i['status']:<13} {i['from'][:16]}  "
                                                f"{i['type']}: {i['title']}") for i in xs])


@incident_app.command("show")
def incident_show(incident: int = typer.Argument(...)) -> None:
    settings, ev, access, who = _ctx("incident.view")
    typer.echo(json.dumps(_run(ev.incidents.get, incident), ensure_ascii=False, indent=2))


# --- the key -----------------------------------------------------------------------------
@evidence_app.command("key")
def evidence_key(pem_out: Optional[Path] = typer.Option(None, "--pem", help="write the public key here")) -> None:
    """The fingerprint to publish (on the city's site, in letters to the police and courts)."""
    settings, ev, access, who = _ctx("request.view")
    if pem_out:
        _write(pem_out, ev.key.public_pem())
    typer.echo(f"instance {settings.instance_name}\nsigning key SHA-256 fingerprint: {ev.key.fingerprint()}")
