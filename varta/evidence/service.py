"""Evidence, assembled: the three registers, the jobs and the instance key, for the HTTP API
and the command line alike. Steps that finish in the background journal themselves here."""

from __future__ import annotations

from datetime import date
from functools import cached_property

from sqlalchemy import Engine

from varta.access.policy import ROLE_TITLES, Principal
from varta.evidence import requests as rules
from varta.evidence.holds_store import HoldRegister
from varta.evidence.incidents_store import IncidentRegister
from varta.evidence.jobs import EvidenceJobs
from varta.evidence.requests_store import RequestRegister
from varta.evidence.signing import InstanceKey
from varta.evidence.workdays import WorkingCalendar


WEBHOOK_SECRETS = b"varta exchange webhook secrets"


def now_iso(tz) -> str:
    from varta.clock import format_time, now_us

    return format_time(now_us(), tz)


def filer_view(req: dict) -> dict:
    """What the filing system is told of its request: its state and answer, not the
    department's internal notes."""
    keep = ("id", "number", "kind", "state", "incoming_no", "incoming_date", "items", "registered", "resolution",
            "due_date", "closed")
    out = {k: req.get(k) for k in keep}
    if req.get("package"):
        out["package"] = {k: req["package"].get(k) for k in ("name", "bytes", "sha256", "fingerprint", "built")}
    if req.get("transfer"):
        out["transfer"] = {k: req["transfer"].get(k) for k in ("url", "expires", "bytes", "target")}
    return out


def calendar_from(settings) -> WorkingCalendar:
    def days(values, what):
        try:
            return frozenset(date.fromisoformat(v) for v in values)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc} (use YYYY-MM-DD)") from None
    return WorkingCalendar(settings.holiday_rules, days(settings.extra_days_off, "extra_days_off"),
                           days(settings.extra_working_days, "extra_working_days"))


class Evidence:
    def __init__(self, engine: Engine, settings, *, registry, index, ffmpeg: str, access, runner, files=None,
                 identity=None):
        """``runner``: the node's job runner (varta/jobs); ``files``: segments and packages on
        any node (varta/storage); ``identity``: this node (for the city's shared signing key)."""
        self.engine = engine
        self.settings = settings
        self.registry = registry
        self.index = index
        self.ffmpeg = ffmpeg
        self.access = access
        tz = settings.tz
        self.calendar = calendar_from(settings)
        self.holds = HoldRegister(engine, tz)
        self.requests = RequestRegister(engine, self.holds, self.calendar, tz, settings.request_due_soon_days)
        self.incidents = IncidentRegister(engine, tz)
        self.identity = identity
        self.jobs = EvidenceJobs(self, runner, files)
        from varta.exchange.store import Exchange

        # Outside systems told of their requests' steps (R11; docs/police-exchange.md).
        self.exchange = Exchange(engine, lambda: self.key.derive(WEBHOOK_SECRETS), tz)
        self.requests.notify = self._tell_filer

    def _tell_filer(self, conn, row, event_type: str) -> None:
        """In the step's transaction: the filing system's subscriptions get the step."""
        self.exchange.enqueue(conn, row.filed_by, "requests", event_type, {
            "time": now_iso(self.settings.tz), "request": filer_view(self.requests.describe(row))})

    @cached_property
    def key(self) -> InstanceKey:
        """The city's signing key on this node ($VARTA_HOME/keys, mode 0600): the same on every
        node of a cluster (varta/evidence/keys.py), made on first use."""
        if self.identity is None:
            return InstanceKey.load_or_create(self.settings.keys_dir)
        from varta.evidence.keys import instance_key

        return instance_key(self.engine, self.identity, self.settings.keys_dir)

    def manifest_request(self, row) -> dict:
        """What the package says about the request it answers (embedded in the signed manifest)."""
        kind = rules.KINDS.get(row.kind, (row.kind, row.kind, ""))
        office = ROLE_TITLES.get(row.resolver_office or "", (row.resolver_office, row.resolver_office))
        return {
            "number": row.number, "kind": row.kind, "kind_title": {"uk": kind[0], "en": kind[1]}, "clause": kind[2],
            "incoming": {"number": row.incoming_no, "date": row.incoming_date},
            "requester": row.requester, "contact": row.contact, "basis": row.basis, "purpose": row.purpose,
            "resolution": {"decision": row.resolution, "text": row.resolution_text, "date": row.resolution_date,
                           "by": row.resolver_name, "office": {"uk": office[0], "en": office[1]}},
            "due_date": row.due_date,
        }

    # --- background steps, journaled like any other -------------------------------------
    def after_package(self, who: Principal, request_id: int, package: dict, manifest: dict, fence=None) -> None:
        req = self.requests.prepared(request_id, who, package, fence)
        cams = sorted({i["camera_id"] for i in manifest.get("items", [])})
        self.access.record(who, "request.prepare", f"request:{req['number']}",
                           detail=f"package {package['name']}: {package['files']} files, {package['bytes']} bytes, "
                                  f"SHA-256 {package['sha256']}; cameras {', '.join(cams)}")

    def after_transfer(self, who: Principal, request_id: int, transfer: dict, fence=None) -> None:
        req = self.requests.transferred(request_id, who, transfer, fence)
        self.access.record(who, "request.transfer", f"request:{req['number']}",
                           detail=f"{transfer['location']} ({transfer['bytes']} bytes, SSE {transfer['sse']}); "
                                  f"link until {transfer.get('expires') or '—'}")

    def record_failure(self, who: Principal, job_id: str, kind: str, request_id: int, error: str) -> None:
        try:
            number = self.requests.row(request_id).number
        except LookupError:
            number = str(request_id)
        self.access.record(who, "request.transfer" if kind == "transfer" else "request.prepare",
                           f"request:{number}", "failed", f"job {job_id}: {error}")
