"""Alarm pictures, exports and evidence packages copied to the archive bucket (adapter).

A node writes such a file on its own disk (an analytics worker its pictures, a web node's
job runner an export or a package). Where the city has a bucket, the file is also put
there, under ``files/<area>/<path>``, so that any web node can serve it when the node that
wrote it is busy, gone or dead. The upload runs on a thread of its own, so the worker or
job never waits on the store; a store that is away is retried with backoff (≤ 5 min) while
the process lives. Until a file is in the bucket it is served from the node that wrote it,
as without a bucket (varta/web/files_http.py), so a failed upload loses nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from varta.storage import layout
from varta.storage.objects import S3Store, StoreError

log = logging.getLogger("varta.storage")

CONTENT_TYPES = {".jpg": "image/jpeg", ".mp4": "video/mp4", ".zip": "application/zip", ".pdf": "application/pdf",
                 ".json": "application/json"}


def content_type(rel: str) -> str:
    return next((t for ext, t in CONTENT_TYPES.items() if rel.endswith(ext)), "application/octet-stream")


class Publisher:
    """One thread per process that puts finished files into the bucket."""

    MAX_WAITING = 10_000  # files queued while the store is away; more are served from the node only
    MAX_BACKOFF_S = 300.0

    def __init__(self, files, store: S3Store):
        self.files = files  # varta.storage.files.NodeFiles (the local path of an area's file)
        self.store = store
        self._q: queue.Queue = queue.Queue(self.MAX_WAITING)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.published = 0
        self.failed_once = 0
        self._lock = threading.Lock()

    def submit(self, area: str, rel: str) -> None:
        layout.file_key(area, rel)  # a bad path is refused here, not in the thread
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="publish", daemon=True)
                self._thread.start()
        try:
            self._q.put_nowait((area, rel, 0.0))
        except queue.Full:
            log.warning("archive: %s/%s stays on this node only (%d files wait for the bucket already)",
                        area, rel, self.MAX_WAITING)

    def put_now(self, area: str, rel: str) -> bool:
        """Upload at once (a job that has just finished its file); False when the store
        refused or is away (the file is then retried in the background)."""
        try:
            self._put(area, rel)
            return True
        except StoreError as exc:
            log.warning("archive: %s/%s not in the bucket yet (%s); retried in the background", area, rel, exc)
            self.submit(area, rel)
            return False
        except FileNotFoundError:
            return False

    def _put(self, area: str, rel: str) -> None:
        self.store.put_file(layout.file_key(area, rel), self.files.local(area, rel), content_type(rel))
        self.published += 1

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued file was tried at least once (tests, a clean stop)."""
        end = time.monotonic() + timeout
        while self._q.unfinished_tasks and time.monotonic() < end:
            time.sleep(0.05)
        return not self._q.unfinished_tasks

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                area, rel, not_before = self._q.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                wait = not_before - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                self._put(area, rel)
                backoff = 1.0
            except FileNotFoundError:
                pass  # deleted meanwhile (retention): nothing to publish
            except StoreError as exc:
                self.failed_once += 1
                if self.failed_once == 1 or backoff >= self.MAX_BACKOFF_S:
                    log.warning("archive: cannot put %s/%s into the bucket (%s); retrying", area, rel, exc)
                try:
                    self._q.put_nowait((area, rel, time.monotonic() + backoff))
                except queue.Full:
                    pass
                backoff = min(self.MAX_BACKOFF_S, backoff * 2)
            except Exception:
                log.exception("archive: publishing %s/%s failed", area, rel)
            finally:
                self._q.task_done()
