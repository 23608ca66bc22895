"""Files by (node, area, relative path), readable from any node (adapter).

Every file Varta serves was written by one node into one of its areas: ``recordings``
(segments), ``events`` (alarm pictures), ``exports`` and ``packages``. Rows in the database
name the node (``segments.recorder``, ``events.worker``, ``jobs.node``); this module turns
that into a local path on that node, or a signed request to it from any other
(``/internal/files/<area>/<path>`` on the node's internal API, varta/node/internal.py).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from varta.storage import layout

AREAS = ("recordings", "events", "exports", "packages")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB pieces (the one file-hash helper)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class FileUnavailable(RuntimeError):
    """The file exists in the index but cannot be read now (its node is down, or it vanished)."""


def area_root(settings, area: str) -> Path:
    roots = {"recordings": settings.recordings_dir, "events": settings.events_dir,
             "exports": settings.exports_dir, "packages": settings.evidence_dir / "packages"}
    if area not in roots:
        raise ValueError(f"no file area {area!r}")
    return roots[area]


def safe_join(root: Path, rel: str) -> Path:
    """``root/rel``, refusing anything that would leave ``root``."""
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("..", "") for part in p.parts):
        raise ValueError(f"bad file path {rel!r}")
    return Path(root) / p


class NodeFiles:
    def __init__(self, settings, node_id: str | None = None, peers=None, store=None):
        self.settings = settings
        self.node_id = node_id
        self.peers = peers
        self.store = store  # the archive bucket (storage/objects.S3Store), or None
        self._publisher = None

    # --- pictures, exports and packages in the bucket ------------------------------------
    @property
    def publisher(self):
        if self._publisher is None and self.store is not None:
            from varta.storage.publish import Publisher

            self._publisher = Publisher(self, self.store)
        return self._publisher

    def publish(self, area: str, rel: str, wait: bool = False) -> None:
        """A finished file of this node (``area`` events|exports|packages) goes to the bucket
        too, when the city has one, so any node can serve it (storage/publish.py)."""
        if self.publisher is None:
            return
        if wait:
            self.publisher.put_now(area, rel)
        else:
            self.publisher.submit(area, rel)

    def unpublish(self, area: str, rels: list[str]) -> dict[str, str]:
        """Delete these files' objects (retention of alarm pictures); returns those kept."""
        if self.store is None or not rels:
            return {}
        return self.store.delete_many([layout.file_key(area, r) for r in rels])

    def file_in_bucket(self, area: str, rel: str) -> str | None:
        """The key a file would have in the bucket (None: no bucket, or a segment's area)."""
        if self.store is None or area not in layout.AREAS_IN_BUCKET:
            return None
        return layout.file_key(area, rel)

    def local(self, area: str, rel: str) -> Path:
        return safe_join(area_root(self.settings, area), rel)

    def here(self, node_id: str | None, area: str, rel: str) -> Path | None:
        """The local path when the file is on this node's disk."""
        path = self.local(area, rel)
        if node_id in (None, "", self.node_id) or self.peers is None or path.is_file():
            return path
        return None

    @staticmethod
    def internal_path(area: str, rel: str) -> str:
        return f"/internal/files/{area}/{quote(rel)}"

    def fetch(self, node_id: str, area: str, rel: str, dest: Path) -> Path:
        """A local copy of another node's file: from the bucket when it is there, else from
        that node."""
        from varta.cluster.peer import PeerError

        key = self.file_in_bucket(area, rel)
        if key is not None:
            from varta.storage.objects import StoreError

            try:
                return self.store.download(key, dest)
            except (FileNotFoundError, StoreError):
                pass  # not published (yet), or the store is away: ask the node that wrote it
        if self.peers is None:
            raise FileUnavailable(f"{area}/{rel} is on node {node_id}, and this command cannot reach other nodes")
        try:
            return self.peers.fetch_to(node_id, self.internal_path(area, rel), dest)
        except PeerError as exc:
            raise FileUnavailable(str(exc)) from None

    # --- segments ---------------------------------------------------------------------------
    def segment_rel(self, seg) -> str:
        return f"{seg.camera_id}/{seg.path}"

    def segment_here(self, seg) -> Path | None:
        """The segment's file on this node's disk, if it is here."""
        path = self.local("recordings", self.segment_rel(seg))
        if seg.recorder in (None, "", self.node_id) or self.peers is None:
            return path if getattr(seg, "stored", layout.LOCAL) != layout.S3 or path.is_file() else None
        return path if path.is_file() else None

    def segment_in_bucket(self, seg) -> str | None:
        """The segment's key in the archive bucket when it was shipped there (and this node
        can reach the bucket)."""
        if self.store is not None and getattr(seg, "stored", layout.LOCAL) in layout.IN_BUCKET:
            return layout.segment_key(seg.camera_id, seg.path)
        return None

    @contextmanager
    def reading(self, scratch_parent: Path | None = None):
        """A context in which :meth:`segment` may copy other nodes' segments to a scratch
        folder, removed at the end (an export reads each segment once)."""
        reader = SegmentReader(self, scratch_parent)
        try:
            yield reader
        finally:
            reader.close()


