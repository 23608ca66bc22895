"""Lockdowns and the requests awaiting a second person, in the database (adapter)."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from varta.clock import now_us
from varta.db.schema import lockdown_requests, lockdowns
from varta.lockdown.rules import LockState


def _state(r) -> LockState:
    return LockState(id=r.id, scope=r.scope, reason=r.reason, source=r.source, started_us=r.started_us,
                     started_by=r.started_by, confirmed_by=r.confirmed_by)


class LockdownStore:
    def __init__(self, engine):
        self.engine = engine

    def current(self) -> LockState | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(lockdowns).where(lockdowns.c.active_key == 1)).first()
        return _state(r) if r else None

    def start(self, scope: str, reason: str, source: str, by: str, confirmed_by: str | None) -> LockState:
        """In force from now; a lockdown of another scope in force is ended by this one (one
        transaction, one lockdown at a time: the unique ``active_key``)."""
        t = now_us()
        try:
            with self.engine.begin() as conn:
                conn.execute(update(lockdowns).where(lockdowns.c.active_key == 1)
                             .values(active_key=None, ended_us=t, ended_by=by,
                                     end_reason=f"replaced by a lockdown of {scope} cameras: {reason}",
                                     end_confirmed_by=confirmed_by))
                lid = conn.execute(insert(lockdowns).values(scope=scope, reason=reason, source=source, started_us=t,
                                                            started_by=by, confirmed_by=confirmed_by, active_key=1)
                                   ).inserted_primary_key[0]
        except IntegrityError:
            from varta.lockdown.rules import LockdownError

            raise LockdownError("another lockdown was started at the same moment; look at the status") from None
        return LockState(lid, scope, reason, source, t, by, confirmed_by)

    def end(self, lid: int, by: str, reason: str, confirmed_by: str | None) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(lockdowns).where(lockdowns.c.id == lid, lockdowns.c.active_key == 1)
                                .values(active_key=None, ended_us=now_us(), ended_by=by, end_reason=reason,
                                        end_confirmed_by=confirmed_by)).rowcount == 1

    def history(self, limit: int = 20) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(lockdowns).order_by(lockdowns.c.id.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    # --- the two-person rule ---------------------------------------------------------
    def ask(self, move: str, scope: str | None, reason: str, by: str, name: str, expires_us: int,
            target_id: int | None = None) -> int:
        with self.engine.begin() as conn:
            return conn.execute(insert(lockdown_requests).values(
                move=move, scope=scope, reason=reason, requested_by=by, requested_name=name,
                requested_us=now_us(), expires_us=expires_us, state="pending", target_id=target_id)
            ).inserted_primary_key[0]

    def set_state(self, rid: int, state: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(lockdown_requests).where(lockdown_requests.c.id == rid).values(state=state))

    def request(self, rid: int) -> dict | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(lockdown_requests).where(lockdown_requests.c.id == rid)).mappings().first()
        return dict(r) if r else None

    def pending(self) -> list[dict]:
        t = now_us()
        with self.engine.connect() as conn:
            rows = conn.execute(select(lockdown_requests).where(lockdown_requests.c.state == "pending",
                                                                lockdown_requests.c.expires_us >= t)
                                .order_by(lockdown_requests.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def decide(self, rid: int, state: str, by: str) -> bool:
        """Compare-and-set: a request leaves ``pending`` once (two confirmations racing: one wins)."""
        with self.engine.begin() as conn:
            return conn.execute(update(lockdown_requests).where(lockdown_requests.c.id == rid,
                                                                lockdown_requests.c.state == "pending")
                                .values(state=state, decided_by=by, decided_us=now_us())).rowcount == 1
