"""Subscriptions and their outbox in the database (adapter; rules in ``exchange/rules.py``).

An event for outside systems is written as one delivery row per interested subscription
*in the same transaction as the change it reports* (a request resolved, an alarm raised):
what was committed is told, what was rolled back never is. The dispatcher
(``exchange/dispatcher.py``) sends each subscription's deliveries in order.
"""

from __future__ import annotations

import secrets
from typing import Callable

from sqlalchemy import func, insert, select, update

from varta.clock import format_time, now_us
from varta.db.schema import deliveries, subscriptions
from varta.exchange import rules


class NotFound(LookupError):
    pass


def enqueue_alarm(conn, event_id: int, camera_id: str, ev: dict, cam, jpeg: bytes | None, tz=None) -> int:
    """In the transaction that opens an alarm: a delivery for every alarm subscription that
    wants it (the subscriber's right to the camera is checked again when it is sent)."""
    import base64

    from varta.clock import US, to_datetime

    payload = {
        "id": f"alarm-{event_id}",
        "time": to_datetime(ev["start_us"]).isoformat(timespec="milliseconds"),
        "alarm": {"event_id": event_id, "camera_id": camera_id, "camera_name": cam.name if cam else "",
                  "group": cam.group_name if cam else "", "address": cam.address if cam else "",
                  "latitude": cam.latitude if cam else None, "longitude": cam.longitude if cam else None,
                  "rule": ev["rule"], "kind": ev["kind"], "severity": ev["severity"], "zone": ev["zone"],
                  "label": ev["label"], "score": ev["score"], "heading": ev["heading"],
                  "speed_px_s": ev["speed_px_s"], "box": ev["box"], "start_us": ev["start_us"] // US * US},
        "picture_jpeg_base64": base64.b64encode(jpeg).decode() if jpeg else None,
    }
    match = {"group": payload["alarm"]["group"], "label": ev["label"], "rule": ev["rule"], "severity": ev["severity"],
             "latitude": payload["alarm"]["latitude"], "longitude": payload["alarm"]["longitude"],
             "local": to_datetime(ev["start_us"], tz) if tz is not None else None}
    return Exchange.enqueue_static(conn, None, "alarms", "alarm.opened", payload, match)


class Exchange:
    def __init__(self, engine, master: Callable[[], bytes], tz):
        """``master``: the city's key-derived secret the subscriptions' secrets come from."""
        self.engine, self._master, self.tz = engine, master, tz

    # --- subscriptions -----------------------------------------------------------------
    def subscribe(self, owner: str, kind: str, url: str, filters: dict | None, created_by: str) -> tuple[dict, str]:
        """A new subscription and its signing secret (shown once: derived, never stored)."""
        f = rules.check_filters(kind, filters)
        url = rules.check_url(url)
        nonce = secrets.token_hex(16)
        with self.engine.begin() as conn:
            sid = conn.execute(insert(subscriptions).values(
                owner=owner, kind=kind, url=url, secret_nonce=nonce, filters=f, active=True, created_by=created_by,
                created_us=now_us())).inserted_primary_key[0]
        return self.get(sid), self.secret(sid, nonce)

    def secret(self, subscription_id: int, nonce: str) -> str:
        return rules.secret_for(self._master(), subscription_id, nonce)

    def get(self, sid: int, owner: str | None = None) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscriptions).where(subscriptions.c.id == sid)).first()
        if row is None or (owner is not None and row.owner != owner):
            raise NotFound(f"no subscription {sid}")
        return self._describe(row)

    def row(self, sid: int):
        with self.engine.connect() as conn:
            return conn.execute(select(subscriptions).where(subscriptions.c.id == sid)).first()

    def list(self, owner: str | None = None) -> list[dict]:
        q = select(subscriptions).order_by(subscriptions.c.id)
        if owner is not None:
            q = q.where(subscriptions.c.owner == owner)
        with self.engine.connect() as conn:
            return [self._describe(r) for r in conn.execute(q)]

    def cancel(self, sid: int, owner: str | None = None) -> dict:
        self.get(sid, owner)
        with self.engine.begin() as conn:
            conn.execute(update(subscriptions).where(subscriptions.c.id == sid).values(active=False))
        return self.get(sid)

    def _describe(self, r) -> dict:
        with self.engine.connect() as conn:
            counts = dict(conn.execute(select(deliveries.c.state, func.count()).where(
                deliveries.c.subscription_id == r.id).group_by(deliveries.c.state)).all())
        return {"id": r.id, "owner": r.owner, "kind": r.kind, "url": r.url, "filters": r.filters,
                "active": r.active, "created": format_time(r.created_us, self.tz), "created_by": r.created_by,
                "deliveries": {s: counts.get(s, 0) for s in ("pending", "delivered", "dead")}}

    # --- the outbox --------------------------------------------------------------------
    def enqueue(self, conn, owner: str | None, kind: str, event_type: str, payload: dict,
                match: dict | None = None) -> int:
        return self.enqueue_static(conn, owner, kind, event_type, payload, match)

    @staticmethod
    def enqueue_static(conn, owner: str | None, kind: str, event_type: str, payload: dict,
                       match: dict | None = None) -> int:
        """In the caller's transaction: a delivery for each active subscription of ``kind``
        (of ``owner``, when given) that wants the event. Returns how many."""
        q = select(subscriptions).where(subscriptions.c.kind == kind, subscriptions.c.active.is_(True))
        if owner is not None:
            q = q.where(subscriptions.c.owner == owner)
        now = now_us()
        event_id = payload.get("id") or secrets.token_hex(12)
        rows = [{"subscription_id": s.id, "event_type": event_type, "event_id": event_id,
                 "payload": {**payload, "id": event_id, "type": event_type}, "state": "pending", "attempts": 0,
                 "next_us": now, "created_us": now}
                for s in conn.execute(q) if rules.wants(kind, s.filters or {}, event_type, match or payload)]
        if rows:
            conn.execute(insert(deliveries), rows)
        return len(rows)

    def deliveries(self, sid: int, limit: int = 200) -> list[dict]:
        q = (select(deliveries).where(deliveries.c.subscription_id == sid).order_by(deliveries.c.id.desc())
             .limit(limit))
        tz = self.tz
        with self.engine.connect() as conn:
            return [{"id": d.id, "event_type": d.event_type, "event_id": d.event_id, "state": d.state,
                     "attempts": d.attempts, "last_status": d.last_status, "last_error": d.last_error,
                     "created": format_time(d.created_us, tz),
                     "delivered": format_time(d.delivered_us, tz) if d.delivered_us else None,
                     "next_attempt": format_time(d.next_us, tz) if d.state == "pending" else None}
                    for d in conn.execute(q)]

    def heads(self, now: int) -> list[tuple]:
        """(subscription row, its oldest pending delivery) where that delivery is due: only
        the head of each queue is ever tried, so a receiver sees its events in order."""
        head = (select(deliveries.c.subscription_id, func.min(deliveries.c.id).label("id"))
                .where(deliveries.c.state == "pending").group_by(deliveries.c.subscription_id).subquery())
        q = (select(subscriptions, deliveries.c.id.label("d_id"))
             .join(head, head.c.subscription_id == subscriptions.c.id)
             .join(deliveries, deliveries.c.id == head.c.id)
             .where(subscriptions.c.active.is_(True), subscriptions.c.url != rules.SSE, deliveries.c.next_us <= now))
        with self.engine.connect() as conn:
            subs = conn.execute(q).all()
            if not subs:
                return []
            rows = {d.id: d for d in conn.execute(select(deliveries).where(deliveries.c.id.in_([r.d_id for r in subs])))}
        return [(r, rows[r.d_id]) for r in subs]

    def after(self, sid: int, last_id: int, limit: int = 100) -> list:
        """A subscription's deliveries after ``last_id`` in order (for its stream)."""
        with self.engine.connect() as conn:
            return conn.execute(select(deliveries).where(deliveries.c.subscription_id == sid, deliveries.c.id > last_id,
                                                         deliveries.c.state.in_(("pending", "delivered")))
                                .order_by(deliveries.c.id).limit(limit)).all()

    def mark(self, delivery_id: int, **values) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.state == "pending")
                         .values(**values))
