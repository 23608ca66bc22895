"""Events in the database, their snapshots on disk, and the operators' actions (adapter).

Written by the analytics worker that owns a camera; read and acted on by any web node.
Web nodes learn of new and changed events by polling ``updated_us`` (see feed.py), so
workers and web nodes share only the database and the events folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from varta.clock import now_us, to_datetime
from varta.cluster.leases import check_fence
from varta.db.schema import cameras, event_actions, events, motion_spans

ACTIONS = ("ack", "true", "false", "note")
LIST_COLUMNS = [c for c in events.c if c.name != "path"]


class EventError(ValueError):
    pass


@dataclass(frozen=True)
class EventQuery:
    cameras: tuple[str, ...] | None = None  # None = all the caller may see
    start_us: int | None = None
    end_us: int | None = None
    label: str | None = None
    zone: str | None = None
    rule: str | None = None
    kind: str | None = None
    state: str | None = None  # new | acknowledged
    verdict: str | None = None  # true | false | none
    before_id: int | None = None  # paging: newest first
    limit: int = 100


def row_dict(row) -> dict:
    d = dict(row._mapping)
    d["ongoing"] = d.get("end_us") is None
    return d


class EventStore:
    def __init__(self, engine: Engine, events_dir: Path, worker: str = "", files=None, tz=None):
        self.engine = engine
        self.tz = tz  # the city's: alarm subscriptions' weekly schedules are in its time
        self.dir = Path(events_dir)
        self.worker = worker
        self.files = files  # varta.storage.files.NodeFiles: pictures go to the archive bucket too

    # --- written by analytics ---------------------------------------------------------
    # Writes made while analysing carry the camera's ``analyse`` lease (``fence``): a worker
    # that lost the camera to another node writes nothing more about it (raises Fenced).
    def open_event(self, camera_id: str, change, fence=None) -> int:
        occ = change.occurrence
        t = now_us()
        motion = change.motion or {}
        values = dict(
            camera_id=camera_id, rule=occ.rule, kind=occ.kind or "zone", severity=change.severity,
            zone=occ.zone, label=occ.label, track_id=occ.track_id, score=float(occ.score or 0.0),
            start_us=change.wall_us, end_us=None, box=change.normalised_box(), path=change.normalised_path(),
            heading=motion.get("heading"), speed_px_s=motion.get("speed_px_s"),
            detail=_detail(occ.detail, motion), worker=self.worker, state="new", updated_us=t,
        )
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            event_id = int(conn.execute(insert(events).values(**values)).inserted_primary_key[0])
            if change.snapshot:
                rel = self._write_snapshot(camera_id, event_id, change.wall_us, change.snapshot)
                conn.execute(update(events).where(events.c.id == event_id).values(snapshot=rel))
            if change.severity == "alarm":  # outside subscribers are told, in this transaction
                self._tell_subscribers(conn, event_id, camera_id, values, change.snapshot)
        return event_id

    def _tell_subscribers(self, conn, event_id: int, camera_id: str, values: dict, jpeg: bytes | None) -> None:
        from varta.exchange.store import enqueue_alarm

        cam = conn.execute(select(cameras.c.name, cameras.c.group_name, cameras.c.address, cameras.c.latitude,
                                  cameras.c.longitude).where(cameras.c.id == camera_id)).first()
        enqueue_alarm(conn, event_id, camera_id, values, cam, jpeg, self.tz)

    def update_event(self, event_id: int, change, end: bool = False, fence=None) -> None:
        occ = change.occurrence
        motion = change.motion or {}
        values: dict = {"updated_us": now_us()}
        if end:
            values["end_us"] = change.wall_us
        if change.path:
            values["path"] = change.normalised_path()
        if motion.get("heading"):
            values.update(heading=motion["heading"], speed_px_s=motion.get("speed_px_s"))
        if occ.kind:  # a close from finish() carries no fields of its own
            values["detail"] = _detail(occ.detail, motion)
            if occ.score:
                values["score"] = float(occ.score)
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            conn.execute(update(events).where(events.c.id == event_id).values(**values))

    def close_stale(self, camera_id: str, worker: str | None, when_us: int) -> int:
        """Events a crashed worker left open: end them at its last sign of life. ``worker``
        None: any worker's (the camera is this worker's by lease now, so none is live)."""
        q = update(events).where(events.c.camera_id == camera_id, events.c.end_us.is_(None))
        if worker is not None:
            q = q.where(events.c.worker == worker)
        with self.engine.begin() as conn:
            res = conn.execute(q.values(end_us=when_us, updated_us=now_us()))
            return res.rowcount or 0

    def _write_snapshot(self, camera_id: str, event_id: int, wall_us: int, jpeg: bytes) -> str:
        day = to_datetime(wall_us).strftime("%Y/%m/%d")
        rel = f"{camera_id}/{day}/{event_id}.jpg"
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(jpeg)
        tmp.replace(path)
        if self.files is not None:
            self.files.publish("events", rel)  # in the background: the worker never waits on the store
        return rel

    def snapshot_path(self, event: dict) -> Path | None:
        rel = event.get("snapshot")
        if not rel:
            return None
        path = (self.dir / rel).resolve()
        return path if path.is_relative_to(self.dir.resolve()) and path.is_file() else None

    # --- motion spans (the "motion" recording mode) -----------------------------------
    def motion_start(self, camera_id: str, start_us: int, fence=None) -> None:
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            conn.execute(insert(motion_spans).values(camera_id=camera_id, start_us=start_us, end_us=None))

    def motion_end(self, camera_id: str, end_us: int, fence=None) -> None:
        with self.engine.begin() as conn:
            if fence is not None:
                check_fence(conn, fence)
            conn.execute(update(motion_spans).where(motion_spans.c.camera_id == camera_id,
                                                    motion_spans.c.end_us.is_(None)).values(end_us=end_us))

    def activity(self, camera_id: str, t1: int, t2: int, kind: str) -> list[tuple[int, int | None]]:
        """Spans of motion (``kind="motion"``) or of events (``"events"``) overlapping [t1, t2)."""
        table = motion_spans if kind == "motion" else events
        q = select(table.c.start_us, table.c.end_us).where(
            table.c.camera_id == camera_id, table.c.start_us < t2,
            or_(table.c.end_us.is_(None), table.c.end_us >= t1),
        ).order_by(table.c.start_us)
        with self.engine.connect() as conn:
            return [(r.start_us, r.end_us) for r in conn.execute(q)]

    # --- read and handled by people ---------------------------------------------------
    def get(self, event_id: int, with_path: bool = True) -> dict | None:
        cols = list(events.c) if with_path else LIST_COLUMNS
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols).where(events.c.id == event_id)).first()
        return row_dict(row) if row else None

    def search(self, q: EventQuery) -> list[dict]:
        cond = []
        if q.cameras is not None:
            if not q.cameras:
                return []
            cond.append(events.c.camera_id.in_(q.cameras))
        if q.start_us is not None:
            cond.append(or_(events.c.end_us.is_(None), events.c.end_us >= q.start_us))
        if q.end_us is not None:
            cond.append(events.c.start_us < q.end_us)
        for col, value in ((events.c.label, q.label), (events.c.zone, q.zone), (events.c.rule, q.rule),
                           (events.c.kind, q.kind), (events.c.state, q.state)):
            if value:
                cond.append(col == value)
        if q.verdict == "none":
            cond.append(events.c.verdict.is_(None))
        elif q.verdict:
            cond.append(events.c.verdict == q.verdict)
        if q.before_id:
            cond.append(events.c.id < q.before_id)
        stmt = select(*LIST_COLUMNS).where(and_(*cond)).order_by(events.c.id.desc()).limit(max(1, min(q.limit, 1000)))
        with self.engine.connect() as conn:
            return [row_dict(r) for r in conn.execute(stmt)]

    def feed_head(self) -> int:
        """Where a live feed that starts now begins reading (events.feed_pos, migration 0005)."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                return int(conn.exec_driver_sql(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").scalar_one())
            return int(conn.execute(select(func.coalesce(func.max(events.c.feed_pos), 0))).scalar_one()) + 1

    def changes_from(self, cursor: int, limit: int = 500) -> tuple[list[dict], int]:
        """Events created or changed at feed positions ``cursor`` and later, and the cursor to
        read from next time.

        On PostgreSQL a position is the id of the transaction that wrote the row, and only
        positions below the oldest transaction still running are read: those transactions
        have all ended, so no row can still appear below the new cursor (a transaction that
        commits late is read when it commits, never skipped). Nodes' clocks play no part.
        On SQLite, whose writers take turns, positions are given in commit order."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                upto = int(conn.exec_driver_sql(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").scalar_one())
            else:
                upto = None
            cond = [events.c.feed_pos >= cursor]
            if upto is not None:
                cond.append(events.c.feed_pos < upto)
            stmt = (select(*LIST_COLUMNS, events.c.feed_pos).where(and_(*cond))
                    .order_by(events.c.feed_pos, events.c.id).limit(limit))
            rows = [row_dict(r) for r in conn.execute(stmt)]
        if len(rows) == limit:  # more to read: go on from the last position read (re-read, not lost)
            last = rows[-1]["feed_pos"]
            rows = [r for r in rows if r["feed_pos"] < last] or rows
            nxt = last if rows[-1]["feed_pos"] < last else last + 1
        elif upto is not None:
            nxt = max(cursor, upto)
        else:
            nxt = max([cursor] + [r["feed_pos"] + 1 for r in rows])
        return rows, nxt

    def act(self, event_id: int, action: str, account: str, note: str = "") -> dict:
        """An operator's action: acknowledge, judge true/false, or add a note."""
        if action not in ACTIONS:
            raise EventError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        note = (note or "").strip()
        if action == "note" and not note:
            raise EventError("a note needs text")
        if len(note) > 4000:
            raise EventError("a note is limited to 4000 characters")
        t = now_us()
        with self.engine.begin() as conn:
            if conn.execute(select(events.c.id).where(events.c.id == event_id)).first() is None:
                raise LookupError(f"no event {event_id}")
            conn.execute(insert(event_actions).values(event_id=event_id, action=action, account=account,
                                                      note=note, created_us=t))
            values: dict = {"updated_us": t}
            if action != "note":
                values.update(state="acknowledged", handled_by=account, handled_us=t)
            if action in ("true", "false"):
                values["verdict"] = action
            conn.execute(update(events).where(events.c.id == event_id).values(**values))
        return self.get(event_id)

    def actions(self, event_id: int) -> list[dict]:
        stmt = select(event_actions).where(event_actions.c.event_id == event_id).order_by(event_actions.c.id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]


def _detail(detail: dict | None, motion: dict) -> dict:
    out = {k: v for k, v in (detail or {}).items() if k != "direction"}
    if motion:
        out["direction"] = {k: motion[k] for k in ("heading", "uk", "en", "speed_px_s") if k in motion}
    return out
