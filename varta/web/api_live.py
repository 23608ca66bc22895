"""/api/cameras/{id}/live: live video as fMP4 over a WebSocket, for Media Source Extensions.

Messages to the browser: JSON text frames ``{"type": "state", "state": "connecting|live|
reconnecting|stopped", "detail"}``, ``{"type": "init", "codec", "mime"}`` and, once per GOP,
``{"type": "clock", "media_time", "wall_ms"}`` (when that frame arrived from the camera:
the console shows the delay from it); binary frames: the init segment, then one fragment
per frame. A new ``init`` (after a camera
reconnect, or when the camera moved to another recording node) means: start a new
SourceBuffer. Start and stop are journaled (live.view).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Query, WebSocket
from starlette.concurrency import run_in_threadpool

from varta.web.wsutil import serve_until_closed
from varta.web.auth import Caller, ws_guard

router = APIRouter(tags=["live"])
LOCKDOWN_CHECK_S = 0.25


@router.websocket("/api/cameras/{camera_id}/live")
async def live(websocket: WebSocket, camera_id: str,
               stream: str = Query("sub", pattern="^(sub|main)$", description="sub: grids; main: enlarged"),
               caller: Caller = ws_guard("live.view", "camera_id")) -> None:
    svc = websocket.app.state.services
    cam = await run_in_threadpool(svc.registry.get, camera_id)  # a database read: off the event loop
    if cam is None:
        await websocket.close(1008, f"no camera {camera_id}")
        return
    use_sub = stream == "sub" and bool(cam.sub_url)
    await websocket.accept()
    # The relay sits where the stream is already read (the recording node); this node only
    # forwards to it (varta/live/hub.py): one camera session however many viewers and nodes.
    relay = await run_in_threadpool(svc.live.relay, cam, "sub" if use_sub else "main")
    viewer = relay.subscribe(asyncio.get_running_loop())
    started = time.monotonic()
    obj = f"camera:{camera_id}"
    await run_in_threadpool(caller.record, "live.view", obj, "ok",
                            f"live {'sub' if use_sub else 'main'} stream started")

    cut: list[str] = []

    async def send() -> None:
        checked = time.monotonic()
        while True:
            try:
                item = await asyncio.wait_for(viewer.queue.get(), LOCKDOWN_CHECK_S)
            except asyncio.TimeoutError:
                item = None
            if time.monotonic() - checked >= LOCKDOWN_CHECK_S:
                # A lockdown shuts this view within a second of its start (varta/lockdown).
                checked = time.monotonic()
                why = await run_in_threadpool(svc.lockdown.refusal, caller.principal, "live.view", cam.sensitivity)
                if why:
                    cut.append(why)
                    await websocket.close(1008, why[:120])
                    return
            if item is None:
                continue
            if isinstance(item, bytes):
                await websocket.send_bytes(item)
            elif item.get("type") == "clock":
                await websocket.send_json(item)
            else:
                await websocket.send_json(item | {"viewers": relay.viewer_count})

    try:
        await serve_until_closed(websocket, send)
    finally:
        relay.unsubscribe(viewer)
        await run_in_threadpool(caller.record, "live.view", obj, "ok",
                                f"live {'sub' if use_sub else 'main'} stream stopped after "
                                f"{time.monotonic() - started:.0f} s" + (f": cut by the lockdown ({cut[0]})" if cut else ""))
