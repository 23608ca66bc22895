"""Holds enforced by the bucket itself: S3 Object Lock legal holds follow Varta's holds (adapter).

Varta's holds (A4.6: an instruction of the mayor or a deputy, a request being answered)
are rows in ``holds``. Where the archive bucket has Object Lock, every shipped segment
overlapping an active hold carries a legal hold, so that nobody — not a leaked storage key,
not an administrator, not Varta's own credentials — can delete that version until the
destruction instruction is entered in Varta, which releases the row and, at the next pass,
the legal hold. ``segments.locked`` remembers which objects carry one.

One node does this for the whole city (the ``archive_holds`` duty, a lease): every few
seconds it locks what active holds cover and is not yet locked (footage shipped since the
hold was placed included: an open hold keeps locking new segments), and unlocks what is
locked but no longer covered. Retention never asks to delete a held segment, and a segment
whose hold was released is unlocked before it can expire (10 days at least).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import select, update

from varta.db.schema import holds, segments
from varta.storage import layout
from varta.storage.objects import S3Store, StoreError

log = logging.getLogger("varta.storage")

MAX_SEGMENT_US = 15 * 60 * 1_000_000  # no segment is longer (recording/index.py): bounds the scans
BATCH = 500


@dataclass
class SyncReport:
    locked: int = 0
    unlocked: int = 0
    failed: int = 0


def _held(seg, by_camera: dict[str, list[tuple[int, int]]]) -> bool:
    """Any part of the segment overlaps an active hold (the rule retention keeps by)."""
    return any(seg.start_us < e and s < seg.end_us for s, e in by_camera.get(seg.camera_id, ()))


class LegalHolds:
    def __init__(self, engine, store: S3Store, every_s: float = 5.0):
        self.engine = engine
        self.store = store
        self.every_s = every_s
        self._last = 0.0
        self._lock_on: bool | None = None  # does the bucket have Object Lock (asked once a minute)
        self._asked = 0.0
        self._unlocked_for: frozenset | None = None  # the active holds the last unlock pass saw

    def tick(self) -> None:
        """The duty's tick (every cluster tick): a pass every ``every_s``."""
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        self._last = now
        if self._lock_on is None or now - self._asked > 60:
            info = self.store.check()
            if info.reachable:
                self._lock_on, self._asked = info.object_lock, now
        if self._lock_on:
            self.sync()

    def sync(self) -> SyncReport:
        rep = SyncReport()
        with self.engine.connect() as conn:
            active = conn.execute(select(holds.c.id, holds.c.camera_id, holds.c.start_us, holds.c.end_us)
                                  .where(holds.c.released_us.is_(None))).all()
        by_camera: dict[str, list[tuple[int, int]]] = {}
        for h in active:
            by_camera.setdefault(h.camera_id, []).append((h.start_us, h.end_us))
        # 1. What active holds cover and the bucket does not protect yet.
        for camera_id, spans in by_camera.items():
            for start, end in spans:
                with self.engine.connect() as conn:
                    rows = conn.execute(
                        select(segments.c.id, segments.c.camera_id, segments.c.path)
                        .where(segments.c.camera_id == camera_id, segments.c.start_us < end,
                               segments.c.start_us > start - MAX_SEGMENT_US, segments.c.end_us > start,
                               segments.c.stored.in_(layout.IN_BUCKET), segments.c.locked.is_(False))
                        .limit(BATCH)).all()
                self._set(rows, True, rep)
        # 2. What is locked and no longer covered (a destruction instruction released it):
        #    looked at only when the active holds changed (nothing else unlocks anything).
        ids = frozenset(h.id for h in active)
        if ids == self._unlocked_for and not rep.failed:
            return self._logged(rep)
        with self.engine.connect() as conn:
            locked = conn.execute(select(segments.c.id, segments.c.camera_id, segments.c.path,
                                         segments.c.start_us, segments.c.end_us)
                                  .where(segments.c.locked.is_(True))).all()
        self._set([r for r in locked if not _held(r, by_camera)], False, rep)
        if not rep.failed:
            self._unlocked_for = ids
        return self._logged(rep)

    @staticmethod
    def _logged(rep: SyncReport) -> SyncReport:
        if rep.locked or rep.unlocked:
            log.info("archive holds: %d object(s) placed under legal hold, %d released", rep.locked, rep.unlocked)
        return rep

    def _set(self, rows, on: bool, rep: SyncReport) -> None:
        done = []
        for r in rows:
            try:
                self.store.set_legal_hold(layout.segment_key(r.camera_id, r.path), on)
            except StoreError as exc:
                if exc.status == 404 or exc.code in ("NoSuchKey", "NoSuchVersion"):
                    done.append(r.id)  # gone from the bucket: nothing to protect or release
                    continue
                rep.failed += 1
                log.error("archive holds: cannot %s the legal hold of %s/%s: %s", "place" if on else "lift",
                          r.camera_id, r.path, exc)
                continue
            done.append(r.id)
        for i in range(0, len(done), 500):
            with self.engine.begin() as conn:
                conn.execute(update(segments).where(segments.c.id.in_(done[i:i + 500])).values(locked=on))
        if on:
            rep.locked += len(done)
        else:
            rep.unlocked += len(done)
