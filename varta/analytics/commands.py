"""``varta analytics|model|events|analyze``: the analytics worker, cameras' analytics
settings, detector models, the event list, and offline analysis of a file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import typer

from varta.cli_support import authorize, fail, load_settings, open_engine, parse_cli_time, wait_for_stop_signal
from varta.clock import format_time

analytics_app = typer.Typer(help="Video analytics: the worker and each camera's settings.", no_args_is_help=True)
model_app = typer.Typer(help="Detector models (downloaded with a SHA-256 check).", no_args_is_help=True)
events_app = typer.Typer(help="Events and alarms raised by analytics.", no_args_is_help=True)
log = logging.getLogger("varta.analytics")


def read_settings_file(path: Path) -> dict:
    """Analytics settings from JSON, YAML or TOML."""
    from varta.cameras.importer import read_data_file

    try:
        data = read_data_file(path)
    except ValueError as exc:
        fail(str(exc))
    return data or {}


# --- the worker ------------------------------------------------------------------------
@analytics_app.command("run")
def analytics_run(verbose: bool = typer.Option(False, "--verbose", "-v"),
                  listen: Optional[str] = typer.Option(None, "--listen",
                                                       help="HOST:PORT of this node's API (default node_listen)")) -> None:
    """Run an analytics node: analyse the cameras it takes by lease until stopped.

    ``varta serve`` and ``varta recorder`` start this by themselves as a child process that
    follows their own node's leases; on its own it is a node of the cluster (an analytics
    server in a capital)."""
    import os

    from varta.analytics.worker import AnalyticsWorker, lower_priority

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = load_settings()
    parent = os.environ.get("VARTA_NODE_CHILD")
    if parent:  # the worker of a serve/recorder node: its leases are the parent's
        engine = open_engine(settings)
        lower_priority(settings.analytics_nice)
        worker = AnalyticsWorker(engine, settings, parent)
        worker.start()
        try:
            wait_for_stop_signal()
        finally:
            worker.stop()
        return
    from varta.node.runtime import ANALYTICS, NodeStartError, bind, internal_app, serve_http, start_node, stop_node

    try:
        sock = bind(listen or settings.node_listen)
        rt = start_node(settings, {ANALYTICS}, sock, child_analytics=False)
    except NodeStartError as exc:
        fail(str(exc))
    lower_priority(settings.analytics_nice)
    rt.analytics_worker = AnalyticsWorker(rt.engine, settings, rt.identity.id)
    rt.analytics_worker.start()
    try:
        serve_http(internal_app(rt), sock, on_started=lambda: typer.echo(
            f"analytics node {settings.node_name} running: {rt.analytics_worker.detector_message}"))
    finally:
        stop_node(rt)


@analytics_app.command("set")
def analytics_set(camera_id: str = typer.Argument(..., metavar="CAMERA"),
                  file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON, TOML or YAML")) -> None:
    """Give a camera its analytics settings: rate, masks and rules (docs/analytics.md)."""
    from varta.analytics.config import AnalyticsError
    from varta.analytics.store import AnalyticsSettings
    from varta.cameras.registry import CameraRegistry

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{camera_id}")
    if CameraRegistry(engine).get(camera_id) is None:
        fail(f"no camera {camera_id}")
    try:
        cfg = AnalyticsSettings(engine).set(camera_id, read_settings_file(file))
    except AnalyticsError as exc:
        fail(f"{file}: {exc}")
    access.record(who, "camera.manage", f"camera:{camera_id}",
                  detail=f"analytics: {len(cfg.rules)} rules, {cfg.fps:g} fps, enabled={cfg.enabled}")
    typer.echo(f"camera {camera_id}: analytics {'on' if cfg.enabled else 'off'} at {cfg.fps:g} frames/s, "
               f"rules: {', '.join(r['name'] for r in cfg.rules) or 'none'}")


@analytics_app.command("show")
def analytics_show(camera_id: str = typer.Argument(..., metavar="CAMERA")) -> None:
    """A camera's analytics settings and its worker's status, as JSON."""
    from varta.analytics.store import AnalyticsSettings

    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "camera.list", camera_id=camera_id)
    store = AnalyticsSettings(engine)
    status = store.status(camera_id)
    typer.echo(json.dumps({"config": store.get_raw(camera_id), "status": status}, ensure_ascii=False, indent=2))


@analytics_app.command("status")
def analytics_status() -> None:
    """Each analysed camera: state, frames/s analysed and detected, and why if degraded."""
    from varta.analytics.store import AnalyticsSettings

    settings = load_settings()
    engine = open_engine(settings)
    authorize(settings, engine, "system.view")
    rows = AnalyticsSettings(engine).statuses()
    if not rows:
        typer.echo("no camera is analysed")
    for cam, st in sorted(rows.items()):
        allowed = st.get("allowed_fps")
        held = (f" (allowed {allowed:g})" if allowed is not None and allowed < st["target_fps"] - 1e-6 else "")
        lag = f" lag {st['lag_s']:.1f} s" if st.get("lag_s") is not None else ""
        typer.echo(f"{cam:<16} {st['state']:<12} {st['actual_fps']:>5.1f}/{st['target_fps']:<4g} fps{held} "
                   f"detector {st['detect_fps']:>4.1f}/s{lag}  {st['worker']}  {st['detail']}")


# --- models ------------------------------------------------------------------------------
@model_app.command("install")
def model_install(name: str = typer.Argument("yolox-nano"),
                  url: Optional[str] = typer.Option(None, "--url", help="a mirror (the checksum still applies)"),
                  from_file: Optional[Path] = typer.Option(None, "--from", exists=True, dir_okay=False,
                                                           help="install from a file copied by hand (offline)"),
                  int8: bool = typer.Option(False, "--int8", help="also make the INT8 variant now (calibrated on "
                                            "real footage; ~25 % less CPU per inference, up to 2 points less recall; "
                                            "used with detector_variant=int8)")) -> None:
    """Download a detector model into $VARTA_HOME/models, refusing it unless its SHA-256 matches."""
    from varta.analytics.models import MODELS, ModelError, derive_int8, install
    from varta.analytics.quantize import description

    settings = load_settings()
    try:
        path = install(name, settings.home, url=url, from_file=from_file)
    except ModelError as exc:
        fail(str(exc))
    info = MODELS[name]
    typer.echo(f"{name} installed at {path} (sha256 {info.sha256[:16]}…, licence {info.licence})")
    if not (int8 or settings.detector_variant == "int8"):
        return
    typer.echo("making its INT8 variant (calibrated on the demo's street footage, about a minute)…")
    try:
        made_at = derive_int8(name, settings.home)
    except ModelError as exc:
        typer.echo(f"warning: {exc}; Varta will use the FP32 model", err=True)
        return
    made = json.loads(description(made_at).read_text())
    typer.echo(f"{name} (int8) made at {made_at} (sha256 {made['sha256'][:16]}…, from {made['frames']} frames)")


@model_app.command("list")
def model_list() -> None:
    from varta.analytics.models import MODELS, VARIANTS, model_path, models_dir, sha256_of, variant_file
    from varta.analytics.quantize import description, verified

    settings = load_settings()
    active = model_path(settings)
    for info in MODELS.values():
        for variant in reversed(VARIANTS):
            path = models_dir(settings.home) / variant_file(info, variant)
            if not path.is_file():
                state, digest = "not installed", info.sha256 if variant == "fp32" else ""
            elif variant == "fp32":
                digest = sha256_of(path)
                state = "installed, checksum ok" if digest == info.sha256 else "installed, CHECKSUM MISMATCH"
            else:
                ok = verified(path, info.sha256)
                digest = json.loads(description(path).read_text()).get("sha256", "") if ok else sha256_of(path)
                state = "made here, checksum ok" if ok else "DAMAGED or stale (remade when loaded)"
            typer.echo(f"{info.name:<12} {variant:<5} {state:<34} sha256 {digest[:16] or '–':<16} {info.licence}")
    typer.echo(f"in use: {active} (detector_variant={settings.detector_variant})"
               + ("" if active.is_file() else " (missing: motion only)"))


# --- events ------------------------------------------------------------------------------
@events_app.command("list")
def events_list(
    camera: list[str] = typer.Option([], "--camera", help="repeat for several"),
    start: Optional[str] = typer.Option(None, "--from"), end: Optional[str] = typer.Option(None, "--to"),
    label: Optional[str] = typer.Option(None, "--label"), rule: Optional[str] = typer.Option(None, "--rule"),
    zone: Optional[str] = typer.Option(None, "--zone"), kind: Optional[str] = typer.Option(None, "--kind"),
    limit: int = typer.Option(100, "--limit"), as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Events, newest first (city time), of the cameras this account may watch."""
    from varta.cameras.registry import CameraRegistry
    from varta.events.store import EventQuery, EventStore

    settings = load_settings()
    engine = open_engine(settings)
    access, who = authorize(settings, engine, "event.view")
    policy = access.policy()
    visible = [c.id for c in CameraRegistry(engine).list(include_removed=True)
               if policy.decide(who, "event.view", c.group_name)]
    cams = tuple(c for c in camera if c in visible) if camera else tuple(visible)
    q = EventQuery(cameras=cams, start_us=parse_cli_time(start, settings, "--from") if start else None,
                   end_us=parse_cli_time(end, settings, "--to") if end else None, label=label, rule=rule,
                   zone=zone, kind=kind, limit=limit)
    rows = EventStore(engine, settings.events_dir).search(q)
    tz = settings.tz
    if as_json:
        typer.echo(json.dumps([{**r, "start": format_time(r["start_us"], tz),
                                "end": format_time(r["end_us"], tz) if r["end_us"] else None} for r in rows],
                              ensure_ascii=False, indent=2, default=str))
        return
    for r in rows:
        end_txt = format_time(r["end_us"], tz)[11:19] if r["end_us"] else "…"
        direction = (r["detail"] or {}).get("direction", {}).get("en", "")
        typer.echo(f"{r['id']:>6} {format_time(r['start_us'], tz)[:19]}–{end_txt} {r['camera_id']:<12} "
                   f"{r['rule']:<20} {r['label'] or r['kind']:<10} {r['state']:<12} {direction}")


