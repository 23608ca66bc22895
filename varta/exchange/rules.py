"""The exchange's rules, without I/O: the webhook signature, retry timing, subscription
filters and secrets (docs/police-exchange.md, docs/design/exchange.md)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

# Seconds to wait after the n-th failed attempt (then every hour); after MAX_ATTEMPTS the
# delivery is dead-lettered, a system alarm is raised and the next one goes.
RETRY_DELAYS_S = (2, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
MAX_ATTEMPTS = 20
KINDS = ("requests", "alarms")
REQUEST_EVENTS = ("request.registered", "request.resolved", "request.prepared", "request.transferred",
                  "request.link", "request.withdrawn")


SSE = "sse:"  # a subscription read as Server-Sent Events (GET /api/subscriptions/{id}/stream), not POSTed


class ExchangeError(ValueError):
    pass


def next_delay_s(attempts: int) -> int:
    """The wait after ``attempts`` failed tries (attempts ≥ 1)."""
    return RETRY_DELAYS_S[min(attempts, len(RETRY_DELAYS_S)) - 1]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Varta-Signature``: HMAC-SHA256 of ``<timestamp>.<body>`` with the subscription's
    secret, hex. The timestamp (``X-Varta-Timestamp``, Unix seconds) is signed too, so an
    old delivery replayed later is told apart by its age."""
    msg = str(int(timestamp)).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def secret_for(master: bytes, subscription_id: int, nonce: str) -> str:
    """The subscription's signing secret, derived (never stored): from the city's key-derived
    ``master`` secret, the subscription and its nonce (a new nonce is a new secret)."""
    raw = hmac.new(master, f"{subscription_id}:{nonce}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def check_url(url: str, allow_http_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")) -> str:
    """A receiver's URL: https, or http to this machine only (tests, a local relay)."""
    if url.strip() == SSE:
        return SSE
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ExchangeError(f"receiver URL {url!r}: give an https:// address")
    if parts.scheme == "http" and parts.hostname not in allow_http_hosts:
        raise ExchangeError(f"receiver URL {url!r}: plain http is allowed only to this machine; use https")
    return url.strip()


def check_filters(kind: str, filters: dict | None) -> dict:
    """What a subscription asks for. Requests: the events (default all). Alarms: camera groups,
    classes, rules, severities (each a list; empty = all)."""
    if kind not in KINDS:
        raise ExchangeError(f"subscription kind {kind!r}: one of {', '.join(KINDS)}")
    f = dict(filters or {})
    allowed = {"requests": {"events"}, "alarms": {"groups", "classes", "rules", "severities", "polygon",
                                                  "schedule"}}[kind]
    unknown = sorted(set(f) - allowed)
    if unknown:
        raise ExchangeError(f"filters {unknown} are not for {kind} subscriptions (known: {sorted(allowed)})")
    for k, v in f.items():
        if k == "polygon":
            if (not isinstance(v, list) or len(v) < 3
                    or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) for c in p)
                               for p in v)):
                raise ExchangeError("filter 'polygon': at least three [lat, lon] corners")
        elif k == "schedule":
            from varta.cameras.schedule import Schedule, ScheduleError

            try:
                Schedule.from_json(v, modes=("on", "off"), default_mode="on", what="delivery")
            except ScheduleError as exc:
                raise ExchangeError(f"filter 'schedule': {exc}") from None
        elif not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ExchangeError(f"filter {k!r}: a list of strings")
    bad = sorted(set(f.get("events", [])) - set(REQUEST_EVENTS))
    if bad:
        raise ExchangeError(f"events {bad}: known are {', '.join(REQUEST_EVENTS)}")
    return f


def wants(kind: str, filters: dict, event_type: str, event: dict) -> bool:
    """Does a subscription with ``filters`` want this event?"""
    if kind == "requests":
        return not filters.get("events") or event_type in filters["events"]
    checks = (("groups", event.get("group")), ("classes", event.get("label")), ("rules", event.get("rule")),
              ("severities", event.get("severity")))
    if not all(not filters.get(k) or v in filters[k] for k, v in checks):
        return False
    if filters.get("polygon"):
        from varta.cameras.geo import inside

        if event.get("latitude") is None or not inside([tuple(p) for p in filters["polygon"]], event["latitude"],
                                                       event["longitude"]):
            return False
    if filters.get("schedule") and event.get("local") is not None:
        from varta.cameras.schedule import Schedule

        when = Schedule.from_json(filters["schedule"], modes=("on", "off"), default_mode="on", what="delivery")
        return when.mode_at(event["local"]) == "on"
    return True
