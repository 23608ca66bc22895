"""The incident register in the database (R7), with its history and links: the alarms that
showed it, the holds that keep its footage, the requests answered from it."""

from __future__ import annotations

from sqlalchemy import Engine, or_, select, update

from varta.access.policy import Principal
from varta.clock import now_us
from varta.db.schema import events, evidence_requests, hold_orders, incidents
from varta.evidence import incidents as rules
from varta.evidence.records import NotFound, add_history, city_today, fetch, fmt, history, insert_numbered


class IncidentRegister:
    def __init__(self, engine: Engine, tz):
        self.engine = engine
        self.tz = tz

    def create(self, who: Principal, fields: dict, event_ids: list[int] = ()) -> dict:
        now = now_us()
        values = {"status": rules.OPEN, "description": "", "place": "", "cameras": [], "end_us": None, **fields}
        rules.validate(values, now)
        values.update(events=sorted(set(event_ids)), created_by=who.login, created_us=now, updated_us=now)
        iid, _ = insert_numbered(self.engine, incidents, "INC", city_today(self.tz, now).year, values,
                                 then=lambda conn, i, n: add_history(conn, "incident", i, who, "created",
                                                                     {"title": values["title"]}, now))
        return self.get(iid)

    def from_event(self, who: Principal, event_id: int, fields: dict) -> dict:
        """An incident opened from an alarm: camera, time and a title taken from the event."""
        with self.engine.connect() as conn:
            ev = conn.execute(select(events).where(events.c.id == event_id)).first()
        if ev is None:
            raise NotFound(f"no event {event_id}")
        what = f"{ev.label or ev.kind} — {ev.rule}"
        base = {"type": "other", "title": what, "cameras": [ev.camera_id], "start_us": ev.start_us,
                "end_us": ev.end_us, "description": ""}
        return self.create(who, {**base, **{k: v for k, v in fields.items() if v not in (None, "")}}, [event_id])

    def update(self, incident_id: int, who: Principal, fields: dict) -> dict:
        before = self._row(incident_id)
        now = now_us()
        current = {k: getattr(before, k) for k in rules.EDITABLE}
        after = {**current, **{k: v for k, v in fields.items() if k in rules.EDITABLE}}
        rules.validate(after, now)
        diff = rules.changes(current, after)
        if not diff:
            return self.get(incident_id)
        with self.engine.begin() as conn:
            conn.execute(update(incidents).where(incidents.c.id == incident_id)
                         .values(**{k: after[k] for k in diff}, updated_us=now))
            add_history(conn, "incident", incident_id, who, "changed", self._readable(diff), now)
        return self.get(incident_id)

    def link_event(self, incident_id: int, who: Principal, event_id: int) -> dict:
        row = self._row(incident_id)
        with self.engine.begin() as conn:
            if conn.execute(select(events.c.id).where(events.c.id == event_id)).first() is None:
                raise NotFound(f"no event {event_id}")
            conn.execute(update(incidents).where(incidents.c.id == incident_id)
                         .values(events=sorted(set(row.events) | {event_id}), updated_us=now_us()))
            add_history(conn, "incident", incident_id, who, "event linked", {"event": event_id})
        return self.get(incident_id)

    def note(self, incident_id: int, who: Principal, text: str) -> dict:
        self._row(incident_id)
        if not text.strip():
            raise rules.IncidentError("the note is empty")
        with self.engine.begin() as conn:
            add_history(conn, "incident", incident_id, who, "note", {"text": text.strip()})
        return self.get(incident_id)

    def _readable(self, diff: dict) -> dict:
        out = {}
        for k, (old, new) in diff.items():
            if k.endswith("_us"):
                old, new = fmt(old, self.tz), fmt(new, self.tz)
            out[k.removesuffix("_us")] = [old, new]
        return out

    # --- reading -----------------------------------------------------------------------
    def _row(self, incident_id: int):
        return fetch(self.engine, incidents, incident_id, "incident")

    def get(self, incident_id: int) -> dict:
        r = self._row(incident_id)
        out = self.describe(r)
        with self.engine.connect() as conn:
            out["holds"] = [{"id": h.id, "number": h.number, "active": h.released_us is None}
                            for h in conn.execute(select(hold_orders).where(hold_orders.c.incident_id == r.id))]
            out["requests"] = [{"id": q.id, "number": q.number, "state": q.state} for q in conn.execute(
                select(evidence_requests).where(evidence_requests.c.incident_id == r.id))]
            evs = conn.execute(select(events).where(events.c.id.in_(r.events or [-1]))).all()
        out["linked_events"] = [{"id": e.id, "camera_id": e.camera_id, "rule": e.rule, "label": e.label,
                                 "start": fmt(e.start_us, self.tz)} for e in evs]
        out["history"] = history(self.engine, "incident", incident_id, self.tz)
        return out

    def list(self, status: str | None = None, type_: str | None = None, camera_id: str | None = None,
             text: str = "", since_us: int | None = None, until_us: int | None = None, limit: int = 500) -> list[dict]:
        c = incidents.c
        q = select(incidents).order_by(c.start_us.desc()).limit(limit)
        if status:
            q = q.where(c.status == status)
        if type_:
            q = q.where(c.type == type_)
        if text:
            like = f"%{text}%"
            q = q.where(or_(c.number.ilike(like), c.title.ilike(like), c.description.ilike(like), c.place.ilike(like)))
        if since_us is not None:
            q = q.where(c.start_us >= since_us)
        if until_us is not None:
            q = q.where(c.start_us < until_us)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        if camera_id:  # cameras is a JSON list: filtered here, the same on SQLite and PostgreSQL
            rows = [r for r in rows if camera_id in (r.cameras or [])]
        return [self.describe(r) for r in rows]

    def describe(self, r) -> dict:
        tz = self.tz
        return {"id": r.id, "number": r.number, "type": r.type, "title": r.title, "description": r.description,
                "place": r.place, "cameras": r.cameras, "from": fmt(r.start_us, tz), "to": fmt(r.end_us, tz),
                "status": r.status, "events": r.events, "created_by": r.created_by, "created": fmt(r.created_us, tz),
                "updated": fmt(r.updated_us, tz)}
