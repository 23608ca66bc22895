"""Placement data in the database (adapter): imported incidents, candidate sites, excluded
zones; the incidents of the register and the alarms placed where they were seen; proposals
and what happened to them."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, or_, select, update

from varta.cameras.geo import views_of
from varta.clock import now_us
from varta.db.schema import (
    cameras,
    events,
    incidents,
    placement_incidents,
    placement_notes,
    placement_proposals,
    placement_sites,
    placement_zones,
)
from varta.placement.analysis import Incident, Site
from varta.placement.inputs import IncidentRow, SiteRow, ZoneRow

SOURCES = ("imported", "register", "alarms")
_ALARM_WEIGHT = {"alarm": 1.0, "warning": 0.5}


class PlacementStore:
    def __init__(self, engine):
        self.engine = engine

    # ---------------------------------------------------------------- imports (all or nothing)

    def import_incidents(self, rows: list[IncidentRow], batch: str, by: str, replace: bool = False) -> int:
        t = now_us()
        values = [{"batch": batch[:120], "time_us": r.time_us, "category": r.category, "severity": r.severity,
                   "latitude": r.lat, "longitude": r.lon, "ref": r.ref, "imported_by": by, "imported_us": t}
                  for r in rows]
        with self.engine.begin() as conn:
            if replace:
                conn.execute(delete(placement_incidents))
            for i in range(0, len(values), 2000):
                conn.execute(insert(placement_incidents), values[i:i + 2000])
        return len(values)

    def import_sites(self, rows: list[SiteRow], replace: bool = True) -> int:
        t = now_us()
        values = [{"name": r.name, "kind": r.kind, "ref": r.ref, "latitude": r.lat, "longitude": r.lon,
                   "imported_us": t} for r in rows]
        with self.engine.begin() as conn:
            if replace:
                conn.execute(delete(placement_sites))
            for i in range(0, len(values), 2000):
                conn.execute(insert(placement_sites), values[i:i + 2000])
        return len(values)

    def import_zones(self, rows: list[ZoneRow], replace: bool = True) -> int:
        t = now_us()
        with self.engine.begin() as conn:
            if replace:
                conn.execute(delete(placement_zones))
            conn.execute(insert(placement_zones), [{"name": r.name, "polygon": [list(p) for p in r.polygon],
                                                    "imported_us": t} for r in rows])
        return len(rows)

    def counts(self) -> dict:
        with self.engine.connect() as conn:
            def n(t):
                return conn.execute(select(func.count()).select_from(t)).scalar_one()
            c = placement_incidents.c
            cats = conn.execute(select(c.category, func.count()).group_by(c.category).order_by(c.category)).all()
            span = conn.execute(select(func.min(c.time_us), func.max(c.time_us))).one()
            return {"incidents": n(placement_incidents), "sites": n(placement_sites), "zones": n(placement_zones),
                    "categories": {k: v for k, v in cats}, "first_us": span[0], "last_us": span[1]}

    # ---------------------------------------------------------------- what the analysis reads

    def incidents(self, start_us: int, end_us: int, categories=(), sources=SOURCES, locate=None) -> list[Incident]:
        """Incidents with a place in [start, end): imported records (undated ones too); the register's incidents
        at their address (``locate``: the city's address list) or else their first camera;
        alarms at their camera, less those an operator judged false."""
        out: list[Incident] = []
        cats = set(categories)
        with self.engine.connect() as conn:
            if "imported" in sources:
                c = placement_incidents.c
                # A record without a time (a study's points, a register kept by place) belongs to
                # every period; the temporal check leaves it out.
                q = select(c.latitude, c.longitude, c.time_us, c.category, c.severity).where(
                    or_(c.time_us.is_(None), and_(c.time_us >= start_us, c.time_us < end_us)))
                if cats:
                    q = q.where(c.category.in_(cats))
                out += [Incident(r.latitude, r.longitude, r.time_us, r.category, r.severity, "imported")
                        for r in conn.execute(q)]
            places = {r.id: (r.latitude, r.longitude) for r in
                      conn.execute(select(cameras.c.id, cameras.c.latitude, cameras.c.longitude)
                                   .where(cameras.c.latitude.is_not(None)))}
            if "register" in sources:
                c = incidents.c
                q = select(c.type, c.place, c.cameras, c.start_us).where(c.start_us >= start_us, c.start_us < end_us)
                if cats:
                    q = q.where(c.type.in_(cats))
                for r in conn.execute(q).all():
                    at = locate(r.place) if (locate and r.place) else None
                    if at is None:
                        at = next((places[cid] for cid in (r.cameras or []) if cid in places), None)
                    if at is not None:
                        out.append(Incident(at[0], at[1], r.start_us, r.type, 1.0, "register"))
            if "alarms" in sources:
                c = events.c
                q = (select(c.camera_id, c.kind, c.severity, c.start_us)
                     .where(c.start_us >= start_us, c.start_us < end_us, c.severity.in_(tuple(_ALARM_WEIGHT)))
                     .where((c.verdict.is_(None)) | (c.verdict != "false")))
                for r in conn.execute(q):
                    cat = f"alarm:{r.kind}"
                    if r.camera_id in places and (not cats or cat in cats):
                        la, lo = places[r.camera_id]
                        out.append(Incident(la, lo, r.start_us, cat, _ALARM_WEIGHT[r.severity], "alarm"))
        return out

    def sites(self) -> list[Site]:
        c = placement_sites.c
        with self.engine.connect() as conn:
            return [Site(r.id, r.latitude, r.longitude, r.name, r.kind)
                    for r in conn.execute(select(c.id, c.latitude, c.longitude, c.name, c.kind).order_by(c.id))]

    def zones(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [{"id": r.id, "name": r.name, "polygon": r.polygon}
                    for r in conn.execute(select(placement_zones).order_by(placement_zones.c.id))]

    @staticmethod
    def views(registry) -> list:
        return list(views_of(registry.list()).values())

    # ---------------------------------------------------------------- proposals

    def create(self, title: str, params: dict, result: dict, by: str) -> int:
        t = now_us()
        with self.engine.begin() as conn:
            pid = conn.execute(insert(placement_proposals).values(
                title=title[:200], status="draft", params=params, result=result, sent_to=None, created_by=by,
                created_us=t, updated_us=t)).inserted_primary_key[0]
            conn.execute(insert(placement_notes).values(proposal_id=pid, account=by, full_name="", step="draft",
                                                        text="", time_us=t))
        return int(pid)

    def get(self, pid: int, with_result: bool = True) -> dict | None:
        p = placement_proposals.c
        cols = [p.id, p.title, p.status, p.params, p.sent_to, p.created_by, p.created_us, p.updated_us]
        if with_result:
            cols.append(p.result)
        with self.engine.connect() as conn:
            r = conn.execute(select(*cols).where(p.id == pid)).mappings().first()
            if r is None:
                return None
            notes = conn.execute(select(placement_notes).where(placement_notes.c.proposal_id == pid)
                                 .order_by(placement_notes.c.id)).mappings().all()
        return dict(r) | {"notes": [dict(n) for n in notes]}

    def list(self, sent_to: str | None = None) -> list[dict]:
        p = placement_proposals.c
        q = select(p.id, p.title, p.status, p.params, p.sent_to, p.created_by, p.created_us,
                   p.updated_us).order_by(p.id.desc())
        if sent_to is not None:
            q = q.where(p.sent_to == sent_to)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def step(self, pid: int, status_from: str, status_to: str, by: str, full_name: str, step: str, text: str,
             sent_to: str | None = None) -> bool:
        """Move the proposal on if nobody moved it meanwhile (compare-and-set on the status)."""
        t = now_us()
        values = {"status": status_to, "updated_us": t}
        if sent_to is not None:
            values["sent_to"] = sent_to
        p = placement_proposals.c
        with self.engine.begin() as conn:
            n = conn.execute(update(placement_proposals).where(p.id == pid, p.status == status_from)
                             .values(**values)).rowcount
            if n != 1:
                return False
            conn.execute(insert(placement_notes).values(proposal_id=pid, account=by, full_name=full_name[:300],
                                                        step=status_to, text=text, time_us=t))
        return True
