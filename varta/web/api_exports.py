"""/api/exports: stream-copy exports as background jobs with progress."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from varta.clock import format_time
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services, time_param
from varta.web.files_http import node_file_response

router = APIRouter(prefix="/api/exports", tags=["exports"])


class ExportIn(BaseModel):
    cameras: list[str] = Field(min_length=1, examples=[["mel-0012", "mel-0013"]])
    from_: str = Field(alias="from", examples=["2026-03-03T14:05:00"])
    to: str = Field(examples=["2026-03-03T14:40:00"])


@router.post("", status_code=202)
def create_export(body: ExportIn, caller: Caller = guard("archive.export"),
                  svc: AppServices = Depends(services)) -> dict:
    t1, t2 = time_param(body.from_, "from", svc), time_param(body.to, "to", svc)
    if t2 <= t1:
        raise HTTPException(422, "'to' must be after 'from'")
    for cam in body.cameras:
        caller.require("archive.export", cam)  # 404 for an unknown camera, 403 outside one's groups
    job_id = svc.exports.create(body.cameras, t1, t2, caller.principal.login)
    tz = svc.settings.tz
    for cam in body.cameras:
        caller.record("archive.export", f"camera:{cam}",
                      detail=f"export {job_id}: {format_time(t1, tz)} – {format_time(t2, tz)}")
    return svc.exports.get(job_id)


@router.get("/{job_id}")
def get_export(job_id: str, caller: Caller = guard("archive.export"), svc: AppServices = Depends(services)) -> dict:
    job = svc.exports.get(job_id)
    if job is None:
        raise HTTPException(404, f"no export {job_id}")
    return job


@router.get("/{job_id}/files/{name}", response_class=Response, responses={200: {"content": {"video/mp4": {}}}})
def export_file(job_id: str, name: str, request: Request, caller: Caller = guard("archive.export"),
                svc: AppServices = Depends(services)):
    """A finished export's file, from the node that made it."""
    where = svc.exports.file_location(job_id, name)
    if where is None:
        raise HTTPException(404, f"export {job_id} has no finished file {name}")
    job = svc.exports.get(job_id)
    for cam in job["cameras"]:
        caller.require("archive.export", cam)
    caller.record("archive.export", f"export:{job_id}", detail=f"downloaded {name}")
    node, rel = where
    saved_as = next((f.get("download_name") for f in job["files"] if f["name"] == name), None) or name
    return node_file_response(svc, request, node, "exports", rel, "video/mp4", filename=saved_as,
                              what=f"export file {name}")