# --- offline -----------------------------------------------------------------------------
def analyze(
    video: Path = typer.Argument(..., exists=True, dir_okay=False, help="a video file (an export, say)"),
    rules: Optional[Path] = typer.Option(None, "--rules", exists=True, dir_okay=False,
                                         help="analytics settings: JSON, TOML or YAML (as for `analytics set`)"),
    as_json: bool = typer.Option(False, "--json", help="print events and counts as JSON"),
    mot: Optional[Path] = typer.Option(None, "--mot", help="write tracked boxes per frame (MOTChallenge)"),
    mot_class: list[str] = typer.Option([], "--mot-class", help="only these classes in --mot (repeat; e.g. person)"),
    fps: Optional[float] = typer.Option(None, "--fps", help="frames analysed per second; 0 = every frame"),
    model: Optional[Path] = typer.Option(None, "--model", help="ONNX detector (default: the installed one)"),
    no_gate: bool = typer.Option(False, "--no-motion-gate", help="run the detector on every frame"),
    store_tracks: Optional[str] = typer.Option(None, "--store-tracks", metavar="CAMERA",
                                               help="keep the tracks for search as this camera's (footage "
                                                    "brought in from elsewhere; needs --start)"),
    start: Optional[str] = typer.Option(None, "--start", help="when the file's first frame was taken (ISO 8601, "
                                                              "city time without an offset)"),
) -> None:
    """Run Varta's analytics over a file and print the events it would raise."""
    from varta.analytics.config import AnalyticsError, parse_config
    from varta.analytics.models import load_detector
    from varta.analytics.offline import analyze_file
    from varta.analytics.source import SourceError

    settings = load_settings()
    if model is not None:
        settings.detector_model = str(model)
    camera = None
    if store_tracks:
        from varta.cameras.registry import CameraRegistry
        from varta.clock import parse_time

        if not start:
            fail("--store-tracks needs --start: when the file's first frame was taken")
        try:
            start_us = parse_time(start, settings.tz)
        except ValueError as exc:
            fail(f"--start: {exc}")
        engine = open_engine(settings)
        access, who = authorize(settings, engine, "camera.manage", obj=f"camera:{store_tracks}")
        camera = CameraRegistry(engine).get(store_tracks, include_removed=True)
        if camera is None:
            fail(f"no camera {store_tracks}")
    data = read_settings_file(rules) if rules else {}
    data.setdefault("enabled", True)
    try:
        cfg = parse_config(data)
    except AnalyticsError as exc:
        fail(f"{rules}: {exc}")
    detector, message = load_detector(settings) if cfg.detect else (None, "detector off in the settings")
    if model is not None and detector is None:
        fail(message)
    typer.echo(message, err=True)
    out = mot.open("w", encoding="ascii") if mot else None
    try:
        result = analyze_file(video, cfg, detector, fps=fps, mot=out, gate=not no_gate,
                              mot_labels=set(mot_class) or None,
                              view_direction=camera.view_direction if camera else None)
    except SourceError as exc:
        fail(f"{video}: {exc}")
    finally:
        if out:
            out.close()
    if camera is not None:
        from varta.search.store import TrackStore

        for r in result.records:
            r.start_us += start_us
            r.end_us += start_us
        n = TrackStore(engine).insert(camera.id, result.records, worker=f"file:{video.name}")
        access.record(who, "camera.manage", f"camera:{camera.id}",
                      detail=f"{n} track records from the file {video.name} stored from {start}")
        typer.echo(f"{n} tracks stored for search as camera {camera.id}'s", err=True)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    for e in result.events:
        end = f"{e.end_s:8.1f}" if e.end_s is not None else "       …"
        what = e.label or ", ".join(f"{k}={v}" for k, v in e.detail.items()) or e.kind
        typer.echo(f"{e.start_s:8.1f}–{end} s  {e.rule:<22} {what:<12} {e.zone or '':<12} {e.direction or ''}")
    typer.echo(f"{len(result.events)} events; {result.frames_analysed} of {result.frames_decoded} frames analysed, "
               f"detector on {result.detections_run}; {result.cpu_s:.1f} s CPU", err=True)

