"""The ``varta`` command line (Typer). Every command reads VARTA_HOME / VARTA_DATABASE_URL."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from varta.onvif.commands import onvif_app, ptz_app
from varta.placement.commands import placement_app
from varta.search.commands import search_app
from varta.access.commands import journal_app, policy_app, token_app, user_app
from varta.cluster.commands import nodes_app
from varta.storage.commands import storage_app
from varta.operations import backup as backup_commands, check as check_commands
from varta.secrets.commands import secrets_app
from varta.lockdown.commands import lockdown_app
from varta.analytics.commands import analytics_app, analyze, events_app, model_app
from varta.evidence.commands import evidence_app, hold_app, incident_app, request_app
from varta.evidence.verify import verify_command
from varta.cameras.importer import load_camera_file
from varta.cameras.model import KINDS, Camera, CameraError
from varta.cameras.registry import CameraRegistry
from varta.cameras.schedule import Schedule, ScheduleError
from varta.cli_support import STATE, archive_store, authorize, fail as _fail, load_settings as _settings, open_engine as _engine
from varta.cli_support import parse_cli_time as _time
from varta.clock import format_time
from varta.config import Settings

app = typer.Typer(help="Varta: city-wide video surveillance.", no_args_is_help=True, add_completion=False)
camera_app = typer.Typer(help="The camera registry.", no_args_is_help=True)
app.add_typer(camera_app, name="camera")
app.add_typer(search_app, name="search")
app.add_typer(placement_app, name="placement")
app.add_typer(onvif_app, name="onvif")
app.add_typer(ptz_app, name="ptz")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(policy_app, name="policy")
app.add_typer(journal_app, name="journal")
app.add_typer(analytics_app, name="analytics")
app.add_typer(model_app, name="model")
app.add_typer(events_app, name="events")
app.command("analyze")(analyze)
app.add_typer(request_app, name="request")
app.add_typer(hold_app, name="hold")
app.add_typer(incident_app, name="incident")
app.add_typer(evidence_app, name="evidence")
app.command("verify")(verify_command)
app.add_typer(nodes_app, name="nodes")
app.add_typer(storage_app, name="storage")
app.add_typer(secrets_app, name="secrets")
app.add_typer(lockdown_app, name="lockdown")
check_commands.register(app)
backup_commands.register(app)


def _logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.callback()
def _main(as_login: Optional[str] = typer.Option(
        None, "--as", metavar="LOGIN",
        help="act as this account: its role decides, and the journal names it with the OS user")) -> None:
    """Varta: city-wide video surveillance. Commands on the server are direct access, journaled."""
    STATE.as_login = as_login


# --- cameras ---------------------------------------------------------------------------
def _view(text: str | None) -> tuple:
    if not text:
        return (None, None, None)
    try:
        d, a, r = (float(x) for x in text.split(","))
    except ValueError:
        raise CameraError(f"--view {text!r}: give DIRECTION,ANGLE,RANGE_M, e.g. 90,70,60") from None
    return (d, a, r)


@camera_app.command("near")
def camera_near(
    address: Optional[str] = typer.Option(None, "--address", help="found in the city's address list"),
    lat: Optional[float] = typer.Option(None, "--lat"),
    lon: Optional[float] = typer.Option(None, "--lon"),
    radius_m: float = typer.Option(150.0, "--radius", help="metres"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cameras that see a point (their field of view covers it), then those within a radius."""
    from varta.cameras import geo
    from varta.cameras.addresses import AddressBook

    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "camera.list", obj="cameras")
    if address:
        found = AddressBook(engine).locate(address)
        if found is None:
            _fail(f"address {address!r} is not in the city's address list (varta addresses import FILE.csv)")
        lat, lon = found["latitude"], found["longitude"]
    elif lat is None or lon is None:
        _fail("give --address, or --lat and --lon")
    cams = {c.id: c for c in CameraRegistry(engine).list() if c.latitude is not None}
    found = geo.near(geo.views_of(cams.values()), lat, lon, radius_m)
    access.record(who, "camera.list", "cameras", detail=f"near {lat:.6f},{lon:.6f} within {radius_m:.0f} m: "
                                                       f"{len(found)} cameras")
    if as_json:
        typer.echo(json.dumps({"point": {"latitude": lat, "longitude": lon}, "cameras": found}, ensure_ascii=False))
        return
    for f in found:
        typer.echo(f"{f['id']:<16} {f['distance_m']:>7.1f} m  {'sees it' if f['sees'] else 'nearby'}  "
                   f"{cams[f['id']].name}")


