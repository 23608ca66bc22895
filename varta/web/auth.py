"""HTTP side of access control: who is calling, from where, and may they (one policy).

Every route declares its action with :func:`guard` (or :func:`public`); a test walks the
app's routes and fails on any route that has neither, so nothing can be added unguarded.

* Browser sessions: an HttpOnly, SameSite=Strict cookie; requests that change anything
  must also carry the session's CSRF token in ``X-CSRF-Token`` and, when the browser sends
  an ``Origin``, come from this server's own origin.
* Outside systems (police dispatch, R11): ``Authorization: Bearer varta_…`` API tokens,
  limited to their scopes and to what their account's role may do.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, WebSocket, WebSocketException
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from varta.access.accounts import Account
from varta.access.policy import Principal
from varta.access.service import AccessControl, principal_of
from varta.access.sessions import FULL, ApiToken, Session
from varta.web.deps import AppServices

SESSION_COOKIE = "varta_session"
CSRF_COOKIE = "varta_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


BULK_ACTIONS = frozenset({"live.view", "archive.play", "archive.export"})


@dataclass
class Caller:
    principal: Principal
    account: Account
    access: AccessControl
    svc: AppServices
    session: Session | None = None
    token: ApiToken | None = None

    def require(self, action: str, camera_id: str | None = None, detail: str = "") -> None:
        """Check one more action (e.g. each camera of a multi-camera export); 403 if refused."""
        group, obj = None, ""
        if camera_id is not None:
            cam = self.svc.registry.get(camera_id, include_removed=True)
            if cam is None:
                raise HTTPException(404, f"no camera {camera_id}")
            group, obj = cam.group_name, f"camera:{camera_id}"
        d = self.access.check(self.principal, action, obj, group, detail)
        if not d:
            raise HTTPException(403, d.reason)
        if camera_id is not None:
            self.lockdown_check(action, cam)
            if action in BULK_ACTIONS:  # one viewer opening camera after camera: alarmed (bulkview.py)
                self.access.watch_viewing(self.principal, f"token:{self.token.id}" if self.token else self.principal.login,
                                          camera_id, self.svc.alarms)

    def lockdown_check(self, action: str, cam) -> None:
        """A lockdown in force shuts remote views of the cameras in its scope (varta/lockdown):
        403, journaled as refused."""
        why = self.svc.lockdown.refusal(self.principal, action, cam.sensitivity) if self.svc.lockdown else None
        if why:
            self.access.record(self.principal, action, f"camera:{cam.id}", "refused", why)
            raise HTTPException(403, why)

    def may(self, action: str) -> bool:
        """Whether the policy gives this caller ``action`` at all (camera-scoped actions: on
        some camera group it has), asked quietly: nothing is journaled."""
        groups = self.principal.camera_groups
        return bool(self.access.policy().decide(self.principal, action, groups[0] if groups else None))

    def sees_camera(self, cam) -> bool:
        return bool(self.access.policy().decide(self.principal, "camera.list", cam.group_name))

    def record(self, action: str, obj: str = "", result: str = "ok", detail: str = "") -> int:
        return self.access.record(self.principal, action, obj, result, detail)


def source_address(request: HTTPConnection, access: AccessControl) -> str:
    peer = request.client.host if request.client else ""
    return access.site.client_address(peer, request.headers.get("x-forwarded-for"))


def entrance_address(conn: HTTPConnection) -> str:
    """Our own address the connection arrived at (a remote entrance makes it remote access)."""
    server = conn.scope.get("server")
    return str(server[0]) if server else ""


def _bearer(request: HTTPConnection) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _check_csrf(request: Request, session: Session) -> None:
    if request.method in _SAFE_METHODS:
        return
    if not _same_origin(request):
        raise HTTPException(403, "cross-site request refused (Origin does not match this server)")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent, session.csrf):
        raise HTTPException(403, f"missing or wrong CSRF token: send the {CSRF_HEADER} header "
                                 f"given at sign-in (cookie {CSRF_COOKIE})")


def authenticate(request: Request, stages=(FULL,)) -> Caller:
    caller = identify(request, stages)
    if caller.session is not None:
        _check_csrf(request, caller.session)
    return caller


def identify(conn: HTTPConnection, stages=(FULL,)) -> Caller:
    """Who is on this request or WebSocket: a Bearer token or a live session (401 if none)."""
    svc: AppServices = conn.app.state.services
    access = svc.access
    source = source_address(conn, access)
    bearer = _bearer(conn)
    if bearer:
        token, why = access.tokens.resolve(bearer)
        acc = access.accounts.get_by_id(token.user_id) if token else None
        if token is None or acc is None or not acc.active:
            raise HTTPException(401, why or "the token's account is disabled",
                                headers={"WWW-Authenticate": "Bearer"})
        kind, restricted = access.site.classify(source, entrance_address(conn))
        who = principal_of(acc, kind, restricted, source, scopes=token.scopes)
        wait = _token_rates.take(token.id, svc.settings.token_rate_per_min)
        if wait:
            access.record(who, "account.self", f"token:{token.id}", "refused",
                          f"rate limit: more than {svc.settings.token_rate_per_min} calls a minute")
            raise HTTPException(429, f"too many calls with this token: at most {svc.settings.token_rate_per_min} "
                                     f"a minute; retry in {wait:.0f} s", headers={"Retry-After": str(max(1, round(wait)))})
        return Caller(who, acc, access, svc, token=token)
    session, why = access.sessions.resolve(conn.cookies.get(SESSION_COOKIE))
    if session is None:
        raise HTTPException(401, why)
    acc = access.accounts.get_by_id(session.user_id)
    if acc is None or not acc.active:
        raise HTTPException(401, "the account is disabled")
    if session.stage not in stages:
        raise HTTPException(403, {"code": session.stage, "message": _STAGE_MESSAGES.get(session.stage, session.stage)})
    return Caller(principal_of(acc, session.access, session.restricted, session.source), acc, access, svc,
                  session=session)


def _same_origin(conn: HTTPConnection) -> bool:
    origin = conn.headers.get("origin")
    return not origin or origin == "null" or urlsplit(origin).netloc == conn.headers.get("host", "")


_STAGE_MESSAGES = {
    "password": "change the one-time password first (POST /api/auth/password)",
    "totp_enrol": "remote sessions need a second factor: enrol an authenticator app first "
                  "(POST /api/auth/totp/setup, then /api/auth/totp/confirm)",
}


def guard(action: str, camera_param: str | None = None, stages=(FULL,)):
    """Dependency: the caller, authenticated and allowed ``action`` (on the path's camera)."""

    def dependency(request: Request) -> Caller:
        caller = authenticate(request, stages)
        caller.require(action, request.path_params.get(camera_param) if camera_param else None)
        return caller

    dependency.varta_action = action
    return Depends(dependency)


def guard_any(*actions: str):
    """Dependency: the caller, allowed at least one of ``actions`` (the route then decides
    what each may see: e.g. the department every request, the police its own)."""

    def dependency(request: Request) -> Caller:
        caller = authenticate(request)
        if not any(caller.may(a) for a in actions):
            caller.require(actions[0])  # refused: journaled, 403 with the reason
        return caller

    dependency.varta_action = actions[0]
    return Depends(dependency)


def ws_guard(action: str, camera_param: str | None = None):
    """:func:`guard` for WebSockets: the same session and policy; a refusal closes the
    socket with code 1008 (policy violation) and is journaled. Browsers send cookies on
    WebSockets but no CSRF header, and any site may open one: the Origin must be ours."""

    async def dependency(websocket: WebSocket) -> Caller:
        if not _same_origin(websocket):  # another site's page: refused at the handshake (HTTP 403)
            raise WebSocketException(1008, "cross-site WebSocket refused")
        try:
            caller = await run_in_threadpool(_identify_and_require, websocket, action, camera_param)
        except HTTPException as exc:
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            # Our own console: accept, then close with 1008 and the reason. A refusal at the
            # handshake reaches the page as a bare 1006 ("connection lost"), which the console
            # would retry for ever, journaling a refusal each time.
            await websocket.accept()
            raise WebSocketException(1008, detail[:120]) from None
        return caller

    dependency.varta_action = action
    return Depends(dependency)


def _identify_and_require(websocket: WebSocket, action: str, camera_param: str | None) -> Caller:
    caller = identify(websocket)  # database reads: off the event loop
    caller.require(action, websocket.path_params.get(camera_param) if camera_param else None)
    return caller


def public(reason: str):
    """Dependency for the few routes anyone may call (sign-in, liveness)."""

    def dependency() -> None:
        return None

    dependency.varta_action = f"public: {reason}"
    return Depends(dependency)


def route_actions(app) -> dict[tuple[str, str], str | None]:
    """{(method, path): action} for every API route; None where a route has no guard."""
    from fastapi.routing import APIRoute, APIWebSocketRoute

    def find(dependant):
        for d in dependant.dependencies:
            act = getattr(d.call, "varta_action", None) or find(d)
            if act:
                return act
        return None

    out = {}

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                for method in route.methods:
                    out[(method, prefix + route.path)] = find(route.dependant)
            elif isinstance(route, APIWebSocketRoute):
                out[("WEBSOCKET", prefix + route.path)] = find(route.dependant)
            elif hasattr(route, "original_router"):  # FastAPI's included router
                ctx = getattr(route, "include_context", None)
                walk(route.original_router.routes, prefix + (getattr(ctx, "prefix", "") or ""))

    walk(app.routes, "")
    return out


class TokenRates:
    """A token bucket per API token (per web node): ``rate`` calls a minute, bursts up to a
    quarter of it. ``take`` returns 0 when the call may go, else the seconds to wait."""

    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = Lock()

    def take(self, key: str, rate_per_min: float) -> float:
        import time as _time

        if rate_per_min <= 0:
            return 0.0
        now, per_s, cap = _time.monotonic(), rate_per_min / 60.0, max(1.0, rate_per_min / 4)
        with self._lock:
            level, at = self._buckets.get(key, (cap, now))
            level = min(cap, level + (now - at) * per_s)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / per_s


_token_rates = TokenRates()


class SeenOnce:
    """Remembers (key) recently journaled so that one viewing is one line, not one per
    HTTP range request. Per process; a second web node may journal the same view again."""

    def __init__(self, size: int = 50000):
        self._seen: OrderedDict = OrderedDict()
        self._size = size
        self._lock = Lock()

    def first(self, key) -> bool:
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = True
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True