class LocalSegments:
    """Segments read straight from one recordings folder (a single machine, or a test)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def segment(self, seg) -> Path:
        path = self.root / seg.camera_id / seg.path
        if getattr(seg, "stored", layout.LOCAL) == layout.S3 and not path.is_file():
            raise FileUnavailable(f"{seg.camera_id}/{seg.path} is only in the archive bucket")
        return path


def segment_reader(source) -> "SegmentReader | LocalSegments":
    """A recordings folder or a reader: what exporters accept as their source of segments."""
    return LocalSegments(Path(source)) if isinstance(source, (str, Path)) else source


class SegmentReader:
    PREFETCH = 6  # ranged GETs in flight while an export or a package reads from the bucket

    def __init__(self, files: NodeFiles, scratch_parent: Path | None):
        import threading

        self.files = files
        self._scratch_parent = scratch_parent
        self._scratch: Path | None = None
        self._lock = threading.Lock()
        self._pool = None
        self._pending: dict = {}  # segment id → Future of its copy from the bucket

    def segment(self, seg) -> Path:
        """A readable local path of the segment's file (copied here if another node has it)."""
        fut = self._pending.pop(seg.id, None)
        if fut is not None:
            return fut.result()
        with self._lock:
            return self._segment(seg)

    def prefetch(self, segs) -> None:
        """Start copying from the bucket, several at once and in order, the segments about to
        be read (one GET at a time would leave the link idle between objects)."""
        todo = [s for s in segs if s.id not in self._pending and self.files.segment_here(s) is None
                and self.files.segment_in_bucket(s) is not None]
        if not todo:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.PREFETCH, thread_name_prefix="segment-get")
        with self._lock:
            self._ensure_scratch()
        for s in todo:
            self._pending[s.id] = self._pool.submit(self._from_bucket, s)

    def _ensure_scratch(self) -> Path:
        if self._scratch is None:
            parent = self._scratch_parent or self.files.settings.home / "cache"
            parent.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix="segments-", dir=parent))
        return self._scratch

    def _from_bucket(self, seg) -> Path:
        from varta.storage.objects import StoreError

        rel = self.files.segment_rel(seg)
        dest = self._ensure_scratch() / rel
        if dest.is_file():
            return dest
        try:  # checked against the index: an object changed in the bucket is refused
            return self.files.store.download(self.files.segment_in_bucket(seg), dest, sha256=seg.sha256)
        except (StoreError, FileNotFoundError) as exc:
            raise FileUnavailable(f"{rel}: {exc}") from None

    def _segment(self, seg) -> Path:
        rel = self.files.segment_rel(seg)
        local = self.files.segment_here(seg)
        if local is not None:
            if not local.is_file():
                raise FileUnavailable(f"{rel} is indexed but missing on disk")
            return local
        dest = self._ensure_scratch() / rel
        if dest.is_file():
            return dest
        if self.files.segment_in_bucket(seg) is not None:
            return self._from_bucket(seg)
        if getattr(seg, "stored", layout.LOCAL) == layout.S3:
            raise FileUnavailable(f"{rel} is only in the archive bucket, which this node is not set up to read "
                                  "(archive_storage = s3 and its settings)")
        self.files.fetch(seg.recorder, "recordings", rel, dest)
        return dest

    def close(self) -> None:
        if self._pool is not None:
            for fut in self._pending.values():
                fut.cancel()
            self._pool.shutdown(wait=True)
            self._pool, self._pending = None, {}
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
