"""Export jobs for the HTTP API, run by the one job runner (varta/jobs/runner.py).

The job row (status, progress, files) is the shared state, so any web node reports on a
job another node runs; the files are on the disk of the node that ran it (``jobs.node``)
and any web node serves them through that node. An export whose node dies is run again by
another node: an export is a pure function of the archive, so starting over is safe.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import nullcontext
from pathlib import Path

from varta.clock import format_time
from varta.jobs.runner import JobContext, JobRunner, expected_errors
from varta.playback.export import ExportError, export_cameras
from varta.recording.index import ArchiveIndex
from varta.storage.files import FileUnavailable

log = logging.getLogger("varta.export")

EXPORT = "export"


class ExportJobs:
    def __init__(self, engine, settings, ffmpeg: str, runner: JobRunner, files=None):
        self.engine = engine
        self.settings = settings
        self.ffmpeg = ffmpeg
        self.runner = runner
        self.files = files  # varta.storage.files.NodeFiles (None: everything is on this disk)
        self.index = ArchiveIndex(engine)
        runner.register(EXPORT, self)
        expected_errors(ExportError, FileUnavailable)

    def create(self, camera_ids: list[str], t1: int, t2: int, created_by: str = "") -> str:
        return self.runner.submit(EXPORT, {"cameras": camera_ids, "start_us": t1, "end_us": t2}, created_by)

    # --- the runner's handler ---------------------------------------------------------------
    def run(self, job: JobContext) -> dict:
        out = self.settings.exports_dir / job.id
        shutil.rmtree(out, ignore_errors=True)  # a run interrupted here before: start clean
        p = job.params
        source = self.files.reading(self.settings.home / "cache") if self.files else \
            nullcontext(self.settings.recordings_dir)
        with source as reader:
            files = export_cameras(self.index, reader, self.ffmpeg, p["cameras"], p["start_us"], p["end_us"], out,
                                   self.settings.tz, job.progress)
        done = [f.to_dict() | {"path": str(Path(f.path).relative_to(self.settings.exports_dir))} for f in files]
        if self.files is not None:  # into the archive bucket too (when there is one): any node serves it
            for f in done:
                self.files.publish("exports", f["path"], wait=True)
        return {"files": done}

    def failed(self, job: JobContext, error: str) -> None:
        shutil.rmtree(self.settings.exports_dir / job.id, ignore_errors=True)

    # --- reading ------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict | None:
        row = self.runner.get(job_id)
        if row is None or row.kind != EXPORT:
            return None
        tz = self.settings.tz
        files = (row.result or {}).get("files", [])
        return {
            "id": row.id,
            "cameras": row.params["cameras"],
            "from": format_time(row.params["start_us"], tz),
            "to": format_time(row.params["end_us"], tz),
            "status": row.status,
            "progress": row.progress,
            "files": [{k: v for k, v in f.items() if k != "path"} | {"name": Path(f["path"]).name,
                                                                      "download_name": download_name(f, tz)}
                      for f in files],
            "error": row.error,
            "node": row.node,
            "attempts": row.attempts,
            "created": format_time(row.created_us, tz),
            "finished": format_time(row.finished_us, tz) if row.finished_us else None,
        }

    def file_location(self, job_id: str, name: str) -> tuple[str, str] | None:
        """(node, path in its exports area) of a finished export's file."""
        row = self.runner.get(job_id)
        if row is None or row.kind != EXPORT or row.status != "done":
            return None
        for f in (row.result or {}).get("files", []):
            if Path(f["path"]).name == name:
                rel = f["path"]
                if Path(rel).is_absolute():  # a job from before the cluster: an absolute path here
                    rel = str(Path(rel).relative_to(self.settings.exports_dir))
                return row.node, rel
        return None


def download_name(f: dict, tz) -> str:
    """The name a browser saves an export file under: the camera and the interval it holds,
    in the city's time (``mel-0042_2026-12-03_101500-103000.mp4``), so a second export of the
    same camera does not overwrite the first in the downloads folder."""
    from datetime import datetime

    try:
        a = datetime.fromisoformat(f["start"]).astimezone(tz)
        b = datetime.fromisoformat(f["end"]).astimezone(tz)
    except (KeyError, TypeError, ValueError):
        return Path(f["path"]).name
    day = a.strftime("%Y-%m-%d")
    end = b.strftime("%H%M%S") if b.date() == a.date() else b.strftime("%Y-%m-%d_%H%M%S")
    return f"{f.get('camera_id') or Path(f['path']).stem}_{day}_{a.strftime('%H%M%S')}-{end}{Path(f['path']).suffix}"
