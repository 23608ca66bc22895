"""The request register in the database (A4.7–A4.11): each step checked by
``evidence/requests.py``, recorded with its author and written to the request's history."""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import Engine, insert, or_, select, update

from varta.access.policy import Principal
from varta.clock import now_us
from varta.db.schema import evidence_requests, idempotency_keys, request_attachments
from varta.evidence import requests as rules
from varta.evidence.holds_store import HeldInterval, HoldRegister
from varta.evidence.records import (NotFound, add_history, city_today, fetch, fmt, history, next_number, numbered,
                                    parse_date)
from varta.evidence.workdays import WorkingCalendar, deadline_state, due_date


class AlreadyFiled(Exception):
    """This account filed a request under this Idempotency-Key before (``same``: with the
    same body)."""

    def __init__(self, request_id: int, same: bool):
        super().__init__(request_id)
        self.request_id, self.same = request_id, same


class RequestRegister:
    def __init__(self, engine: Engine, holds: HoldRegister, calendar: WorkingCalendar, tz, soon_days: int = 1):
        self.engine = engine
        self.holds = holds
        self.calendar = calendar
        self.tz = tz
        self.soon_days = soon_days
        # Told, inside each step's transaction, of every step of a request filed on line
        # (conn, row, event type): the exchange's outbox (varta/exchange, set by Evidence).
        self.notify = None

    # --- steps -------------------------------------------------------------------------
    def register(self, who: Principal, *, kind: str, incoming_no: str, incoming_date, requester: str, basis: str,
                 items: list[rules.Interval], contact: str = "", purpose: str = "", incident_id: int | None = None,
                 redaction: dict | None = None, filed_by: str | None = None,
                 attachments: list[tuple[str, str, bytes]] = (), idempotency: tuple[str, str] | None = None) -> dict:
        """Register an incoming request and hold its intervals at once, in one transaction:
        from this moment retention cannot take the footage (issue 6, A4.6)."""
        now = now_us()
        today = city_today(self.tz, now)
        incoming = parse_date(incoming_date, "incoming document date")
        rules.validate_new(kind, incoming_no, incoming, requester, basis, items, today)
        if redaction and kind != rules.THIRD_PARTY:
            raise rules.RequestError("redaction is for third-party transfers (A4.8); police and courts get originals")
        if redaction:
            _check_redaction(redaction)
        values = dict(kind=kind, state=rules.REGISTERED, incoming_no=incoming_no.strip(),
                      incoming_date=incoming.isoformat(), requester=requester.strip(), contact=contact.strip(),
                      basis=basis.strip(), purpose=purpose.strip(),
                      items=[{"camera_id": i.camera_id, "start_us": i.start_us, "end_us": i.end_us} for i in items],
                      redaction=redaction, incident_id=incident_id, registered_by=who.login, registered_us=now,
                      updated_us=now, filed_by=filed_by)

        def work(conn) -> int:
            if idempotency is not None:
                seen = conn.execute(select(idempotency_keys).where(idempotency_keys.c.account == who.login,
                                                                   idempotency_keys.c.key == idempotency[0])).first()
                if seen is not None:
                    raise AlreadyFiled(seen.request_id, seen.body_sha256 == idempotency[1])
            number = next_number(conn, evidence_requests, "REQ", today.year)
            rid = conn.execute(insert(evidence_requests).values(number=number, **values)).inserted_primary_key[0]
            if idempotency is not None:  # the key's row: a retried call finds it (primary key: one wins)
                conn.execute(insert(idempotency_keys).values(account=who.login, key=idempotency[0],
                                                             body_sha256=idempotency[1], request_id=rid, created_us=now))
            for name, media_type, content in attachments:
                conn.execute(insert(request_attachments).values(
                    request_id=rid, name=name, media_type=media_type, bytes=len(content),
                    sha256=hashlib.sha256(content).hexdigest(), content=content, added_by=who.login, added_us=now))
            hold_id = self.holds.place_for_request(
                conn, rid, number, [HeldInterval(i.camera_id, i.start_us, i.end_us) for i in items], who, now)
            conn.execute(update(evidence_requests).where(evidence_requests.c.id == rid).values(hold_order_id=hold_id))
            add_history(conn, "request", rid, who, "registered",
                        {"incoming": f"{incoming_no} / {incoming}", "requester": requester,
                         **({"filed by": filed_by} if filed_by else {})}, now)
            self._tell(conn, rid, "request.registered")
            return rid
        rid = numbered(self.engine, work)
        return self.get(rid)

    def resolve(self, request_id: int, who: Principal, *, approve: bool, text: str, resolved_on=None) -> dict:
        """A4.10 (and A4.8 for third parties): the leader's decision; approval starts the
        5-working-day clock."""
        row = self.row(request_id)
        now = now_us()
        today = city_today(self.tz, now)
        target = rules.next_state(row.state, "approve" if approve else "refuse")
        why_not = rules.may_resolve(who.role, row.kind)
        if why_not:
            raise PermissionError(why_not)
        day = parse_date(resolved_on, "resolution date") if resolved_on else today
        rules.validate_resolution(approve, text, day, city_today(self.tz, row.registered_us), today)
        due = due_date(day, self.calendar).isoformat() if approve else None
        values = dict(state=target, resolution="approved" if approve else "refused", resolution_text=text.strip(),
                      resolution_date=day.isoformat(), resolved_by=who.login, resolver_name=who.full_name,
                      resolver_office=who.role, resolved_us=now, due_date=due, updated_us=now)
        with self.engine.begin() as conn:
            self._set(conn, request_id, row.state, values)
            add_history(conn, "request", request_id, who, values["resolution"],
                        {"text": text.strip(), "date": day.isoformat(), "due": due}, now)
            if target in rules.CLOSED:
                self._close(conn, row, who, now, "refused")
            self._tell(conn, request_id, "request.resolved")
        return self.get(request_id)

    def prepared(self, request_id: int, who: Principal, package: dict, fence=None) -> dict:
        """``fence``: the package job's lease, checked in the same transaction (a job that
        moved to another node cannot mark the request prepared with its stale result)."""
        return self._advance(request_id, who, "prepare", "prepared", dict(package=package),
                             {k: package.get(k) for k in ("name", "bytes", "sha256", "fingerprint")}, fence)

    def transferred(self, request_id: int, who: Principal, transfer: dict, fence=None) -> dict:
        """Transferred closes the request; its automatic hold is released (other holds stay)."""
        return self._advance(request_id, who, "transfer", "transferred", dict(transfer=transfer),
                             {k: transfer.get(k) for k in ("target", "location", "expires", "sse", "bytes")}, fence)

    def new_link(self, request_id: int, who: Principal, url: str, expires: str) -> dict:
        row = self.row(request_id)
        return self._advance(request_id, who, None, "new link",
                             dict(transfer={**row.transfer, "url": url, "expires": expires}), {"expires": expires})

    def add_items(self, request_id: int, who: Principal, items: list[rules.Interval]) -> dict:
        """More camera intervals for a request not yet resolved, held at once like the first."""
        row = self.row(request_id)
        rules.validate_more(len(row.items), items, row.state)
        now = now_us()
        more = [{"camera_id": i.camera_id, "start_us": i.start_us, "end_us": i.end_us} for i in items]
        with self.engine.begin() as conn:
            self._set(conn, request_id, row.state, dict(items=list(row.items) + more, updated_us=now))
            self.holds._add_intervals(conn, row.hold_order_id, [HeldInterval(i.camera_id, i.start_us, i.end_us)
                                                                for i in items], f"request {row.number}", who, now)
            add_history(conn, "request", request_id, who, "intervals added",
                        {"intervals": [[i.camera_id, fmt(i.start_us, self.tz), fmt(i.end_us, self.tz)] for i in items]},
                        now)
        return self.get(request_id)

    def withdraw(self, request_id: int, who: Principal, reason: str) -> dict:
        if not reason.strip():
            raise rules.RequestError("say why the request is withdrawn (e.g. the requester's letter)")
        return self._advance(request_id, who, "withdraw", "withdrawn", {}, {"reason": reason.strip()})

    _EVENTS = {"prepared": "request.prepared", "transferred": "request.transferred", "new link": "request.link",
               "withdrawn": "request.withdrawn"}

    def _tell(self, conn, request_id: int, event_type: str) -> None:
        if self.notify is None:
            return
        row = conn.execute(select(evidence_requests).where(evidence_requests.c.id == request_id)).first()
        if row.filed_by:
            self.notify(conn, row, event_type)

    def _advance(self, request_id: int, who: Principal, step: str | None, action: str, values: dict,
                 detail: dict, fence=None) -> dict:
        """One step: checked against the state machine (``step`` None: no state change),
        recorded with its history line, and the request closed if the step closes it."""
        row = self.row(request_id)
        target = rules.next_state(row.state, step) if step else row.state
        now = now_us()
        with self.engine.begin() as conn:
            if fence is not None:
                from varta.cluster.leases import check_fence

                check_fence(conn, fence)
            self._set(conn, request_id, row.state, dict(values, state=target, updated_us=now))
            add_history(conn, "request", request_id, who, action, detail, now)
            if target in rules.CLOSED and row.state not in rules.CLOSED:
                self._close(conn, row, who, now, action)
            if action in self._EVENTS:
                self._tell(conn, request_id, self._EVENTS[action])
        return self.get(request_id)

    def _set(self, conn, request_id: int, expected_state: str, values: dict) -> None:
        """Compare-and-set on the state: two people acting at once cannot both win."""
        res = conn.execute(update(evidence_requests)
                           .where(evidence_requests.c.id == request_id, evidence_requests.c.state == expected_state)
                           .values(**values))
        if res.rowcount != 1:
            raise rules.RequestError("the request changed meanwhile; reload it and try again")

    def _close(self, conn, row, who: Principal, now: int, why: str) -> None:
        conn.execute(update(evidence_requests).where(evidence_requests.c.id == row.id).values(closed_us=now))
        if row.hold_order_id:
            self.holds.release_for_request(conn, row.hold_order_id, who, now, f"request {row.number} {why}")

    # --- reading -----------------------------------------------------------------------
    def row(self, request_id: int):
        return fetch(self.engine, evidence_requests, request_id, "request")

    def find(self, key: str):
        """A request's row from its id or its number (REQ-2026-0001)."""
        by_id = str(key).isdigit()
        col = evidence_requests.c.id if by_id else evidence_requests.c.number
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence_requests).where(col == (int(key) if by_id else key))).first()
        if row is None:
            raise NotFound(f"no request {key}")
        return row

    def get(self, request_id: int) -> dict:
        out = self.describe(self.row(request_id))
        out["history"] = history(self.engine, "request", request_id, self.tz)
        out["attachments"] = self.attachments(request_id)
        return out

    def attachments(self, request_id: int) -> list[dict]:
        a = request_attachments.c
        q = (select(a.id, a.name, a.media_type, a.bytes, a.sha256, a.added_by).where(a.request_id == request_id)
             .order_by(a.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def attachment(self, request_id: int, attachment_id: int):
        """(name, media_type, content) of one document of the request."""
        a = request_attachments.c
        with self.engine.connect() as conn:
            r = conn.execute(select(a.name, a.media_type, a.content).where(
                a.request_id == request_id, a.id == attachment_id)).first()
        if r is None:
            raise NotFound(f"request {request_id} has no document {attachment_id}")
        return r

    def list(self, state: str | None = None, kind: str | None = None, open_only: bool = False, text: str = "",
             since_us: int | None = None, until_us: int | None = None, limit: int = 500,
             filed_by: str | None = None) -> list[dict]:
        c = evidence_requests.c
        q = select(evidence_requests).order_by(c.id.desc()).limit(limit)
        if filed_by is not None:
            q = q.where(c.filed_by == filed_by)
        if state:
            q = q.where(c.state == state)
        if kind:
            q = q.where(c.kind == kind)
        if open_only:
            q = q.where(c.closed_us.is_(None))
        if text:
            like = f"%{text}%"
            q = q.where(or_(c.number.ilike(like), c.incoming_no.ilike(like), c.requester.ilike(like),
                            c.basis.ilike(like), c.purpose.ilike(like)))
        if since_us is not None:
            q = q.where(c.registered_us >= since_us)
        if until_us is not None:
            q = q.where(c.registered_us < until_us)
        with self.engine.connect() as conn:
            return [self.describe(r) for r in conn.execute(q)]

    def deadlines(self, today: date | None = None) -> dict[str, list[dict]]:
        """Open, approved-but-unanswered requests by how near their due date is (A4.10)."""
        today = today or city_today(self.tz)
        out: dict[str, list[dict]] = {"overdue": [], "due_today": [], "due_soon": [], "on_time": []}
        c = evidence_requests.c
        q = (select(evidence_requests).where(c.closed_us.is_(None), c.due_date.is_not(None)).order_by(c.due_date))
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                out[self._deadline(r, today)].append(self.describe(r, today))
        return out

    def _deadline(self, r, today: date) -> str | None:
        if r.due_date is None or r.closed_us is not None:
            return None
        return deadline_state(date.fromisoformat(r.due_date), today, self.calendar, self.soon_days)

    def describe(self, r, today: date | None = None) -> dict:
        tz = self.tz
        today = today or city_today(tz)
        due = date.fromisoformat(r.due_date) if r.due_date else None
        return {
            "id": r.id, "number": r.number, "kind": r.kind, "state": r.state,
            "incoming_no": r.incoming_no, "incoming_date": r.incoming_date, "requester": r.requester,
            "contact": r.contact, "basis": r.basis, "purpose": r.purpose,
            "items": [{"camera_id": i["camera_id"], "from": fmt(i["start_us"], tz), "to": fmt(i["end_us"], tz)}
                      for i in r.items],
            "redaction": r.redaction, "incident_id": r.incident_id, "hold_id": r.hold_order_id,
            "registered_by": r.registered_by, "registered": fmt(r.registered_us, tz),
            "resolution": ({"decision": r.resolution, "text": r.resolution_text, "date": r.resolution_date,
                            "by": r.resolved_by, "name": r.resolver_name, "office": r.resolver_office}
                           if r.resolution else None),
            "due_date": r.due_date,
            "deadline": self._deadline(r, today),
            "working_days_left": self.calendar.working_days_between(today, due) if due and r.closed_us is None else None,
            "package": r.package, "transfer": r.transfer,
            "closed": fmt(r.closed_us, tz), "updated": fmt(r.updated_us, tz), "filed_by": r.filed_by,
        }


def _check_redaction(options: dict) -> None:
    """Refuse redaction options the package build would refuse, now rather than days later."""
    from varta.evidence.redaction import RedactionError, RedactionOptions

    try:
        RedactionOptions(**options).validate()
    except TypeError:
        raise rules.RequestError(f"redaction: unknown option among {sorted(options)}; use people, plates, "
                                 "subject") from None
    except RedactionError as exc:
        raise rules.RequestError(f"redaction: {exc}") from None