@app.command("addresses")
def addresses_import(file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                                 help="CSV: address, latitude, longitude (UTF-8)")) -> None:
    """Import the city's address list (replaces it): the map's search and `camera near`."""
    from varta.cameras.addresses import AddressBook, AddressError

    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj="addresses")
    try:
        n = AddressBook(engine).import_csv(file.read_text(encoding="utf-8"))
    except AddressError as exc:
        _fail(f"{file}: {exc}")
    access.record(who, "camera.manage", "addresses", detail=f"address list imported: {n} addresses from {file.name}")
    typer.echo(f"{n} addresses imported")


@camera_app.command("add")
def camera_add(
    camera_id: str = typer.Argument(..., metavar="ID", help="stable id, e.g. mel-0042"),
    url: str = typer.Option(..., "--url", help="main stream URL (rtsp://user:pass@host/path)"),
    sub_url: Optional[str] = typer.Option(None, "--sub-url", help="sub-stream URL for live grids and analytics"),
    name: str = typer.Option("", "--name"),
    kind: str = typer.Option("other", "--kind", help=" | ".join(KINDS)),
    address: str = typer.Option("", "--address"),
    lat: Optional[float] = typer.Option(None, "--lat"),
    lon: Optional[float] = typer.Option(None, "--lon"),
    group: str = typer.Option("", "--group", help="group or district"),
    retention_days: Optional[int] = typer.Option(None, "--retention-days", help="at least 10 (A4.6)"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="mode name or JSON timetable"),
    recorder: Optional[str] = typer.Option(None, "--recorder", help="pin to this recording node (name or id); "
                                                                    "default: placed automatically"),
    view: Optional[str] = typer.Option(None, "--view", help="field of view DIRECTION,ANGLE,RANGE_M: degrees "
                                                           "from north, width in degrees, metres (e.g. 90,70,60)"),
    sensitivity: str = typer.Option("normal", "--sensitivity", help="normal | sensitive (critical infrastructure, "
                                                                    "checkpoints: shut by `varta lockdown on`)"),
) -> None:
    """Register a camera; recording starts within seconds on a running Varta."""
    settings = _settings()
    try:
        sched = Schedule.from_json(json.loads(schedule) if schedule and schedule.startswith("{") else schedule)
        fov = _view(view)
        cam = Camera(id=camera_id, main_url=url, sub_url=sub_url, name=name, kind=kind, address=address,
                     latitude=lat, longitude=lon, group_name=group,
                     retention_days=retention_days or settings.default_retention_days, schedule=sched,
                     recorder=recorder, view_direction=fov[0], view_angle=fov[1], view_range_m=fov[2],
                     sensitivity=sensitivity).validated()
        engine = _engine(settings)
        access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{camera_id}")
        CameraRegistry(engine).add(cam)
    except (CameraError, ScheduleError, json.JSONDecodeError) as exc:
        _fail(str(exc))
    access.record(who, "camera.manage", f"camera:{cam.id}",
                  detail=f"added: {cam.name!r}, group {cam.group_name!r}, {cam.public_dict()['main_url']}")
    typer.echo(f"camera {cam.id} added: {cam.public_dict()['main_url']}")


