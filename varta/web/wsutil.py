"""WebSocket plumbing shared by the live view and the alarm feed."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from fastapi import WebSocket, WebSocketDisconnect


async def serve_until_closed(websocket: WebSocket, send: Callable[[], Awaitable[None]]) -> None:
    """Run ``send`` (which loops, pushing to the browser) until it ends or the browser
    leaves. The browser sends nothing we need; reading is how its leaving is noticed."""

    async def receive() -> None:
        while True:
            await websocket.receive_text()

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        for t in tasks:
            t.cancel()
