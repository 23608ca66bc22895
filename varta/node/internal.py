"""A node's internal API: what other nodes ask it for (signed requests only).

* ``GET /internal/files/<area>/<path>`` — a file on this node's disk: a segment, an alarm
  picture, an export, a package (HTTP Range supported: HLS byte ranges pass through);
* ``GET /internal/live/<camera>?stream=sub|main`` — this node's relay of a camera it
  records, as a framed stream (varta.live.relay.frame); ends when the camera moves away;
* ``GET /internal/snapshot/<camera>?stream=&width=`` — a JPEG from that relay;
* ``GET /internal/node`` — who answers (for checks and tests).

Plain Starlette, so a recording node serves it without loading the web application. Every
request must carry a valid node signature (varta/cluster/peer.py); the user's rights were
checked by the web node that asks, which journals the access.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from varta.cluster.peer import HEADER
from varta.storage.files import AREAS


def internal_routes(rt) -> list[Route]:
    """``rt``: the node runtime (varta/node/runtime.py)."""

    def verified(request: Request) -> str | None:
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if request.url.query:
            target += "?" + request.url.query
        try:
            return rt.verifier.verify(request.headers.get(HEADER), request.method, target)
        except PermissionError:
            return None

    def refuse() -> Response:
        return JSONResponse({"detail": "signed node requests only"}, status_code=403)

    async def files(request: Request) -> Response:
        if await asyncio.to_thread(verified, request) is None:
            return refuse()
        area = request.path_params["area"]
        if area not in AREAS:
            return JSONResponse({"detail": f"no area {area}"}, status_code=404)
        try:
            path = rt.files.local(area, request.path_params["path"])
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if not path.is_file():
            return JSONResponse({"detail": "no such file on this node"}, status_code=404)
        return FileResponse(path)

    async def live(request: Request) -> Response:
        if await asyncio.to_thread(verified, request) is None:
            return refuse()
        from varta.live.hub import NotHere
        from varta.live.relay import frame

        cam = await asyncio.to_thread(rt.registry_cameras.get, request.path_params["camera_id"])
        if cam is None:
            return JSONResponse({"detail": "no such camera"}, status_code=404)
        try:
            relay = rt.live.relay(cam, request.query_params.get("stream", "sub"), local_only=True)
        except NotHere as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)
        viewer = relay.subscribe(asyncio.get_running_loop())

        async def body():
            try:
                while relay.running or not viewer.queue.empty():
                    try:
                        item = await asyncio.wait_for(viewer.queue.get(), timeout=2.0)
                    except asyncio.TimeoutError:
                        continue
                    yield frame(item)
            finally:
                relay.unsubscribe(viewer)

        return StreamingResponse(body(), media_type="application/x-varta-live")

    async def snapshot(request: Request) -> Response:
        if await asyncio.to_thread(verified, request) is None:
            return refuse()
        from varta.live.hub import SnapshotError

        cam = await asyncio.to_thread(rt.registry_cameras.get, request.path_params["camera_id"])
        if cam is None:
            return JSONResponse({"detail": "no such camera"}, status_code=404)
        width = request.query_params.get("width")
        try:
            jpeg = await rt.live.snapshot(cam, request.query_params.get("stream", "sub"),
                                          int(width) if width else None)
        except (SnapshotError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=502)
        return Response(jpeg, media_type="image/jpeg")

    async def node(request: Request) -> Response:
        if await asyncio.to_thread(verified, request) is None:
            return refuse()
        return JSONResponse({"id": rt.identity.id, "name": rt.settings.node_name, "roles": sorted(rt.roles)})

    return [
        Route("/internal/files/{area}/{path:path}", files),
        Route("/internal/live/{camera_id}", live),
        Route("/internal/snapshot/{camera_id}", snapshot),
        Route("/internal/node", node),
    ]
