"""Shipping a recorder's finished segments to the city's bucket (adapter).

One thread per recording node. Each pass takes the node's oldest segments that are only on
its disk (``stored = 'local'``), uploads each (its SHA-256 computed from the bytes sent,
kept in the object's metadata and, once the object is read back and matches, in the
index), and marks it ``both``. The janitor later releases local copies older than the
cache time (``s3``). The index row is the only "done" mark: a node killed mid-upload finds
the segment still ``local`` when it starts again and ships it again (the same key, so the
bucket ends with one object per segment).

When the store is unreachable or refuses, recording goes on to the local disk, an alarm
says so, and the backlog (seconds behind, bytes waiting) grows and is shown; once the store
answers again the backlog drains oldest first. A segment a planned move trimmed after it
was shipped is ``local`` again and is shipped again (docs/design/storage.md).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update

from varta.clock import now_us
from varta.db.schema import segments
from varta.storage import layout
from varta.storage.files import sha256_file
from varta.storage.objects import S3Store, StoreError

log = logging.getLogger("varta.storage")

BATCH = 32
# A segment is shipped once it ended this long ago: a planned move may still cut the newest
# segment of a camera short (recording/trim.py) within a tick or two of the cut; shipping it
# before would leave the untrimmed bytes in the bucket as an older version.
SHIP_AFTER_US = 10_000_000
WATCH_S = 2.0  # how often the backlog is measured and a stalled upload looked for
STALLED_S = 10.0  # an upload unanswered (or failing) this long: the store is away, alarmed


@dataclass
class Backlog:
    segments: int
    bytes: int
    oldest_end_us: int | None

    def seconds(self, now: int | None = None) -> float:
        return layout.backlog_seconds(self.oldest_end_us, now or now_us())

    def as_dict(self) -> dict:
        return {"backlog_segments": self.segments, "backlog_bytes": self.bytes,
                "backlog_s": round(self.seconds(), 1)}


def _backlog_query():
    """Segments due in the bucket and not there yet; the newest ``SHIP_AFTER_US`` of footage
    is not due yet."""
    return select(func.count(), func.coalesce(func.sum(segments.c.bytes), 0), func.min(segments.c.end_us)) \
        .where(segments.c.stored == layout.LOCAL, segments.c.status != "missing",
               segments.c.end_us < now_us() - SHIP_AFTER_US)


def backlog(engine, node: str | None = None) -> Backlog:
    """One node's backlog, or the whole city's."""
    q = _backlog_query()
    if node is not None:
        q = q.where(segments.c.recorder == node)
    with engine.connect() as conn:
        n, b, oldest = conn.execute(q).one()
    return Backlog(int(n), int(b), oldest)


def backlog_by_node(engine) -> dict[str, Backlog]:
    """Every node's backlog, in one query."""
    q = _backlog_query().add_columns(segments.c.recorder).group_by(segments.c.recorder)
    with engine.connect() as conn:
        return {r[3]: Backlog(int(r[0]), int(r[1]), r[2]) for r in conn.execute(q)}


