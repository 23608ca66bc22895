"""Alarms to outside systems (police dispatch, MVS-3): an HTTP POST per event, signed.

The body is the event as JSON; ``X-Varta-Signature: sha256=<hex>`` is the HMAC-SHA256 of
the body with the shared secret, so the receiver can tell Varta's alarms from forgeries.
Delivery is retried with backoff on a background thread; a receiver that stays down
raises a system alarm instead of blocking analysis.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading

import httpx

log = logging.getLogger("varta.webhook")
RETRIES = (1.0, 3.0, 10.0)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, url: str, secret: str, alarms=None, timeout_s: float = 5.0):
        self.url, self.secret, self.alarms, self.timeout_s = url, secret, alarms, timeout_s
        self._queue: queue.Queue = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0

    def start(self) -> "WebhookSender":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)

    def send(self, kind: str, event: dict) -> None:
        try:
            self._queue.put_nowait({"type": kind, "event": event})
        except queue.Full:
            self.failed += 1
            log.error("webhook queue full: alarm %s for %s not forwarded", event.get("id"), event.get("camera_id"))

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                body = json.dumps(item, ensure_ascii=False, default=str).encode()
                headers = {"Content-Type": "application/json", "User-Agent": "Varta"}
                if self.secret:
                    headers["X-Varta-Signature"] = signature(self.secret, body)
                error = ""
                for wait in (0.0, *RETRIES):
                    if wait and self._stop.wait(wait):
                        return
                    try:
                        resp = client.post(self.url, content=body, headers=headers)
                        if resp.status_code < 300:
                            self.delivered += 1
                            error = ""
                            break
                        error = f"HTTP {resp.status_code}"
                    except httpx.HTTPError as exc:
                        error = type(exc).__name__
                if error:
                    self.failed += 1
                    msg = f"alarm webhook failed after {len(RETRIES) + 1} tries ({error}); event {item['event'].get('id')}"
                    log.error(msg)
                    if self.alarms is not None:
                        self.alarms.raise_once("webhook_failed", "warning", msg)