@camera_app.command("set")
def camera_set(
    camera_id: str = typer.Argument(..., metavar="ID"),
    url: Optional[str] = typer.Option(None, "--url", help="main stream URL"),
    sub_url: Optional[str] = typer.Option(None, "--sub-url", help="sub-stream URL"),
    name: Optional[str] = typer.Option(None, "--name"),
    address: Optional[str] = typer.Option(None, "--address"),
    group: Optional[str] = typer.Option(None, "--group"),
    retention_days: Optional[int] = typer.Option(None, "--retention-days", help="at least 10 (A4.6)"),
    sensitivity: Optional[str] = typer.Option(None, "--sensitivity", help="normal | sensitive"),
    enabled: Optional[bool] = typer.Option(None, "--enabled/--disabled"),
) -> None:
    """Change a registered camera (only the options given)."""
    settings = _settings()
    changes = {k: v for k, v in (("main_url", url), ("sub_url", sub_url), ("name", name), ("address", address),
                                 ("group_name", group), ("retention_days", retention_days),
                                 ("sensitivity", sensitivity), ("enabled", enabled)) if v is not None}
    if not changes:
        _fail("nothing to change: give at least one option (see --help)")
    engine = _engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{camera_id}")
    try:
        cam = CameraRegistry(engine).update(camera_id, **changes)
    except CameraError as exc:
        _fail(str(exc))
    shown = ", ".join(f"{k} {'(credentials hidden)' if k.endswith('_url') else repr(v)}" for k, v in changes.items())
    access.record(who, "camera.manage", f"camera:{cam.id}", detail=f"changed: {shown}")
    typer.echo(f"camera {cam.id} changed: {shown}")


@camera_app.command("list")
def camera_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """The registered cameras with their recording state (credentials hidden)."""
    settings = _settings()
    engine = _engine(settings)
    from varta.recording.index import ArchiveIndex

    access, who = authorize(settings, engine, "camera.list")
    statuses = ArchiveIndex(engine).statuses()
    cams = [c for c in CameraRegistry(engine).list() if access.policy().decide(who, "camera.list", c.group_name)]
    rows = []
    for c in cams:
        st = statuses.get(c.id)
        d = c.public_dict()
        d["state"] = st["state"] if st else "unknown"
        d["reason"] = st["reason"] if st else ""
        d["last_segment_end"] = format_time(st["last_segment_end_us"], settings.tz) \
            if st and st["last_segment_end_us"] else None
        rows.append(d)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no cameras registered")
    for d in rows:
        state = d["state"] + (f" ({d['reason']})" if d["reason"] else "")
        typer.echo(f"{d['id']:<16} {state:<24} {d['kind']:<18} {d['retention_days']:>3}d  {d['name']}  {d['main_url']}")