class Shipper:
    def __init__(self, engine, settings, node: str, store: S3Store, alarms=None):
        self.engine = engine
        self.settings = settings
        self.node = node
        self.store = store
        self.root = Path(settings.recordings_dir)
        self.alarms = alarms  # SystemAlarms of this node, or None
        self.shipped = 0
        self.shipped_bytes = 0
        self.failing_since: float | None = None
        self.last_error = ""
        self.last_backlog = Backlog(0, 0, None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: threading.Thread | None = None
        self._busy_since: float | None = None  # an upload in flight since (monotonic)
        self.missing: set[int] = set()  # indexed, not on the disk: left to reconcile
        self._look_first_upto = 0

    # --- life -------------------------------------------------------------------------
    def prepare_restart(self) -> None:
        """Segments waiting from before this start may be in the bucket already (the node
        died between the upload and the index update): those are looked up first."""
        with self.engine.connect() as conn:
            self._look_first_upto = conn.execute(
                select(func.coalesce(func.max(segments.c.id), 0))
                .where(segments.c.recorder == self.node, segments.c.stored == layout.LOCAL)).scalar()

    def start(self) -> "Shipper":
        if self.alarms is not None and self.alarms.active("archive_unreachable"):
            # Raised before this start (the node died while the store was away): cleared by
            # the first segment shipped now.
            self.failing_since = time.monotonic()
        self.prepare_restart()
        self._thread = threading.Thread(target=self._loop, name="shipper", daemon=True)
        self._thread.start()
        # The watch runs apart: an upload hanging on a store that does not answer must not
        # hide the backlog or delay the alarm.
        self._watch = threading.Thread(target=self._watch_loop, name="shipper-watch", daemon=True)
        self._watch.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in (self._thread, self._watch):
            if t:
                t.join(timeout=15)

    def wake(self) -> None:
        """A segment was indexed: ship it now rather than at the next pass."""
        self._wake.set()

    def _watch_loop(self) -> None:
        while not self._stop.wait(WATCH_S):
            busy = self._busy_since
            if busy is not None and time.monotonic() - busy >= STALLED_S and self.failing_since is None:
                self._failed(StoreError(f"an upload to {self.store.cfg.where()} has had no answer for "
                                        f"{time.monotonic() - busy:.0f} s", transient=True), since=busy)
            elif self.failing_since is not None:
                self._failed(None)  # raise the alarm once it has failed long enough
            self._check_backlog()

    def _loop(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                n = self.run_once()
                delay = 1.0
            except StoreError as exc:
                self._failed(exc)
                n = 0
                delay = min(delay * 2, 30.0)
            except Exception:  # noqa: BLE001 - a bug must not stop shipping for good
                log.exception("archive shipping pass failed; retrying")
                n = 0
                delay = min(delay * 2, 30.0)
            if n >= BATCH:
                continue  # more waiting: go on at once
            self._wake.wait(delay)
            self._wake.clear()

    # --- one pass ---------------------------------------------------------------------
    def run_once(self, max_rows: int = BATCH, upto_id: int | None = None, min_age_us: int = SHIP_AFTER_US) -> int:
        """Ship up to one batch (of the segments indexed up to ``upto_id`` that ended at least
        ``min_age_us`` ago); returns how many segments were shipped."""
        q = (select(segments.c.id, segments.c.camera_id, segments.c.path, segments.c.bytes)
             .where(segments.c.recorder == self.node, segments.c.stored == layout.LOCAL,
                    segments.c.status != "missing", segments.c.id.not_in(self.missing or [-1]),
                    segments.c.end_us < now_us() - min_age_us)
             .order_by(segments.c.id).limit(max_rows))
        if upto_id is not None:
            q = q.where(segments.c.id <= upto_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        done = 0
        for r in rows:
            if self._stop.is_set():
                break
            path = self.root / r.camera_id / r.path
            if not path.is_file():
                if r.id not in self.missing:
                    self.missing.add(r.id)
                    log.error("archive: %s/%s is indexed but not on this node's disk; not shipped "
                              "(reconcile marks it missing)", r.camera_id, r.path)
                continue
            key = layout.segment_key(r.camera_id, r.path)
            self._busy_since = time.monotonic()
            try:
                info = self._already_there(r, key, path) if r.id <= self._look_first_upto else None
                if info is None:
                    info = self.store.put_file(key, path)
            finally:
                self._busy_since = None
            with self.engine.begin() as conn:
                # Only if the row is as read: a planned move may have trimmed the segment
                # meanwhile (then it is shipped again, trimmed, on the next pass).
                res = conn.execute(update(segments)
                                   .where(segments.c.id == r.id, segments.c.stored == layout.LOCAL,
                                          segments.c.bytes == info.size)
                                   .values(stored=layout.BOTH, sha256=info.sha256))
            if res.rowcount:
                done += 1
                self.shipped += 1
                self.shipped_bytes += info.size
        if done:
            self._recovered()
        return done

    def _already_there(self, r, key: str, path: Path):
        """The object, when the bucket already has this very file (same size and SHA-256)."""
        got = self.store.head(key)
        if got is None or got.size != path.stat().st_size:
            return None
        return got if got.sha256 == sha256_file(path) else None

    # --- health -----------------------------------------------------------------------
    def _failed(self, exc: StoreError | None, since: float | None = None) -> None:
        """Shipping fails (``exc``), or goes on failing (None): alarmed after ``STALLED_S``."""
        if exc is not None:
            self.last_error = str(exc)
        if self.failing_since is None:
            if exc is None:
                return
            self.failing_since = since or time.monotonic()
            log.error("archive: cannot ship to %s: %s; recording goes on to the local disk",
                      self.store.cfg.where(), exc)
        if self.alarms is not None and time.monotonic() - self.failing_since >= STALLED_S:
            exc = exc or StoreError(self.last_error)
            self.alarms.raise_once("archive_unreachable", "critical",
                                   f"the archive store {self.store.cfg.where()} does not take segments: "
                                   f"{exc}. Recording goes on to this node's disk; what is waiting is "
                                   f"shipped when the store answers again")

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.info("archive: %s answers again; shipping the backlog", self.store.cfg.where())
            self.failing_since = None
            self.last_error = ""
            if self.alarms is not None:
                self.alarms.clear("archive_unreachable")

    def _check_backlog(self) -> None:
        try:
            self.last_backlog = backlog(self.engine, self.node)
        except Exception:  # noqa: BLE001 - the database may be away for a moment
            return
        if self.alarms is None:
            return
        behind = self.last_backlog.seconds()
        limit = self.settings.archive_backlog_alarm_s
        if behind > limit:
            self.alarms.raise_once("archive_backlog", "warning",
                                   f"shipping to the archive store is {behind:.0f} s behind "
                                   f"({self.last_backlog.segments} segments, "
                                   f"{self.last_backlog.bytes / 1e6:.0f} MB wait on this node's disk)")
        elif behind < limit / 2:
            self.alarms.clear("archive_backlog")

    def status(self) -> dict:
        """For the Nodes page and monitoring (published with the heartbeat)."""
        out = self.last_backlog.as_dict() | {"shipped": self.shipped, "shipped_bytes": self.shipped_bytes,
                                             "state": "failing" if self.failing_since is not None else "ok"}
        if self.last_error:
            out["error"] = self.last_error
        return out


def archive_status(settings, engine, store: S3Store | None) -> dict:
    """Where the archive is, what protects held footage, and the backlog (whole city and
    per node): ``varta storage status`` and ``/api/system/archive``."""
    from varta.cluster.nodes import NodeRegistry

    from varta.db import partitions

    out: dict = {"backend": settings.archive_storage, "object_lock": False}
    index = partitions.summary(engine)
    if index is not None:
        out["index"] = index
    if store is not None:
        info = store.check()
        out |= {"bucket": store.cfg.bucket, "endpoint": store.cfg.endpoint_url or f"AWS S3 ({store.cfg.region})",
                "prefix": store.cfg.prefix, "reachable": info.reachable, "object_lock": info.object_lock,
                "versioning": info.versioning}
        if info.detail:
            out["error"] = info.detail
        out["holds_protected_by"] = ("the bucket (S3 Object Lock legal holds)" if info.object_lock else
                                     "Varta's database only (the bucket has no Object Lock)" if info.reachable
                                     else "unknown: the bucket cannot be reached")
    else:
        # Every segment stays on its recorder's disk: nothing is waiting to be shipped (and
        # counting "not shipped" would count the whole archive).
        out["holds_protected_by"] = "Varta's database and each node's disk"
        return out | Backlog(0, 0, None).as_dict() | {"nodes": []}
    per_node = backlog_by_node(engine)
    total = Backlog(sum(b.segments for b in per_node.values()), sum(b.bytes for b in per_node.values()),
                    min((b.oldest_end_us for b in per_node.values()), default=None))
    out |= total.as_dict()
    nodes = []
    for node_id, name in sorted(NodeRegistry(engine).names().items(), key=lambda kv: kv[1]):
        nodes.append({"node": name, "id": node_id} | per_node.get(node_id, Backlog(0, 0, None)).as_dict())
    out["nodes"] = nodes
    return out
