"""One journal line per viewed interval of the archive (A4.3, A4.5).

A player fetches a recording segment by segment (10 s each): journaling every fetch wrote
15 lines for 30 s of playback. Instead, what a viewer (a session or a token) plays of one
camera is an *open viewing* in the database — extended by each segment that continues it —
and becomes one journal line when it ends: the viewer moves elsewhere in the recording, or
stops fetching for ``idle_s``. The open viewing is stored before any video leaves (a fetch
that cannot be recorded is refused), so a crash loses nothing: whichever web node sweeps
next journals the interrupted viewing.

``continues`` is the rule (pure); ``ArchiveViewings`` the adapter.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete, insert, select, update

from varta.access.journal import Entry
from varta.clock import US, format_time, now_us
from varta.db.schema import archive_views

log = logging.getLogger(__name__)


def continues(view_from: int, view_to: int, seg_from: int, seg_to: int, slack_us: int) -> bool:
    """Does a segment belong to the interval being viewed? Yes when it overlaps it or starts
    within ``slack_us`` after it (the next segment, a prefetch); a jump elsewhere in the
    recording — also over a gap longer than the slack — is a new interval."""
    return seg_to >= view_from - slack_us and seg_from <= view_to + slack_us


def describe(view_from: int, view_to: int, segments: int, tz) -> str:
    return (f"viewed {format_time(view_from, tz)} – {format_time(view_to, tz)} "
            f"({segments} segment{'s' if segments != 1 else ''})")


class ArchiveViewings:
    def __init__(self, engine, journal, tz, segment_seconds: float, idle_s: float = 30.0):
        self.engine, self.journal, self.tz = engine, journal, tz
        self.slack_us = int(2 * segment_seconds * US)
        # Longer than the player's pause between fetches (one per segment while playing).
        self.idle_us = int(max(idle_s, 1.5 * segment_seconds) * US)

    def served(self, who, viewer: str, camera_id: str, seg_from: int, seg_to: int) -> None:
        """Record that ``viewer`` is sent a segment; closes (journals) the viewer's previous
        interval of this camera when the segment does not continue it. Raises if it cannot
        be recorded: the caller must not send the video then."""
        now = now_us()
        ended = []
        with self.engine.begin() as conn:
            rows = conn.execute(select(archive_views).where(archive_views.c.viewer == viewer,
                                                            archive_views.c.camera_id == camera_id)).all()
            current = None
            for r in rows:
                if current is None and continues(r.from_us, r.to_us, seg_from, seg_to, self.slack_us):
                    current = r
                else:
                    ended.append(r)
            if current is not None:
                grew = seg_from < current.from_us or seg_to > current.to_us
                conn.execute(update(archive_views).where(archive_views.c.id == current.id).values(
                    from_us=min(current.from_us, seg_from), to_us=max(current.to_us, seg_to),
                    segments=current.segments + (1 if grew else 0), touched_us=now))
            else:
                conn.execute(insert(archive_views).values(
                    viewer=viewer, camera_id=camera_id, account=who.login, full_name=who.full_name, role=who.role,
                    source=who.source, access=who.access, from_us=seg_from, to_us=seg_to, segments=1,
                    opened_us=now, touched_us=now))
        for r in ended:
            self._close(r)

    def sweep(self, now: int | None = None) -> int:
        """Journal the viewings nobody has extended for ``idle_s`` (also those a stopped or
        killed node left open); returns how many."""
        cutoff = (now or now_us()) - self.idle_us
        with self.engine.connect() as conn:
            rows = conn.execute(select(archive_views).where(archive_views.c.touched_us < cutoff)).all()
        return sum(self._close(r) for r in rows)

    def close_all(self, viewer: str) -> int:
        """A viewer signs out: its open viewings end now."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(archive_views).where(archive_views.c.viewer == viewer)).all()
        return sum(self._close(r) for r in rows)

    def _close(self, r) -> bool:
        # Whoever deletes the row journals it: two sweeping nodes never write it twice.
        with self.engine.begin() as conn:
            if not conn.execute(delete(archive_views).where(archive_views.c.id == r.id)).rowcount:
                return False
        entry = Entry(account=r.account, full_name=r.full_name, role=r.role, source=r.source, access=r.access,
                      action="archive.play", object=f"camera:{r.camera_id}",
                      detail=describe(r.from_us, r.to_us, r.segments, self.tz))
        try:
            self.journal.append(entry)
        except Exception:
            # Put it back: the next sweep tries again (the line must not be lost).
            with self.engine.begin() as conn:
                conn.execute(insert(archive_views).values({c.name: getattr(r, c.name) for c in archive_views.c}))
            raise
        return True


class ViewingSweeper:
    """A web node's background sweep, every few seconds."""

    def __init__(self, viewings: ArchiveViewings, every_s: float = 5.0):
        self.viewings, self.every_s = viewings, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="archive-viewings", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.viewings.sweep()
            except Exception:
                log.warning("could not journal finished archive viewings; retrying", exc_info=True)

    def halt(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.viewings.sweep()
        except Exception:
            log.warning("could not journal finished archive viewings at shutdown", exc_info=True)