@camera_app.command("remove")
def camera_remove(camera_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Stop recording a camera and drop it from the lists; its footage stays under retention."""
    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{camera_id}")
    try:
        CameraRegistry(engine).remove(camera_id)
    except CameraError as exc:
        _fail(str(exc))
    access.record(who, "camera.manage", f"camera:{camera_id}", detail="removed (footage kept under retention)")
    typer.echo(f"camera {camera_id} removed; its recordings stay until retention deletes them")


@camera_app.command("import")
def camera_import(file: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML or TOML camera list")) -> None:
    """Add or update every camera in a YAML/TOML file (all or nothing)."""
    settings = _settings()
    try:
        cams = load_camera_file(file)
    except CameraError as exc:
        _fail(str(exc))
    engine = _engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj="cameras")
    registry = CameraRegistry(engine)
    counts = {"added": 0, "updated": 0}
    for cam in cams:
        counts[registry.upsert(cam)] += 1
    access.record(who, "camera.manage", "cameras", detail=f"imported {len(cams)} from {file}: {counts}")
    typer.echo(f"imported {len(cams)} cameras from {file}: {counts['added']} added, {counts['updated']} updated")


# --- archive ---------------------------------------------------------------------------
@app.command("recordings")
def recordings(
    camera: str = typer.Option(..., "--camera", help="camera id"),
    from_: str = typer.Option(..., "--from", help="ISO 8601 (city time when no offset)"),
    to: str = typer.Option(..., "--to", help="ISO 8601 (city time when no offset)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recorded ranges and gaps (with reasons) for a camera between two times."""
    from varta.playback.query import recordings_report
    from varta.recording.index import ArchiveIndex

    settings = _settings()
    engine = _engine(settings)
    authorize(settings, engine, "archive.search", camera_id=camera)
    t1, t2 = _time(from_, settings, "--from"), _time(to, settings, "--to")
    try:
        rep = recordings_report(ArchiveIndex(engine), camera, t1, t2, settings.tz, settings.segment_seconds)
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(rep, ensure_ascii=False, indent=2))
        return
    typer.echo(f"camera {camera}, {rep['from']} – {rep['to']}: {rep['recorded_seconds']:.0f} s recorded")
    for r in rep["ranges"]:
        typer.echo(f"  recorded  {r['start']} – {r['end']}")
    for g in rep["gaps"]:
        typer.echo(f"  gap       {g['start']} – {g['end']}  {g['reason']}: {g['description']}"
                   + (f" ({g['detail']})" if g["detail"] else ""))


