"""Serving a file that lives on some node's disk or in the archive bucket: from here, from
the bucket, or through that node.

Segments, alarm pictures, exports and packages are written by one node; a browser reaches
whichever web node the load balancer picks. This answers from the local disk when the file
is here, and otherwise streams it from the node that holds it (one signed request, the
browser's Range header passed through, so HLS byte ranges and seeking work unchanged).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from varta.storage.files import NodeFiles

_PASS = ("content-length", "content-range", "accept-ranges", "last-modified", "etag")


def node_file_response(svc, request: Request, node_id: str | None, area: str, rel: str, media_type: str,
                       filename: str | None = None, inline: bool = False, what: str = "file"):
    try:
        local = svc.files.here(node_id, area, rel)
        key = svc.files.file_in_bucket(area, rel)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if local is not None and local.is_file():
        return FileResponse(local, media_type=media_type, filename=filename,
                            content_disposition_type="inline" if inline else "attachment")
    if key is not None:  # published to the archive bucket: any node serves it from there
        got = _from_bucket(svc, request, key, media_type, filename, inline)
        if got is not None:
            return got
    if local is not None:
        raise HTTPException(404, f"the {what} is indexed but its file is missing")
    peers = svc.node.peers
    from varta.cluster.peer import PeerError

    headers = {"Range": request.headers["range"]} if "range" in request.headers else {}
    try:
        cm = peers.stream(node_id, NodeFiles.internal_path(area, rel), headers=headers, timeout=15)
        upstream = cm.__enter__()
    except PeerError as exc:
        raise HTTPException(503, f"the {what} is on node {svc.node.name_of(node_id)}, which cannot be reached "
                                 f"now ({exc}); try again when it is back") from None
    except Exception as exc:  # noqa: BLE001 - httpx connection errors
        peers.forget(node_id)
        raise HTTPException(503, f"the {what} is on node {svc.node.name_of(node_id)}, which does not answer "
                                 f"({type(exc).__name__})") from None
    if upstream.status_code not in (200, 206):
        upstream.read()
        cm.__exit__(None, None, None)
        code = 404 if upstream.status_code == 404 else 502
        raise HTTPException(code, f"node {svc.node.name_of(node_id)} could not serve the {what} "
                                  f"({upstream.status_code})")
    out = {k: upstream.headers[k] for k in _PASS if k in upstream.headers}
    if filename:
        out["content-disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
    return StreamingResponse(upstream.iter_raw(64 * 1024), status_code=upstream.status_code, headers=out,
                             media_type=media_type, background=BackgroundTask(cm.__exit__, None, None, None))


def _from_bucket(svc, request: Request, key: str, media_type: str, filename: str | None, inline: bool):
    """The object streamed from the bucket (the browser's Range passed on), or None when it
    is not there or the store cannot be read now (the caller then asks the node)."""
    from varta.storage.objects import StoreError

    try:
        status, headers, chunks = svc.files.store.iter_range(key, request.headers.get("range"))
    except FileNotFoundError:
        return None
    except StoreError as exc:
        if exc.status == 416:
            raise HTTPException(416, "the requested range is outside the file") from None
        return None
    if filename:
        headers["content-disposition"] = f'{"inline" if inline else "attachment"}; filename="{filename}"'
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type=media_type)


def segment_file_response(svc, request: Request, seg, filename: str, what: str):
    """A segment's bytes: from this node's disk when here, else from the archive bucket when
    it was shipped there (ranged GET, streamed), else from the node that recorded it."""
    local = svc.files.segment_here(seg)
    if local is not None:
        if not local.is_file():
            raise HTTPException(404, f"the {what} is indexed but its file is missing")
        return FileResponse(local, media_type="video/mp4", filename=filename, content_disposition_type="inline")
    key = svc.files.segment_in_bucket(seg)
    if key is None:
        return node_file_response(svc, request, seg.recorder, "recordings", svc.files.segment_rel(seg),
                                  "video/mp4", filename=filename, inline=True, what=what)
    from varta.storage.objects import StoreError

    try:
        status, headers, chunks = svc.files.store.iter_range(key, request.headers.get("range"))
    except FileNotFoundError:
        raise HTTPException(404, f"the {what} is indexed as shipped but is not in the archive bucket") from None
    except StoreError as exc:
        if exc.status == 416:
            raise HTTPException(416, "the requested range is outside the segment") from None
        raise HTTPException(503, f"the {what} is in the archive bucket, which cannot be read now ({exc})") from None
    headers["content-disposition"] = f'inline; filename="{filename}"'
    return StreamingResponse(chunks, status_code=status, headers=headers, media_type="video/mp4")
