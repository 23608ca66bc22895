"""Export jobs for the HTTP API: queued in the database, run in the background.

The job row (status, progress, files) is the only shared state, so any web node can report
on a job that another node runs, and a restarted node marks its interrupted jobs failed
instead of leaving them "running" for ever.
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from sqlalchemy import insert, select, update

from varta.clock import format_time, now_us
from varta.db.schema import exports
from varta.playback.export import ExportError, export_cameras
from varta.recording.index import ArchiveIndex

log = logging.getLogger("varta.export")


class ExportJobs:
    def __init__(self, engine, settings, ffmpeg: str, node: str):
        self.engine = engine
        self.settings = settings
        self.ffmpeg = ffmpeg
        self.node = node
        self.index = ArchiveIndex(engine)
        with engine.begin() as conn:
            conn.execute(
                update(exports)
                .where(exports.c.node == node, exports.c.status.in_(("queued", "running")))
                .values(status="failed", error="interrupted: the server restarted during the export",
                        finished_us=now_us())
            )

    def create(self, camera_ids: list[str], t1: int, t2: int) -> str:
        job_id = secrets.token_hex(8)
        out = self.settings.exports_dir / job_id
        with self.engine.begin() as conn:
            conn.execute(insert(exports).values(
                id=job_id, cameras=camera_ids, start_us=t1, end_us=t2, status="queued", progress=0.0,
                out_path=str(out), files=[], error="", node=self.node, created_us=now_us(),
            ))
        threading.Thread(target=self._run, args=(job_id, camera_ids, t1, t2, out), name=f"export-{job_id}",
                         daemon=True).start()
        return job_id

    def _set(self, job_id: str, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(exports).where(exports.c.id == job_id).values(**values))

    def _run(self, job_id: str, camera_ids: list[str], t1: int, t2: int, out: Path) -> None:
        self._set(job_id, status="running")
        last = [0.0]

        def progress(p: float) -> None:
            if p - last[0] >= 0.01 or p >= 1.0:  # at most ~100 writes per job
                last[0] = p
                self._set(job_id, progress=round(p, 3))

        try:
            files = export_cameras(self.index, self.settings.recordings_dir, self.ffmpeg, camera_ids, t1, t2, out,
                                   self.settings.tz, progress)
        except ExportError as exc:
            self._set(job_id, status="failed", error=str(exc), finished_us=now_us())
            return
        except Exception as exc:  # a bug must still end the job visibly
            log.exception("export %s failed", job_id)
            self._set(job_id, status="failed", error=f"internal error: {exc}", finished_us=now_us())
            return
        self._set(job_id, status="done", progress=1.0, files=[f.to_dict() for f in files], finished_us=now_us())

    def get(self, job_id: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(exports).where(exports.c.id == job_id)).first()
        if row is None:
            return None
        tz = self.settings.tz
        return {
            "id": row.id,
            "cameras": row.cameras,
            "from": format_time(row.start_us, tz),
            "to": format_time(row.end_us, tz),
            "status": row.status,
            "progress": row.progress,
            "files": [{k: v for k, v in f.items() if k != "path"} | {"name": Path(f["path"]).name}
                      for f in row.files],
            "error": row.error,
            "created": format_time(row.created_us, tz),
            "finished": format_time(row.finished_us, tz) if row.finished_us else None,
        }

    def file_path(self, job_id: str, name: str) -> Path | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(exports).where(exports.c.id == job_id)).first()
        if row is None or row.status != "done":
            return None
        for f in row.files:
            if Path(f["path"]).name == name:
                return Path(f["path"])
        return None