@app.command("export")
def export(
    camera: list[str] = typer.Option(..., "--camera", help="camera id (repeat for several)"),
    from_: str = typer.Option(..., "--from"),
    to: str = typer.Option(..., "--to"),
    out: Path = typer.Option(..., "--out", help="file for one camera (.mp4), folder for several"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export footage by stream copy: one MP4 per camera, with duration and SHA-256."""
    from varta.playback.export import ExportError, export_cameras
    from varta.recording.ffmpeg import find_ffmpeg
    from varta.recording.index import ArchiveIndex

    settings = _settings()
    engine = _engine(settings)
    for cam in camera:
        access, who = authorize(settings, engine, "archive.export", camera_id=cam)
    t1, t2 = _time(from_, settings, "--from"), _time(to, settings, "--to")
    show = sys.stderr.isatty() and not as_json

    def progress(p: float) -> None:
        if show:
            typer.echo(f"\rexporting… {p * 100:5.1f}%", nl=False, err=True)

    from varta.cli_support import command_node

    _, node_files = command_node(settings, engine)
    try:
        with node_files.reading() as reader:  # segments from whichever node recorded them
            files = export_cameras(ArchiveIndex(engine), reader, find_ffmpeg(settings.ffmpeg), camera,
                                   t1, t2, out, settings.tz, progress)
    except ExportError as exc:
        _fail(str(exc))
    for f in files:
        access.record(who, "archive.export", f"camera:{f.camera_id}",
                      detail=f"{f.start} – {f.end} to {f.path} (sha256 {f.sha256})")
    if show:
        typer.echo("", err=True)
    if as_json:
        typer.echo(json.dumps([f.to_dict() for f in files], ensure_ascii=False, indent=2))
        return
    for f in files:
        typer.echo(f"{f.path}\n  camera {f.camera_id}: {f.start} – {f.end}, {f.duration_s:.3f} s, {f.frames} frames, "
                   f"{f.bytes} bytes\n  sha256 {f.sha256}")
        for g in f.gaps:
            typer.echo(f"  gap (collapsed in the file) {g['start']} – {g['end']}: {g['reason']}")


@app.command("reconcile")
def reconcile(full: bool = typer.Option(False, "--full", help="scan every day, not only the latest")) -> None:
    """Reconcile this node's disk and index now (the recorder also does this at every start).

    Only this node's files and rows are touched, never a file still being written (a
    running recorder's segments in progress are left alone)."""
    from varta.cluster.identity import read_node_id
    from varta.events.system_alarms import SystemAlarms
    from varta.recording.index import ArchiveIndex
    from varta.recording.reconcile import files_open_for_writing, reconcile_camera

    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj="archive")
    node = read_node_id(settings.home)
    if node is None:
        _fail(f"no node has run in {settings.home} yet: nothing of its own to reconcile")
    access.record(who, "system.maintain", "archive", detail=f"reconcile{' --full' if full else ''}")
    index, alarms = ArchiveIndex(engine), SystemAlarms(engine, node)
    root = settings.recordings_dir
    busy = files_open_for_writing(root) if root.is_dir() else set()
    cams = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for cam_id in cams:
        if CameraRegistry(engine).get(cam_id, include_removed=True) is None:
            continue
        rep = reconcile_camera(index, alarms, root, settings.quarantine_dir, cam_id, node,
                               days=None if full else 2, busy=busy)
        typer.echo(f"{cam_id}: {rep.summary()}")


@app.command("retention")
def retention_run() -> None:
    """Apply retention and the free-space rule once, and print the storage forecast."""
    from varta.recording.janitor import Janitor

    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj="archive")
    from varta.cluster.identity import read_node_id

    node = read_node_id(settings.home)
    if node is None:
        _fail(f"no node has run in {settings.home} yet: it has no footage of its own")
    from varta.recording.expiry import CityRetention

    store = archive_store(settings)
    rep = Janitor(engine, settings, node, store=store).run_once()
    # The city's part too (what the archive_retention duty does): footage only in the bucket,
    # whichever node recorded it, and whole days of the PostgreSQL index.
    city = CityRetention(engine, settings, store).run_once()
    deleted, held = rep.expired_deleted + city.deleted, rep.held_kept + city.held_kept
    access.record(who, "system.maintain", "archive", detail=f"retention: {deleted} expired segments "
                                                            f"deleted, {held} held kept")
    typer.echo(f"deleted {deleted} expired segments ({rep.expired_bytes / 1e6:.1f} MB from this node's disk); "
               f"kept {held} held")
    if city.days_dropped:
        typer.echo(f"dropped {city.days_dropped} whole day(s) of the index ({city.day_rows} segments)")
    if city.refused:
        typer.echo(f"the archive bucket kept {city.refused} expired object(s) (legal hold or retention period); "
                   "tried again at the next pass")
    if rep.tracks_deleted:
        typer.echo(f"deleted {rep.tracks_deleted} track records (search) past retention")
    if rep.early_deleted:
        typer.echo(f"disk full: deleted {rep.early_deleted} unheld segments early ({rep.early_bytes / 1e6:.1f} MB)")
    for m in rep.messages:
        typer.echo(m)
    _print_forecast(rep.forecast)


def _print_forecast(fc) -> None:
    if fc is None:
        return
    if fc.days_capacity is None:
        typer.echo("storage forecast: no recent recordings to measure bitrates from")
        return
    typer.echo(f"storage forecast: {fc.days_capacity:.1f} days at {fc.daily_bytes / 1e9:.2f} GB/day "
               f"(retention needs {fc.required_days}){' — SHORT' if fc.short else ''}")


# --- running ---------------------------------------------------------------------------
def run_server(settings: Settings, listen: str, roles: set[str], banner=None, remote_listen=()) -> None:
    """Run a node with these roles until SIGINT/SIGTERM (varta/node/runtime.py)."""
    from varta.node.runtime import NodeStartError, run_node

    try:
        run_node(settings, roles, listen, banner, tuple(remote_listen))
    except NodeStartError as exc:
        _fail(str(exc))


def _roles(*base: str, settings: Settings) -> set[str]:
    roles = set(base)
    if "recorder" in roles and settings.analytics:
        roles.add("analytics")
    return roles


