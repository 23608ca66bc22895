"""The hold register in the database: orders (``hold_orders``) over camera intervals (``holds``).

Retention reads only ``holds`` rows with ``released_us IS NULL`` (recording/janitor.py);
this module is the one place that writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, and_, insert, select, update

from varta.access.policy import Principal
from varta.clock import now_us
from varta.db.schema import hold_orders, holds
from varta.evidence.holds import INSTRUCTION, REQUEST, Instruction, validate_instruction, validate_interval, validate_release
from varta.evidence.records import add_history, city_today, fetch, fmt, history, insert_numbered, next_number


@dataclass(frozen=True)
class HeldInterval:
    camera_id: str
    start_us: int
    end_us: int


class HoldRegister:
    def __init__(self, engine: Engine, tz):
        self.engine = engine
        self.tz = tz

    # --- placing -----------------------------------------------------------------------
    def place(self, intervals: list[HeldInterval], who: Principal, *, instruction: Instruction | None,
              reason: str = "", incident_id: int | None = None) -> dict:
        """A hold on an official's instruction (A4.6)."""
        if instruction is None:
            raise ValueError("a hold needs the instruction of the mayor, the first deputy or a deputy mayor (A4.6)")
        now = now_us()
        validate_instruction(instruction, city_today(self.tz, now))
        if not intervals:
            raise ValueError("name at least one camera and interval to hold")
        for iv in intervals:
            validate_interval(iv.start_us, iv.end_us, now)
        order_id, _ = insert_numbered(
            self.engine, hold_orders, "H", city_today(self.tz, now).year,
            self._order_values(INSTRUCTION, reason, who, now, instruction, incident_id=incident_id),
            then=lambda conn, oid, number: self._add_intervals(conn, oid, intervals, reason or number, who, now))
        return self.get(order_id)

    def place_for_request(self, conn, request_id: int, request_number: str, intervals: list[HeldInterval],
                          who: Principal, now: int) -> int:
        """The automatic hold a request places on registration, inside its transaction."""
        number = next_number(conn, hold_orders, "H", city_today(self.tz, now).year)
        reason = f"request {request_number}"
        oid = conn.execute(insert(hold_orders).values(
            number=number, **self._order_values(REQUEST, reason, who, now, None, request_id=request_id),
        )).inserted_primary_key[0]
        self._add_intervals(conn, oid, intervals, reason, who, now)
        return oid

    def _order_values(self, kind, reason, who, now, ins: Instruction | None, request_id=None, incident_id=None) -> dict:
        return dict(kind=kind, reason=reason, instruction_no=ins.number if ins else "",
                    instruction_date=ins.date.isoformat() if ins else None, author=ins.author if ins else "",
                    author_office=ins.office if ins else "", request_id=request_id, incident_id=incident_id,
                    created_by=who.login, created_us=now)

    def _add_intervals(self, conn, order_id: int, intervals, reason: str, who: Principal, now: int) -> None:
        for iv in intervals:
            conn.execute(insert(holds).values(camera_id=iv.camera_id, start_us=iv.start_us, end_us=iv.end_us,
                                              reason=reason, created_us=now, order_id=order_id))
        add_history(conn, "hold", order_id, who, "placed",
                    {"intervals": [[iv.camera_id, fmt(iv.start_us, self.tz), fmt(iv.end_us, self.tz)]
                                   for iv in intervals], "reason": reason}, now)

    # --- releasing ---------------------------------------------------------------------
    def release(self, order_id: int, destruction: Instruction, who: Principal, note: str = "") -> dict:
        """A4.6: a destruction instruction returns the footage to ordinary retention."""
        order = self._row(order_id)
        now = now_us()
        held_on = (date.fromisoformat(order.instruction_date) if order.instruction_date
                   else city_today(self.tz, order.created_us))
        validate_release(order.kind, order.released_us is not None, destruction, held_on, city_today(self.tz, now))
        with self.engine.begin() as conn:
            self._release(conn, order_id, who, now, release_no=destruction.number,
                          release_date=destruction.date.isoformat(), release_author=destruction.author,
                          release_office=destruction.office, release_note=note)
        return self.get(order_id)

    def release_for_request(self, conn, order_id: int, who: Principal, now: int, why: str) -> None:
        self._release(conn, order_id, who, now, release_note=why)

    def _release(self, conn, order_id: int, who: Principal, now: int, **values) -> None:
        res = conn.execute(update(hold_orders).where(hold_orders.c.id == order_id, hold_orders.c.released_us.is_(None))
                           .values(released_us=now, released_by=who.login, **values))
        if res.rowcount:
            conn.execute(update(holds).where(holds.c.order_id == order_id, holds.c.released_us.is_(None))
                         .values(released_us=now))
            add_history(conn, "hold", order_id, who, "released", {k: v for k, v in values.items() if v}, now)

    # --- reading -----------------------------------------------------------------------
    def _row(self, order_id: int):
        return fetch(self.engine, hold_orders, order_id, "hold")

    def get(self, order_id: int, with_history: bool = True) -> dict:
        order = self._row(order_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(holds).where(holds.c.order_id == order_id).order_by(holds.c.id)).all()
        out = self._describe(order, rows)
        if with_history:
            out["history"] = history(self.engine, "hold", order_id, self.tz)
        return out

    def list(self, active: bool | None = None, camera_id: str | None = None, kind: str | None = None,
             since_us: int | None = None, until_us: int | None = None, limit: int = 500) -> list[dict]:
        q = select(hold_orders).order_by(hold_orders.c.id.desc()).limit(limit)
        if active is True:
            q = q.where(hold_orders.c.released_us.is_(None))
        elif active is False:
            q = q.where(hold_orders.c.released_us.is_not(None))
        if kind:
            q = q.where(hold_orders.c.kind == kind)
        conds = []
        if camera_id:
            conds.append(holds.c.camera_id == camera_id)
        if since_us is not None:
            conds.append(holds.c.end_us > since_us)
        if until_us is not None:
            conds.append(holds.c.start_us < until_us)
        if conds:
            q = q.where(hold_orders.c.id.in_(select(holds.c.order_id).where(and_(*conds))))
        with self.engine.connect() as conn:
            orders = conn.execute(q).all()
            ids = [o.id for o in orders]
            rows = conn.execute(select(holds).where(holds.c.order_id.in_(ids)).order_by(holds.c.id)).all() if ids else []
        by_order: dict[int, list] = {}
        for r in rows:
            by_order.setdefault(r.order_id, []).append(r)
        return [self._describe(o, by_order.get(o.id, [])) for o in orders]

    def covering(self, camera_id: str, start_us: int, end_us: int) -> list[dict]:
        """Active orders holding any part of this camera's interval."""
        q = (select(holds.c.order_id).where(holds.c.camera_id == camera_id, holds.c.released_us.is_(None),
                                             holds.c.start_us < end_us, holds.c.end_us > start_us))
        with self.engine.connect() as conn:
            ids = sorted(set(conn.execute(q).scalars()) - {None})
        return [self.get(i, with_history=False) for i in ids]

    def _describe(self, o, rows) -> dict:
        tz = self.tz
        return {
            "id": o.id, "number": o.number, "kind": o.kind, "reason": o.reason, "active": o.released_us is None,
            "instruction": ({"number": o.instruction_no, "date": o.instruction_date, "author": o.author,
                             "office": o.author_office} if o.kind == INSTRUCTION else None),
            "request_id": o.request_id, "incident_id": o.incident_id,
            "created_by": o.created_by, "created": fmt(o.created_us, tz),
            "intervals": [{"camera_id": r.camera_id, "from": fmt(r.start_us, tz), "to": fmt(r.end_us, tz)} for r in rows],
            "released": fmt(o.released_us, tz), "released_by": o.released_by,
            "destruction": ({"number": o.release_no, "date": o.release_date, "author": o.release_author,
                             "office": o.release_office} if o.release_no else None),
            "release_note": o.release_note,
        }

