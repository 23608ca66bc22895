"""/api/events and /api/alarms: search events, see an alarm's picture, act on it, and get
alarms pushed in real time (WebSocket for the console, Server-Sent Events for outside
systems such as police dispatch with an API token). Cameras' analytics settings too."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated

from fastapi import APIRouter, Body, Path, Depends, HTTPException, Query, Request, WebSocket
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from varta.analytics.config import AnalyticsConfig, AnalyticsError, parse_config
from varta.analytics.store import AnalyticsSettings
from varta.clock import US, format_time
from varta.events.feed import EventFeed
from varta.events.store import ACTIONS, EventError, EventQuery, EventStore
from varta.web.wsutil import serve_until_closed
from varta.web.auth import Caller, SeenOnce, guard, ws_guard
from varta.web.deps import AppServices, services, time_param

# A row number in a path: anything beyond a 64-bit integer is a 422 with the reason, not a
# database overflow (found by tests/test_api_fuzz_e2e.py).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="a row number (64-bit)")]

router = APIRouter(tags=["events"])
_snapshots_seen = SeenOnce()
PING_S = 20.0
ROLLS_TTL_S = 5.0
DEFAULT_ROLLS = (AnalyticsConfig.pre_roll_s, AnalyticsConfig.post_roll_s)


class EventsApi:
    """Per-process helpers on top of the shared database (one per app)."""

    def __init__(self, svc: AppServices):
        self.svc = svc
        self.store = EventStore(svc.engine, svc.settings.events_dir)
        self.settings = AnalyticsSettings(svc.engine)
        self.feed = EventFeed(self.store)
        self._rolls: dict[str, tuple[float, float]] = {}
        self._rolls_at = float("-inf")

    def visible_cameras(self, caller: Caller) -> dict[str, object]:
        policy = caller.access.policy()
        return {c.id: c for c in self.svc.registry.list(include_removed=True)
                if policy.decide(caller.principal, "event.view", c.group_name)}

    def rolls(self, camera_id: str) -> tuple[float, float]:
        """The camera's pre/post roll; all cameras' settings are read at most every 5 s,
        not once per event listed."""
        now = time.monotonic()
        if now - self._rolls_at > ROLLS_TTL_S:
            self._rolls = {}
            for cam, raw in self.settings.all_raw().items():
                try:
                    cfg = parse_config(raw)
                except AnalyticsError:
                    continue
                self._rolls[cam] = (cfg.pre_roll_s, cfg.post_roll_s)
            self._rolls_at = now
        return self._rolls.get(camera_id, DEFAULT_ROLLS)

    def out(self, ev: dict, cams: dict) -> dict:
        tz = self.svc.settings.tz
        cam = cams.get(ev["camera_id"])
        pre, post = self.rolls(ev["camera_id"])
        clip_from = ev["start_us"] - int(pre * US)
        clip_to = (ev["end_us"] or ev["start_us"]) + int(post * US)
        d = {k: v for k, v in ev.items() if k not in ("worker",)}
        d.update(
            camera_name=getattr(cam, "name", ev["camera_id"]),
            latitude=getattr(cam, "latitude", None), longitude=getattr(cam, "longitude", None),
            address=getattr(cam, "address", ""),
            start=format_time(ev["start_us"], tz), end=format_time(ev["end_us"], tz) if ev["end_us"] else None,
            handled=format_time(ev["handled_us"], tz) if ev.get("handled_us") else None,
            snapshot_url=f"/api/events/{ev['id']}/snapshot.jpg" if ev.get("snapshot") else None,
            clip={"from": format_time(clip_from, tz), "to": format_time(clip_to, tz),
                  "playlist": f"/api/cameras/{ev['camera_id']}/playback.m3u8?from={clip_from}&to={clip_to}"},
        )
        d.pop("snapshot", None)
        return d


def api(svc: AppServices) -> EventsApi:
    if svc.events is None:
        svc.events = EventsApi(svc)
    return svc.events


def _event(ea: EventsApi, caller: Caller, event_id: int, action: str) -> dict:
    ev = ea.store.get(event_id)
    if ev is None:
        raise HTTPException(404, f"no event {event_id}")
    caller.require(action, ev["camera_id"])
    return ev


@router.get("/api/events")
def search_events(
    camera: list[str] = Query([], description="camera id; repeat for several"),
    from_: str | None = Query(None, alias="from"), to: str | None = Query(None),
    label: str | None = None, zone: str | None = None, rule: str | None = None, kind: str | None = None,
    state: str | None = Query(None, pattern="^(new|acknowledged)$"),
    verdict: str | None = Query(None, pattern="^(true|false|none)$"),
    before: int | None = Query(None, description="page: events with a smaller id"),
    limit: int = Query(100, ge=1, le=1000),
    caller: Caller = guard("event.view"), svc: AppServices = Depends(services),
) -> dict:
    """Events, newest first, of the cameras the caller may watch (R3, R6)."""
    ea = api(svc)
    cams = ea.visible_cameras(caller)
    wanted = tuple(c for c in camera if c in cams) if camera else tuple(cams)
    for c in camera:
        if c not in cams:
            caller.require("event.view", c)  # 404 or a journaled 403, never a silent empty answer
    q = EventQuery(cameras=wanted, start_us=time_param(from_, "from", svc) if from_ else None,
                   end_us=time_param(to, "to", svc) if to else None, label=label, zone=zone, rule=rule, kind=kind,
                   state=state, verdict=verdict, before_id=before, limit=limit)
    rows = ea.store.search(q)
    return {"events": [ea.out(r, cams) for r in rows], "timezone": svc.settings.timezone}


@router.get("/api/events/{event_id}")
def get_event(event_id: RowId, caller: Caller = guard("event.view"), svc: AppServices = Depends(services)) -> dict:
    ea = api(svc)
    ev = _event(ea, caller, event_id, "event.view")
    out = ea.out(ev, ea.visible_cameras(caller))
    out["actions"] = [{**a, "time": format_time(a["created_us"], svc.settings.tz)} for a in ea.store.actions(event_id)]
    return out


@router.get("/api/events/{event_id}/snapshot.jpg", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}}})
def event_snapshot(event_id: RowId, request: Request, caller: Caller = guard("event.view"),
                   svc: AppServices = Depends(services)):
    """The alarm picture, from the node whose analytics worker took it."""
    from varta.web.files_http import node_file_response

    ea = api(svc)
    ev = _event(ea, caller, event_id, "event.view")
    if not ev.get("snapshot"):
        raise HTTPException(404, f"event {event_id} has no snapshot")
    cam = svc.registry.get(ev["camera_id"], include_removed=True)
    if cam is not None:
        caller.lockdown_check("event.picture", cam)
    if _snapshots_seen.first((caller.principal.login, caller.principal.source, event_id)):
        caller.record("event.view", f"camera:{ev['camera_id']}", detail=f"alarm picture of event {event_id}")
    return node_file_response(svc, request, ev.get("worker"), "events", ev["snapshot"], "image/jpeg",
                              what=f"picture of event {event_id}")


@router.post("/api/events/{event_id}/{action}")
def act_on_event(event_id: RowId, action: str, body: dict = Body(default={}),
                 caller: Caller = guard("event.handle"), svc: AppServices = Depends(services)) -> dict:
    """Acknowledge (``ack``), judge (``true`` / ``false``) or annotate (``note``) an event."""
    if action not in ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    ea = api(svc)
    ev = _event(ea, caller, event_id, "event.handle")
    note = str((body or {}).get("note") or "")
    try:
        updated = ea.store.act(event_id, action, caller.principal.login, note)
    except EventError as exc:
        raise HTTPException(422, str(exc)) from None
    caller.record("event.handle", f"camera:{ev['camera_id']}",
                  detail=f"event {event_id} ({ev['rule']}): {action}" + (f": {note[:200]}" if note else ""))
    return ea.out(updated, ea.visible_cameras(caller))


# --- pushed alarms ---------------------------------------------------------------------
def _admits(ea: EventsApi, caller: Caller, cameras: set[str] | None):
    visible = set(ea.visible_cameras(caller))

    def admits(row: dict) -> bool:
        return row["camera_id"] in visible and (cameras is None or row["camera_id"] in cameras)

    return admits


@router.websocket("/api/alarms")
async def alarms_ws(websocket: WebSocket, caller: Caller = ws_guard("event.view")) -> None:
    """Every event opened or changed on the cameras the operator may watch, as JSON."""
    svc = websocket.app.state.services
    ea = api(svc)
    admits = await run_in_threadpool(_admits, ea, caller, None)
    await websocket.accept()
    sub = ea.feed.subscribe(admits)
    cams = await run_in_threadpool(ea.visible_cameras, caller)

    async def send() -> None:
        while True:
            try:
                row = await asyncio.wait_for(sub.queue.get(), timeout=PING_S)
            except asyncio.TimeoutError:  # keeps proxies (nginx: 60 s) from closing a quiet socket
                await websocket.send_json({"type": "ping"})
                continue
            event = await run_in_threadpool(ea.out, row, cams)  # may refresh the rolls: off the loop
            await websocket.send_json({"type": "event", "event": event})

    try:
        await serve_until_closed(websocket, send)
    finally:
        ea.feed.unsubscribe(sub)


@router.get("/api/alarms/stream")
async def alarms_sse(request: Request, camera: list[str] = Query([]),
                     caller: Caller = guard("event.view"), svc: AppServices = Depends(services)):
    """Server-Sent Events: ``event: alarm`` with the event as JSON data, for outside systems."""
    ea = api(svc)
    admits = await run_in_threadpool(_admits, ea, caller, set(camera) or None)
    cams = await run_in_threadpool(ea.visible_cameras, caller)
    sub = ea.feed.subscribe(admits)
    await run_in_threadpool(caller.record, "event.view", "alarms", "ok", "alarm stream opened")

    async def stream():
        try:
            yield ": varta alarms\n\n"
            while not await request.is_disconnected():
                try:
                    row = await asyncio.wait_for(sub.queue.get(), timeout=PING_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                event = await run_in_threadpool(ea.out, row, cams)
                data = json.dumps(event, ensure_ascii=False, default=str)
                yield f"id: {row['id']}.{row['updated_us']}\nevent: alarm\ndata: {data}\n\n"
        finally:
            ea.feed.unsubscribe(sub)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


# --- cameras' analytics settings -------------------------------------------------------
@router.get("/api/cameras/{camera_id}/analytics")
def get_analytics(camera_id: str, caller: Caller = guard("camera.list", "camera_id"),
                  svc: AppServices = Depends(services)) -> dict:
    ea = api(svc)
    raw = ea.settings.get_raw(camera_id)
    status = ea.settings.status(camera_id)
    if status:
        status = {**status, "updated": format_time(status["updated_us"], svc.settings.tz)}
    return {"camera_id": camera_id, "config": raw, "status": status}


@router.put("/api/cameras/{camera_id}/analytics")
def put_analytics(camera_id: str, body: dict = Body(...), caller: Caller = guard("camera.manage", "camera_id"),
                  svc: AppServices = Depends(services)) -> dict:
    ea = api(svc)
    try:
        cfg = ea.settings.set(camera_id, body)
    except AnalyticsError as exc:
        raise HTTPException(422, str(exc)) from None
    caller.record("camera.manage", f"camera:{camera_id}",
                  detail=f"analytics: {'on' if cfg.enabled else 'off'}, {cfg.fps:g} fps, "
                         f"{len(cfg.rules)} rules ({', '.join(r['name'] for r in cfg.rules)})")
    return {"camera_id": camera_id, "config": cfg.to_json()}

