"""Lockdown on a node: the state every web node reads (at most a quarter second old), the
moves, and their journal lines (service; the rules are in rules.py)."""

from __future__ import annotations

import logging
import threading
import time

from varta.clock import format_time, now_us
from varta.lockdown import rules
from varta.lockdown.rules import LockdownError, LockState
from varta.lockdown.store import LockdownStore

log = logging.getLogger("varta.lockdown")
ACTION, OBJ = "lockdown.manage", "lockdown"


class Lockdown:
    def __init__(self, engine, access, tz, ttl_s: float = 0.25):
        self.store = LockdownStore(engine)
        self.access = access
        self.tz = tz
        self.ttl_s = ttl_s
        self._cached: tuple[float, LockState | None] | None = None
        self._lock = threading.Lock()

    # --- reading ------------------------------------------------------------------------
    def state(self) -> LockState | None:
        fresh, st = self.peek()
        if fresh:
            return st
        try:
            st = self.store.current()
        except Exception:  # noqa: BLE001 - the database unreachable: keep the last known state
            log.warning("reading the lockdown state failed; keeping the last known one", exc_info=True)
            with self._lock:  # and wait a while before the next try (every live socket asks)
                last = self._cached[1] if self._cached else None
                self._cached = (time.monotonic() + 2.0, last)
            return last
        with self._lock:
            self._cached = (time.monotonic(), st)
        return st

    def peek(self) -> tuple[bool, LockState | None]:
        """The cached state without touching the database: (fresh?, state)."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl_s:
                return True, self._cached[1]
        return False, None

    def _forget(self) -> None:
        with self._lock:
            self._cached = None

    def refusal(self, who, action: str, sensitivity: str) -> str | None:
        return rules.refusal(self.state(), who, action, sensitivity)

    def picture_withheld(self, sensitivity: str) -> bool:
        return rules.picture_withheld(self.state(), sensitivity)

    def status(self, pending: bool = False) -> dict:
        st = self.state()
        out: dict = {"active": st is not None}
        if st is not None:
            out |= {"id": st.id, "scope": st.scope, "reason": st.reason, "source": st.source,
                    "since": format_time(st.started_us, self.tz), "started_by": st.started_by,
                    "confirmed_by": st.confirmed_by}
        if pending:
            out["pending"] = [self._request_out(r) for r in self.store.pending()]
        return out

    def _request_out(self, r: dict) -> dict:
        return {"id": r["id"], "move": r["move"], "scope": r["scope"], "reason": r["reason"],
                "requested_by": r["requested_by"], "requested_name": r["requested_name"],
                "requested": format_time(r["requested_us"], self.tz), "expires": format_time(r["expires_us"], self.tz),
                "state": r["state"], "decided_by": r["decided_by"]}

    # --- moves --------------------------------------------------------------------------
    def on(self, who, scope: str, reason: str, source: str, asked_by: str | None = None) -> LockState:
        """In force now. ``asked_by``: the person who asked in the console; ``who`` then is
        the second person, whose confirmation makes it take effect."""
        reason = (reason or "").strip()
        rules.check_move("on", scope, reason, self.store.current())
        by, confirmed = (asked_by, who.login) if asked_by else (who.login, None)
        st = self.store.start(scope, reason, source, by, confirmed)
        self._forget()
        self.access.record(who, ACTION, OBJ, detail=f"lockdown on: {scope} cameras; reason: {reason}"
                           + (f"; asked by {asked_by}, confirmed by {who.login}" if asked_by else "")
                           + f"; via {source}")
        log.warning("lockdown ON (%s cameras) by %s%s: %s", scope, by,
                    f", confirmed by {confirmed}" if confirmed else "", reason)
        return st

    def off(self, who, reason: str, source: str, asked_by: str | None = None,
            lockdown_id: int | None = None) -> LockState:
        reason = (reason or "").strip()
        st = self.store.current()
        rules.check_move("off", None, reason, st)
        if lockdown_id is not None and st.id != lockdown_id:
            raise LockdownError("the lockdown this request would lift has ended or been replaced: ask again")
        by, confirmed = (asked_by, who.login) if asked_by else (who.login, None)
        if not self.store.end(st.id, by, reason, confirmed):
            raise LockdownError("the lockdown was ended or replaced meanwhile; look at the status")
        self._forget()
        self.access.record(who, ACTION, OBJ, detail=f"lockdown off ({st.scope} cameras, since "
                           f"{format_time(st.started_us, self.tz)}); reason: {reason}"
                           + (f"; asked by {asked_by}, confirmed by {who.login}" if asked_by else "")
                           + f"; via {source}")
        log.warning("lockdown OFF by %s: %s", by, reason)
        return st

    # --- from the console: asked by one person, confirmed by another ---------------------
    def ask(self, who, move: str, scope: str | None, reason: str) -> dict:
        reason = (reason or "").strip()
        st = self.store.current()
        rules.check_move(move, scope if move == "on" else None, reason, st)
        rid = self.store.ask(move, scope if move == "on" else None, reason, who.login, who.full_name,
                             now_us() + int(rules.CONFIRM_WINDOW_S * 1e6),
                             target_id=st.id if move == "off" and st is not None else None)
        what = f"lockdown {move}" + (f" ({scope} cameras)" if move == "on" else "")
        self.access.record(who, ACTION, f"lockdown-request:{rid}",
                           detail=f"asked for {what}; reason: {reason}; awaits a second person's confirmation")
        return self._request_out(self.store.request(rid))

    def confirm(self, who, rid: int) -> dict:
        r = self.store.request(rid)
        if r is None:
            raise LookupError(f"no lockdown request {rid}")
        why = rules.confirm_refusal(r["requested_by"], r["state"], r["expires_us"], who.login, now_us())
        if why:
            self.access.record(who, ACTION, f"lockdown-request:{rid}", "refused", f"confirmation refused: {why}")
            raise LockdownError(why)
        st = self.store.current()
        try:
            rules.check_move(r["move"], r["scope"], r["reason"], st)
            if r["move"] == "off" and (st is None or st.id != r["target_id"]):
                raise LockdownError("the lockdown this request would lift has ended or been replaced since it was "
                                    "asked for: ask again")
        except LockdownError as exc:
            self.store.decide(rid, "refused", who.login)
            self.access.record(who, ACTION, f"lockdown-request:{rid}", "refused", f"confirmation refused: {exc}")
            raise
        if not self.store.decide(rid, "done", who.login):
            raise LockdownError("the request was confirmed or withdrawn meanwhile")
        try:
            if r["move"] == "on":
                self.on(who, r["scope"], r["reason"], "web", asked_by=r["requested_by"])
            else:
                self.off(who, r["reason"], "web", asked_by=r["requested_by"], lockdown_id=r["target_id"])
        except LockdownError:
            self.store.set_state(rid, "refused")  # nothing took effect: the request says so
            raise
        return self._request_out(self.store.request(rid))

    def withdraw(self, who, rid: int) -> dict:
        r = self.store.request(rid)
        if r is None:
            raise LookupError(f"no lockdown request {rid}")
        state = "withdrawn" if r["requested_by"] == who.login else "refused"
        if not self.store.decide(rid, state, who.login):
            raise LockdownError(f"the request is {r['state']}, not waiting for confirmation")
        self.access.record(who, ACTION, f"lockdown-request:{rid}",
                           detail=f"lockdown request {state} ({r['move']}, asked by {r['requested_by']})")
        return self._request_out(self.store.request(rid))

    # --- an alert feed (air-raid alert webhook) ---------------------------------------
    def alert(self, who, active: bool, scope: str, detail: str) -> dict:
        """The feed says an alert began (lockdown on, unless one is in force) or ended (the
        lockdown it started ends; one a person started stays)."""
        st = self.store.current()
        reason = f"alert feed: {detail or ('alert' if active else 'all clear')}"
        if active:
            if st is None:
                self.on(who, scope, reason, "alert")
                return {"changed": True, **self.status()}
            if st.source == "alert" and st.scope == "sensitive" and scope == "all":
                self.on(who, scope, reason, "alert")  # the feed widens its own lockdown
                return {"changed": True, **self.status()}
            # A person's lockdown stays as they made it: the feed neither replaces it nor,
            # with its all-clear, ends it.
            return {"changed": False, **self.status()}
        if st is not None and st.source == "alert":
            self.off(who, reason, "alert")
            return {"changed": True, **self.status()}
        return {"changed": False, **self.status()}



def withheld_picture(engine):
    """``check(payload) -> reason | None`` for outgoing alarms (subscriptions' webhooks and
    streams): during a lockdown an alarm of a camera in its scope leaves without its picture."""
    from varta.cameras.registry import CameraRegistry

    store, registry = LockdownStore(engine), CameraRegistry(engine)

    def check(payload: dict) -> str | None:
        cam_id = (payload.get("alarm") or {}).get("camera_id") or payload.get("camera_id")
        if not cam_id:
            return None
        st = store.current()
        if st is None:
            return None
        cam = registry.get(cam_id, include_removed=True)
        if rules.picture_withheld(st, cam.sensitivity if cam else "normal"):
            return f"picture withheld: lockdown in force ({st.scope} cameras)"
        return None

    return check


def without_picture(payload: dict, why: str) -> dict:
    out = {k: v for k, v in payload.items() if k not in ("picture_jpeg_base64", "snapshot_url")}
    out["picture_withheld"] = why
    return out