@app.command("serve")
def serve(
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="HOST:PORT for the web console and API"),
    remote_listen: list[str] = typer.Option([], "--remote-listen", help="HOST:PORT (repeatable) also serving the "
                                            "console and API, where every session is remote access (A4.3): "
                                            "the address a VPN or a port forward brings outside users to"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run everything: recorder, analytics, retention and the web API (a town's single server)."""
    _logging(verbose)
    settings = _settings()
    run_server(settings, listen, _roles("recorder", "web", settings=settings),
               banner=lambda rt: typer.echo(f"Varta is running: http://{listen}/"
                                            + "".join(f"  (remote access: http://{r}/)" for r in remote_listen)),
               remote_listen=remote_listen)


@app.command("recorder")
def recorder_cmd(
    listen: Optional[str] = typer.Option(None, "--listen", help="HOST:PORT of the node API other nodes use "
                                                                "(default: node_listen)"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a recording node: it records the cameras it takes by lease (a capital runs many)."""
    _logging(verbose)
    settings = _settings()
    run_server(settings, listen or settings.node_listen, _roles("recorder", settings=settings),
               banner=lambda rt: typer.echo(f"recorder {settings.node_name} ({rt.identity.id}) running at "
                                            f"{rt.address}; data in {settings.home}"))


@app.command("web")
def web_cmd(
    listen: str = typer.Option("127.0.0.1:8080", "--listen", help="HOST:PORT for the web console and API"),
    remote_listen: list[str] = typer.Option([], "--remote-listen", help="HOST:PORT (repeatable) also serving the "
                                            "console and API, where every session is remote access (A4.3): "
                                            "the address a VPN or a port forward brings outside users to"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run a web node: the console and API without recording (any number behind a load balancer)."""
    _logging(verbose)
    settings = _settings()
    run_server(settings, listen, {"web"},
               banner=lambda rt: typer.echo(f"web node {settings.node_name} running: http://{listen}/"),
               remote_listen=remote_listen)


@app.command("demo")
def demo(
    listen: str = typer.Option("127.0.0.1:8080", "--listen"),
    cameras: int = typer.Option(3, "--cameras", min=1, max=16,
                                help="number of demonstration cameras: the first two show real footage "
                                     "with analytics rules, the rest test patterns"),
    rtsp_port: int = typer.Option(8554, "--rtsp-port", help="port of the built-in camera simulator"),
    remote_listen: Optional[str] = typer.Option(None, "--remote-listen",
                                                help="HOST:PORT where sessions are remote access, as the mayor's "
                                                     "must be (A4.3); default 127.0.0.2 and the --listen port; "
                                                     "'off' for none"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Varta with demonstration cameras (a built-in RTSP simulator), SQLite and local disk.

    The first cameras show real footage with people and vehicles and analytics rules: with the
    detector installed (varta model install yolox-nano) they raise alarms within a minute."""
    from varta.demo.setup import start_demo

    _logging(verbose)
    settings = _settings()
    engine = _engine(settings)
    if remote_listen is None:
        remote_listen = f"127.0.0.2:{listen.rsplit(':', 1)[-1]}"
    remote = () if remote_listen.lower() in ("", "off", "none") else (remote_listen,)
    sim, info = start_demo(settings, engine, cameras, rtsp_port)
    engine.dispose()
    try:
        run_server(settings, listen, _roles("recorder", "web", settings=settings),
                   banner=lambda rt: typer.echo(info(listen, remote[0] if remote else None)), remote_listen=remote)
    finally:
        sim.stop()


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to this version."""
    settings = _settings()
    engine = _engine(settings)
    access, who = authorize(settings, engine, "system.maintain", obj="database")
    access.record(who, "system.maintain", "database", detail="schema upgraded to the newest version")
    typer.echo("database is up to date")


def main() -> None:
    from varta.access.journal import JournalError

    try:
        app()
    except JournalError as exc:  # an access that cannot be journaled does not happen
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(4)


if __name__ == "__main__":
    main()
