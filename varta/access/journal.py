"""The access journal: append-only, hash-chained, with published heads (A4.3, C4, R11).

Each line holds the SHA-256 of the line before it::

    canonical(line) = JSON array [seq, time_us, account, full_name, role, source, access,
                                  action, object, result, detail]
                      (UTF-8, no spaces: separators "," and ":", non-ASCII kept as is)
    hash(line)      = sha256(prev_hash + canonical(line)), hex; prev_hash of line 1 = 64 × "0"

so editing, inserting, deleting or reordering any line breaks the chain at that line, and
``verify`` names it. Someone who rewrites the whole chain after an edit, or cuts its tail,
is caught by the *published heads*: once a day (and on demand) the newest (seq, hash) is
written to a file and to the log, where the database's owner cannot reach it. See
docs/access.md for verifying by hand.

Writers: every ``append`` joins a group commit. Lines queued while one transaction is
being written go into the next, so many concurrent requests cost one transaction each
batch; across processes and nodes the head row's lock orders the batches into one chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, update

from varta.clock import US, format_time, now_us
from varta.db.schema import journal, journal_head

log = logging.getLogger(__name__)

GENESIS = "0" * 64
FIELDS = ("seq", "time_us", "account", "full_name", "role", "source", "access", "action", "object",
          "result", "detail")
VIEW_ACTIONS = ("live.view", "archive.play", "archive.segment", "archive.export")


@dataclass
class Entry:
    account: str
    full_name: str
    role: str
    source: str
    access: str
    action: str
    object: str = ""
    result: str = "ok"  # ok | refused | failed
    detail: str = ""
    time_us: int = field(default_factory=now_us)


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical(seq: int, e) -> str:
    return _ENCODE([seq, e.time_us, e.account, e.full_name, e.role, e.source, e.access, e.action,
                    e.object, e.result, e.detail])


def chain_hash(prev_hash: str, canonical_line: str) -> str:
    return hashlib.sha256((prev_hash + canonical_line).encode()).hexdigest()


@dataclass
class _Pending:
    entry: Entry
    done: threading.Event = field(default_factory=threading.Event)
    seq: int = 0
    error: BaseException | None = None


class JournalError(RuntimeError):
    pass


class Journal:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._writer: threading.Thread | None = None

    # --- writing ---------------------------------------------------------------------
    def append(self, entry: Entry) -> int:
        """Write one line durably and return its number. Raises if it cannot be written:
        an access that cannot be journaled must not happen."""
        p = _Pending(entry)
        with self._cv:
            self._queue.append(p)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="journal-writer", daemon=True)
                self._writer.start()
            self._cv.notify()
        p.done.wait()
        if p.error is not None:
            raise JournalError(f"the access journal could not be written: {p.error}") from p.error
        return p.seq

    def _write_loop(self) -> None:
        # One writer thread per process: whatever queued while a batch was being written
        # goes into the next batch, in one transaction (group commit).
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch, self._queue = self._queue, []
            self._write(batch)

    def _write(self, batch: list[_Pending]) -> None:
        try:
            with self.engine.begin() as conn:
                # The UPDATE comes first: it takes the write lock (SQLite) or the row lock
                # (PostgreSQL) before anything is read, so two writers cannot chain off the
                # same head.
                locked = conn.execute(update(journal_head).where(journal_head.c.id == 1)
                                      .values(seq=journal_head.c.seq)).rowcount
                if not locked:
                    raise JournalError("the journal head row is missing; run `varta journal verify`")
                # Chain off the newest line actually stored (the head row is the lock; if
                # someone tampered with the table, journaling goes on and verify says where).
                head = conn.execute(select(journal.c.seq, journal.c.hash)
                                    .order_by(journal.c.seq.desc()).limit(1)).first() or (0, GENESIS)
                seq, prev = head
                rows = []
                for p in batch:
                    seq += 1
                    h = chain_hash(prev, canonical(seq, p.entry))
                    rows.append({"seq": seq, **asdict(p.entry), "prev_hash": prev, "hash": h})
                    p.seq, prev = seq, h
                conn.execute(insert(journal), rows)
                conn.execute(update(journal_head).where(journal_head.c.id == 1).values(seq=seq, hash=prev))
        except BaseException as exc:  # every waiter learns it failed
            for p in batch:
                p.error, p.seq = exc, 0
        finally:
            for p in batch:
                p.done.set()

    # --- reading ---------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(select(journal.c.seq, journal.c.hash).order_by(journal.c.seq.desc()).limit(1)).first()
        return (row[0], row[1]) if row else (0, GENESIS)

    def lines(self, from_us: int | None = None, to_us: int | None = None, *, account: str | None = None,
              action: str | None = None, obj: str | None = None, result: str | None = None,
              access: str | None = None, after_seq: int = 0, limit: int | None = None,
              newest_first: bool = False) -> list[dict]:
        """Lines after ``after_seq`` in order; ``newest_first``: the newest ``limit`` lines,
        newest first (what a person reading the journal on a screen wants)."""
        q = select(journal).where(journal.c.seq > after_seq).order_by(
            journal.c.seq.desc() if newest_first else journal.c.seq)
        if from_us is not None:
            q = q.where(journal.c.time_us >= from_us)
        if to_us is not None:
            q = q.where(journal.c.time_us < to_us)
        if account:
            q = q.where(journal.c.account == account)
        if action:
            q = q.where(journal.c.action.like(action.replace("*", "%")) if "*" in action
                        else journal.c.action == action)
        if obj:
            q = q.where(journal.c.object == obj)
        if result:
            q = q.where(journal.c.result == result)
        if access:  # "direct": the direct-access journal of A4.3
            q = q.where(journal.c.access == access)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def viewers(self, camera_id: str, from_us: int, to_us: int) -> list[dict]:
        """Who viewed a camera (live or recorded) in a period: one row per account and action."""
        q = (select(journal.c.account, journal.c.full_name, journal.c.role, journal.c.action,
                    func.count().label("times"), func.min(journal.c.time_us).label("first_us"),
                    func.max(journal.c.time_us).label("last_us"))
             .where(journal.c.object == f"camera:{camera_id}", journal.c.action.in_(VIEW_ACTIONS),
                    journal.c.result == "ok", journal.c.time_us >= from_us, journal.c.time_us < to_us)
             .group_by(journal.c.account, journal.c.full_name, journal.c.role, journal.c.action)
             .order_by(func.min(journal.c.time_us)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # --- verifying -------------------------------------------------------------------
    def verify(self, heads: list[dict] | None = None, progress=None) -> "Verification":
        return verify_rows(self._stream(), heads or [], progress)

    def _stream(self):
        cols = ", ".join(FIELDS + ("prev_hash", "hash"))
        with self.engine.connect().execution_options(stream_results=True, yield_per=20000) as conn:
            res = conn.exec_driver_sql(f"SELECT {cols} FROM journal ORDER BY seq")
            while chunk := res.fetchmany(20000):
                yield from chunk


@dataclass
class Problem:
    seq: int
    what: str

    def __str__(self) -> str:
        return f"line {self.seq}: {self.what}"


@dataclass
class Verification:
    lines: int
    last_seq: int
    last_hash: str
    problems: list[Problem]
    heads_checked: int

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 50


def verify_rows(rows, heads: list[dict], progress=None) -> Verification:
    """Walk the chain in ``seq`` order and report where it breaks (pure: rows in, verdict out)."""
    problems: list[Problem] = []
    by_seq = {int(h["seq"]): h for h in heads}
    seen_heads = 0
    expected, prev, n = 1, GENESIS, 0
    for values in rows:
        seq, prev_hash, stored = values[0], values[11], values[12]
        n += 1
        if seq != expected:
            first = expected
            problems.append(Problem(first, f"missing (deleted): the journal jumps from line {expected - 1} "
                                           f"to line {seq}" if seq > expected else "out of order"))
        if prev_hash != prev:
            problems.append(Problem(seq, "does not follow the line before it (a line was inserted, "
                                         "removed, reordered or the previous line rewritten)"))
        # values[:11] are the canonical fields in order (see FIELDS).
        if chain_hash(prev_hash, _ENCODE(list(values[:11]))) != stored:
            problems.append(Problem(seq, "its contents were changed after it was written"))
        h = by_seq.get(seq)
        if h is not None:
            seen_heads += 1
            if h["hash"] != stored:
                problems.append(Problem(seq, f"differs from the head published on {h.get('date', '?')}: "
                                             f"the journal was rewritten from here or earlier"))
        prev, expected = stored, seq + 1
        if len(problems) >= MAX_PROBLEMS:
            break
        if progress and n % 100000 == 0:
            progress(n)
    last = expected - 1
    for s, h in sorted(by_seq.items()):
        if s > last:
            problems.append(Problem(s, f"published on {h.get('date', '?')} but the journal ends at line {last}: "
                                       f"its tail was cut off"))
            break
    problems.sort(key=lambda p: p.seq)
    return Verification(n, last, prev, problems, seen_heads)


# --- published heads ---------------------------------------------------------------------
def heads_dir(home: Path) -> Path:
    return home / "journal-heads"


def load_heads(folder: Path) -> list[dict]:
    out = []
    if folder.is_dir():
        for p in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(p.read_text()))
            except (OSError, ValueError) as exc:
                log.warning("journal head %s unreadable: %s", p, exc)
    return out


def publish_head(j: Journal, folder: Path, tz, instance: str, force: bool = False) -> dict | None:
    """Write today's head (seq, hash) to ``folder/DATE.json`` and the log; once a day
    unless ``force``. Copy these files off the server (or print them) to make cutting the
    journal's tail detectable by anyone holding a copy."""
    now = now_us()
    date = datetime.fromtimestamp(now / US, tz).date().isoformat()
    path = folder / f"{date}.json"
    if path.exists():
        if not force:
            return None
        # Never overwrite an earlier head: it is evidence of what the chain was then.
        path = folder / f"{date}-{datetime.fromtimestamp(now / US, tz):%H%M%S}.json"
    seq, h = j.head()
    if seq == 0:
        return None
    rec = {"date": date, "seq": seq, "hash": h, "published": format_time(now, tz), "instance": instance}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, ensure_ascii=False, indent=1) + "\n")
    tmp.replace(path)
    log.info("journal head published: %s seq=%d sha256=%s", date, seq, h)
    return rec


class HeadPublisher(threading.Thread):
    """Publishes the day's head once a day (checks every ``interval_s``), in any node that
    runs it; a failure is logged and retried, never fatal to recording or serving."""

    def __init__(self, j: Journal, folder: Path, tz, instance: str, interval_s: float = 600.0):
        super().__init__(name="journal-heads", daemon=True)
        self.j, self.folder, self.tz, self.instance, self.interval_s = j, folder, tz, instance, interval_s
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                publish_head(self.j, self.folder, self.tz, self.instance)
            except Exception:
                log.exception("publishing the journal head failed; will retry")
            self.stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self.stop_event.set()
