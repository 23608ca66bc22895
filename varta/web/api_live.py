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

from varta.lockdown import rules as lockdown_rules
from varta.web.wsutil import serve_until_closed
from varta.web.auth import Caller, ws_guard

router = APIRouter(tags=["live"])
LOCKDOWN_CHECK_S = 0.25


class _LockdownWatch:
    """One poller per web node while anyone watches live: reads the lockdown state four
    times a second and wakes every live socket when it changes (each then applies the rule
    to its own viewer and camera)."""

    def __init__(self, lockdown):
        self.lockdown = lockdown
        self.event = asyncio.Event()
        self.users = 0
        self._task: asyncio.Task | None = None
        self._key = None

    def ensure(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while self.users > 0:
            st = await run_in_threadpool(self.lockdown.state)
            key = (st.id, st.scope) if st is not None else None
            if key != self._key:
                self._key = key
                woken, self.event = self.event, asyncio.Event()
                woken.set()
            await asyncio.sleep(LOCKDOWN_CHECK_S)


def _watch(svc) -> _LockdownWatch:
    w = getattr(svc, "_lockdown_watch", None)
    if w is None:
        w = svc._lockdown_watch = _LockdownWatch(svc.lockdown)
    return w


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
        while True:
            item = await viewer.queue.get()
            if isinstance(item, bytes):
                await websocket.send_bytes(item)
            elif item.get("type") == "clock":
                await websocket.send_json(item)
            else:
                await websocket.send_json(item | {"viewers": relay.viewer_count})

    lockdown = _watch(svc)

    async def watch() -> None:
        """A lockdown shuts this view within a second of its start (varta/lockdown): woken
        by the node's one poller when the state changes, never by a timer of its own."""
        while True:
            changed = lockdown.event
            fresh, st = svc.lockdown.peek()
            if not fresh:
                st = await run_in_threadpool(svc.lockdown.state)
            why = lockdown_rules.refusal(st, caller.principal, "live.view", cam.sensitivity)
            if why:
                cut.append(why)
                await websocket.close(1008, why[:120])
                return
            await changed.wait()

    async def send_and_watch() -> None:
        tasks = [asyncio.create_task(send()), asyncio.create_task(watch())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()

    lockdown.users += 1
    lockdown.ensure()
    try:
        await serve_until_closed(websocket, send_and_watch)
    finally:
        lockdown.users -= 1
        relay.unsubscribe(viewer)
        await run_in_threadpool(caller.record, "live.view", obj, "ok",
                                f"live {'sub' if use_sub else 'main'} stream stopped after "
                                f"{time.monotonic() - started:.0f} s" + (f": cut by the lockdown ({cut[0]})" if cut else ""))
