"""Sending the outbox (a cluster duty: one web node for the city, by lease).

Each tick tries the head of every subscription's queue that is due: signed POST, 2xx =
delivered and the next one goes at once; anything else is retried after a growing wait
(``rules.RETRY_DELAYS_S``); after ``rules.MAX_ATTEMPTS`` the delivery is dead-lettered, a
system alarm says so and the queue moves on. Delivery is at least once (a crash between
the POST and the mark sends it again): receivers deduplicate by ``X-Varta-Event-Id``.
Before sending, the subscriber's right to the event is checked again (``allowed``): an
account disabled or a camera group withdrawn since the event was queued stops it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

import httpx

from varta.clock import US, now_us
from varta.exchange import rules
from varta.exchange.store import Exchange

log = logging.getLogger("varta.exchange")


def rights_check(access) -> Callable[[object, dict], str | None]:
    """``allowed(subscription, payload)`` against the policy now: the owner active, and for
    an alarm allowed to see that camera group's alarms (its role and groups today, not when
    it subscribed), from wherever its role may work."""
    from varta.access.policy import DIRECT, REMOTE
    from varta.access.service import principal_of

    def allowed(sub, payload: dict) -> str | None:
        acc = access.accounts.get(sub.owner)
        if acc is None or not acc.active:
            return f"account {sub.owner} is disabled or gone"
        if sub.kind == "requests":
            return None if (payload.get("request") or {}).get("id") is not None else "not a request event"
        group = (payload.get("alarm") or {}).get("group")
        policy = access.policy()
        for kind in (REMOTE, DIRECT):
            if policy.decide(principal_of(acc, kind, False, "delivery"), "event.view", group):
                return None
        return f"{sub.owner} may not see alarms of camera group {group!r}"

    return allowed


class Dispatcher:
    def __init__(self, exchange: Exchange, allowed: Callable[[object, dict], str | None], alarms=None,
                 timeout_s: float = 5.0, budget_s: float = 20.0, withhold_picture=None):
        """``allowed(subscription, delivery)``: None when the owner may receive it, else why not;
        ``withhold_picture(payload)``: why the alarm's picture stays home now (a lockdown)."""
        self.exchange, self.allowed, self.alarms = exchange, allowed, alarms
        self.withhold_picture = withhold_picture
        self.timeout_s, self.budget_s = timeout_s, budget_s
        self._client: httpx.Client | None = None

    def tick(self) -> int:
        """One pass; returns how many deliveries were made."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
        sent, started = 0, time.monotonic()
        while time.monotonic() - started < self.budget_s:
            heads = self.exchange.heads(now_us())
            if not heads:
                break
            progressed = False
            for sub, d in heads:
                ok = self._try(sub, d)
                sent += ok
                progressed |= ok
            if not progressed:
                break
        return sent

    def _try(self, sub, d) -> bool:
        if sub.url == rules.SSE:  # read by its owner over Server-Sent Events, not POSTed
            return False
        why_not = self.allowed(sub, d.payload)
        if why_not:
            self.exchange.mark(d.id, state="withheld", last_error=f"not sent: {why_not}", attempts=d.attempts)
            return False
        payload = d.payload
        withheld = self.withhold_picture(payload) if self.withhold_picture else None
        if withheld:  # a lockdown: the alarm goes, its picture does not (varta/lockdown)
            from varta.lockdown.service import without_picture

            payload = without_picture(payload, withheld)
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": "Varta",
                   "X-Varta-Event": d.event_type, "X-Varta-Event-Id": d.event_id, "X-Varta-Delivery": str(d.id),
                   "X-Varta-Timestamp": str(ts),
                   "X-Varta-Signature": rules.signature(self.exchange.secret(sub.id, sub.secret_nonce), ts, body)}
        status, error = None, None
        try:
            r = self._client.post(sub.url, content=body, headers=headers)
            status = r.status_code
            if 200 <= r.status_code < 300:
                self.exchange.mark(d.id, state="delivered", attempts=d.attempts + 1, last_status=status,
                                   last_error=None, delivered_us=now_us())
                return True
            error = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        attempts = d.attempts + 1
        if attempts >= rules.MAX_ATTEMPTS:
            self.exchange.mark(d.id, state="dead", attempts=attempts, last_status=status, last_error=error)
            log.error("delivery %s of %s to %s dead after %d attempts: %s", d.id, d.event_type, sub.url, attempts, error)
            if self.alarms is not None:
                self.alarms.raise_once("webhook_failed", "warning",
                                       f"subscription {sub.id} ({sub.owner}): {d.event_type} {d.event_id} not "
                                       f"delivered to {sub.url} after {attempts} attempts: {error}")
        else:
            self.exchange.mark(d.id, attempts=attempts, last_status=status, last_error=error,
                               next_us=now_us() + rules.next_delay_s(attempts) * US)
        return False
