"""`varta onvif …` (discover, add, check, inventory) and `varta ptz CAMERA …` from the
server's shell: the same work as /api/onvif and /api/cameras/{id}/ptz, journaled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine

onvif_app = typer.Typer(help="ONVIF cameras: discover, add from profiles, check, inventory (issue 18)",
                        no_args_is_help=True)
ptz_app = typer.Typer(help="turn, zoom and preset a PTZ camera: varta ptz CAMERA presets|goto|set-preset|"
                           "remove-preset|move|stop|status", no_args_is_help=True)


@ptz_app.callback()
def ptz_camera(ctx: typer.Context, camera: str = typer.Argument(..., help="the camera's id")) -> None:
    ctx.obj = camera


def _service(settings, engine):
    from varta.cameras.registry import CameraRegistry
    from varta.onvif.service import Onvif

    return Onvif(engine, CameraRegistry(engine), settings)


@onvif_app.command("discover")
def discover(
    ranges: list[str] = typer.Option([], "--range", help="CIDR for directed probes (repeat)"),
    no_multicast: bool = typer.Option(False, "--no-multicast", help="directed probes only"),
    user: str = typer.Option("", "--user", help="to ask each device what it is"),
    password: str = typer.Option("", "--password", envvar="VARTA_ONVIF_PASSWORD"),
    timeout: float = typer.Option(3.0, "--timeout"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every ONVIF device that answers WS-Discovery, with make, model, firmware, serial."""
    from varta.onvif.model import OnvifError

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj="cameras")
    try:
        found = _service(settings, engine).discover(ranges, user, password, not no_multicast, timeout)
    except OnvifError as exc:
        fail(str(exc))
    access.record(who, "camera.manage", "cameras", detail=f"ONVIF discovery: {len(found)} devices (ranges {ranges or '—'})")
    if as_json:
        typer.echo(json.dumps([{k: f.get(k) for k in ("address", "xaddr", "manufacturer", "model", "firmware", "serial",
                                                      "registered", "name", "error")} for f in found],
                              ensure_ascii=False))
        return
    for f in found:
        typer.echo(f"{f['address']:<16} {f['xaddr']:<48} {f['manufacturer']} {f['model']} {f['firmware']} "
                   f"{f['serial']}  {('= ' + f['registered']) if f['registered'] else 'new'}"
                   + (f"  ({f['error']})" if f["error"] else ""))
    if not found:
        typer.echo("no ONVIF device answered")


@onvif_app.command("add")
def add(
    xaddr: str,
    camera_id: str = typer.Option(..., "--id"),
    user: str = typer.Option("", "--user"),
    password: str = typer.Option("", "--password", envvar="VARTA_ONVIF_PASSWORD"),
    main_profile: Optional[str] = typer.Option(None, "--main-profile"),
    sub_profile: Optional[str] = typer.Option(None, "--sub-profile"),
    name: str = typer.Option("", "--name"),
    group: str = typer.Option("", "--group"),
    address: str = typer.Option("", "--address"),
    kind: str = typer.Option("other", "--kind"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="mode name or JSON timetable"),
    retention_days: Optional[int] = typer.Option(None, "--retention-days", help="at least 10 (A4.6)"),
) -> None:
    """Add a camera from its ONVIF profiles (main: the largest picture, sub: the smallest)."""
    from varta.cameras.model import CameraError
    from varta.cameras.schedule import Schedule, ScheduleError
    from varta.onvif.model import OnvifError

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{camera_id}")
    try:
        extra = {"schedule": Schedule.from_json(json.loads(schedule) if schedule.startswith("{") else schedule)} \
            if schedule else {}
        if retention_days:
            extra["retention_days"] = retention_days
        got = _service(settings, engine).add(xaddr, camera_id, user, password, main_profile, sub_profile, name=name,
                                             group_name=group, address=address, kind=kind, **extra)
    except (ScheduleError, json.JSONDecodeError) as exc:
        fail(str(exc))
    except (OnvifError, CameraError) as exc:
        access.record(who, "camera.manage", f"camera:{camera_id}", "failed", f"ONVIF add refused: {exc}")
        fail(f"{exc}; nothing was added")
    access.record(who, "camera.manage", f"camera:{camera_id}", detail=(
        f"added by ONVIF from {xaddr}: {got['manufacturer']} {got['model']} firmware {got['firmware']}, "
        f"main {got['main']['token']}" + (f", sub {got['sub']['token']}" if got["sub"] else "")))
    m, s = got["main"], got["sub"]
    typer.echo(f"added {camera_id}: {got['manufacturer']} {got['model']} (firmware {got['firmware']}, serial "
               f"{got['serial']}); main {m['token']} {m['width']}x{m['height']} {m['codec']}"
               + (f"; sub {s['token']} {s['width']}x{s['height']}" if s else "") + ("; PTZ" if got["ptz"] else "")
               + ("; camera events" if got["events"] else ""))


@onvif_app.command("check")
def check(camera: Optional[str] = typer.Argument(None), as_json: bool = typer.Option(False, "--json")) -> None:
    """Check the devices now: reachable, clock, streams as registered, firmware."""
    from varta.onvif.model import OnvifError

    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "system.view", obj="cameras")
    o = _service(settings, engine)
    ids = [camera] if camera else [d["camera_id"] for d in o.store.all()]
    out = []
    for cid in ids:
        try:
            out.append(o.check(cid))
        except OnvifError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    for r in out:
        typer.echo(f"{r['camera']:<16} {'ok' if r['ok'] else 'PROBLEM'}  " + "; ".join(r["problems"]))


@onvif_app.command("inventory")
def inventory(csv_out: Optional[Path] = typer.Option(None, "--csv"), pdf_out: Optional[Path] = typer.Option(None, "--pdf"),
              lang: str = typer.Option("uk", "--lang"), as_json: bool = typer.Option(False, "--json")) -> None:
    """Make, model, firmware, serial, clock offset and state of every ONVIF camera."""
    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "system.view", obj="cameras")
    o = _service(settings, engine)
    rows = o.inventory()
    if csv_out:
        csv_out.write_text(o.inventory_csv(rows), encoding="utf-8")
        access.record(who, "system.view", "cameras", detail=f"csv ONVIF inventory ({len(rows)} lines)")
    if pdf_out:
        pdf_out.write_bytes(o.inventory_pdf(lang, rows))
        access.record(who, "system.view", "cameras", detail=f"pdf ONVIF inventory ({len(rows)} lines)")
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
    elif not csv_out and not pdf_out:
        for r in rows:
            typer.echo(f"{r['camera']:<16} {r['manufacturer']} {r['model']} {r['firmware']} {r['serial']} "
                       f"clock {r['clock_offset_s']} s  {r['state']}")


def _ptz(camera: str, op: str, detail: str, lock: bool = True, **kw):
    from varta.onvif.model import OnvifError

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "ptz.control", camera_id=camera)
    o = _service(settings, engine)
    try:
        if lock:
            o.control(camera, who.login, who.full_name, who.role)
        if "preset" in kw and op in ("goto", "remove_preset"):
            token = o.preset_token(camera, kw["preset"])
            if token is None:
                fail(f"no preset {kw['preset']!r} on {camera}")
            kw["preset"] = token
        got = o.ptz(camera, op, **kw)
    except OnvifError as exc:
        access.record(who, "ptz.control", f"camera:{camera}", "failed", f"ptz {detail}: {exc}")
        fail(str(exc))
    if lock:
        access.record(who, "ptz.control", f"camera:{camera}", detail=f"ptz {detail}")
    return got


@ptz_app.command("presets")
def presets(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    got = _ptz(ctx.obj, "presets", "presets", lock=False)
    if as_json:
        typer.echo(json.dumps(got, ensure_ascii=False))
        return
    for p in got:
        typer.echo(f"{p['token']:<24} {p['name']:<24} pan {p['pan']} tilt {p['tilt']} zoom {p['zoom']}")


@ptz_app.command("goto")
def goto(ctx: typer.Context, preset: str) -> None:
    _ptz(ctx.obj, "goto", f"goto {preset}", preset=preset)


@ptz_app.command("set-preset")
def set_preset(ctx: typer.Context, name: str) -> None:
    typer.echo(_ptz(ctx.obj, "set_preset", f"set-preset {name}", name=name))


@ptz_app.command("remove-preset")
def remove_preset(ctx: typer.Context, preset: str) -> None:
    _ptz(ctx.obj, "remove_preset", f"remove-preset {preset}", preset=preset)


@ptz_app.command("move")
def move(ctx: typer.Context, pan: float = typer.Option(0.0, "--pan", min=-1, max=1),
         tilt: float = typer.Option(0.0, "--tilt", min=-1, max=1), zoom: float = typer.Option(0.0, "--zoom", min=-1, max=1),
         seconds: float = typer.Option(1.0, "--seconds", min=0.1, max=10)) -> None:
    """Continuous move at these speeds (−1…1) for the given seconds, then stop."""
    _ptz(ctx.obj, "move", f"move pan {pan:+.2f} tilt {tilt:+.2f} zoom {zoom:+.2f} for {seconds:g} s", pan=pan, tilt=tilt,
         zoom=zoom, seconds=seconds)


@ptz_app.command("stop")
def stop(ctx: typer.Context) -> None:
    _ptz(ctx.obj, "stop", "stop")


@ptz_app.command("status")
def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    got = _ptz(ctx.obj, "status", "status", lock=False)
    typer.echo(json.dumps(got) if as_json else f"pan {got['pan']} tilt {got['tilt']} zoom {got['zoom']}")
