"""OpenID Connect single sign-on against the city's identity provider (docs/access.md).

Authorization-code flow with PKCE (S256), ``state`` and ``nonce``: ``/start`` sends the
browser to the provider, ``/callback`` takes the code back, exchanges it at the provider's
token endpoint (authlib's httpx client) and validates the ID token against the provider's
keys from discovery (joserfc signature check, authlib's OpenID claims rules: issuer,
audience, expiry, nonce, ``at_hash``). The provider's groups give the account's role and
camera groups (varta.access.sso); then the session is made exactly as a local sign-in
makes it, under the same rules (A4.3: direct or remote by the network; a remote session
needs a second factor: the provider's, when its ID token asserts one, else Varta's TOTP),
and journaled with the same actions. Nothing here logs a token or a secret.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import threading
import time
from urllib.parse import quote

import warnings

from authlib.common.security import generate_token
from authlib.oidc.core import CodeIDToken
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import BaseModel, Field

from varta.access import sso
from varta.access.accounts import AccountError
from varta.access.policy import REMOTE, Principal
from varta.access.service import principal_of
from varta.access.sessions import FULL, TOTP_ENROL
from varta.clock import US, format_time, now_us
from varta.web.api_auth import _me, _set_cookies
from varta.web.auth import SESSION_COOKIE, Caller, entrance_address, guard, public, source_address
from varta.web.deps import AppServices, services

with warnings.catch_warnings():
    # authlib prefers the httpx2 package and says so on import; the httpx it falls back to works.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

router = APIRouter(prefix="/api/auth/oidc", tags=["auth"])

FLOW_COOKIE = "varta_oidc"  # state, nonce and PKCE verifier of a sign-in under way (this browser only)
FLOW_TTL_S = 600
# A session stage: the provider signed the person in without asserting a second factor,
# and the account has Varta's TOTP: the code is still due (POST /api/auth/oidc/otp).
OIDC_OTP = "oidc_otp"
OTP_TTL_S = 300
# Signature algorithms accepted on ID tokens: public-key ones only (never "none", never a
# MAC keyed with the client secret).
_ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable (``code`` for the console)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code


class Provider:
    """One OpenID provider: discovery and keys (cached), the authorization URL, the code
    exchange and the ID token's validation."""

    METADATA_TTL_S = 3600.0

    def __init__(self, settings):
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self._secret = settings.oidc_client_secret
        self.scopes = settings.oidc_scopes
        self.timeout = settings.oidc_timeout_s
        self._meta: tuple[float, dict] | None = None
        self._jwks: dict | None = None
        self._lock = threading.Lock()

    def _client(self, redirect_uri: str | None = None) -> OAuth2Client:
        return OAuth2Client(self.client_id, self._secret or None, scope=self.scopes, redirect_uri=redirect_uri,
                            code_challenge_method="S256", timeout=self.timeout,
                            token_endpoint_auth_method="client_secret_basic" if self._secret else "none")

    def _get_json(self, url: str) -> dict:
        try:
            with self._client() as c:
                r = c.request("GET", url, withhold_token=True)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - any network failure: the provider is unavailable
            raise ProviderError("unavailable", f"{url} does not answer ({type(exc).__name__})") from None
        if r.status_code != 200:
            raise ProviderError("unavailable", f"{url} answered HTTP {r.status_code}")
        try:
            return r.json()
        except ValueError:
            raise ProviderError("unavailable", f"{url} did not answer JSON") from None

    def metadata(self) -> dict:
        with self._lock:
            if self._meta and time.monotonic() - self._meta[0] < self.METADATA_TTL_S:
                return self._meta[1]
        try:
            meta = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        except Exception as exc:  # noqa: BLE001 - any network failure: the provider is unavailable
            if isinstance(exc, ProviderError):
                raise
            raise ProviderError("unavailable", f"the identity provider {self.issuer} does not answer "
                                               f"({type(exc).__name__})") from None
        if str(meta.get("issuer", "")).rstrip("/") != self.issuer:  # OpenID Connect Discovery §4.3
            raise ProviderError("unavailable", f"the discovery document names issuer {meta.get('issuer')!r}, "
                                               f"not {self.issuer!r}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not meta.get(key):
                raise ProviderError("unavailable", f"the discovery document has no {key}")
        with self._lock:
            self._meta = (time.monotonic(), meta)
        return meta

    def keys(self, force: bool = False) -> KeySet:
        if self._jwks is None or force:
            self._jwks = self._get_json(self.metadata()["jwks_uri"])
        return KeySet.import_key_set(self._jwks)

    def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        with self._client(redirect_uri) as c:
            url, _ = c.create_authorization_url(self.metadata()["authorization_endpoint"], state=state,
                                                code_verifier=verifier, nonce=nonce)
        return url

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> dict:
        try:
            with self._client(redirect_uri) as c:
                token = c.fetch_token(self.metadata()["token_endpoint"], grant_type="authorization_code", code=code,
                                      code_verifier=verifier, redirect_uri=redirect_uri)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the provider's refusal or a network failure
            # The error's class and OAuth error code only: never the response body (tokens).
            what = getattr(exc, "error", "") or type(exc).__name__
            raise ProviderError("failed", f"the code exchange failed ({what})") from None
        if "id_token" not in token:
            raise ProviderError("failed", "the provider's answer has no ID token (is 'openid' in oidc_scopes?)")
        return dict(token)

    def userinfo(self, token: dict) -> dict:
        """The UserInfo endpoint's claims (providers that keep groups out of the ID token)."""
        url = self.metadata().get("userinfo_endpoint")
        if not url or not token.get("access_token"):
            return {}
        try:
            with self._client() as c:
                r = c.request("GET", url, headers={"Authorization": f"Bearer {token['access_token']}"}, withhold_token=True)
            return r.json() if r.status_code == 200 else {}
        except Exception:  # noqa: BLE001 - then only the ID token's claims count
            return {}

    def validate(self, token: dict, nonce: str) -> dict:
        """The ID token's claims, checked: signature by the provider's key (JWKS), issuer,
        audience, expiry, issue time, nonce, authorized party and the access token's hash."""
        meta = self.metadata()
        algs = [a for a in (meta.get("id_token_signing_alg_values_supported") or ["RS256"]) if a in _ASYMMETRIC]
        registry = JWSRegistry(algorithms=algs or ["RS256"])
        try:
            try:
                decoded = jwt.decode(token["id_token"], self.keys(), registry=registry)
            except InvalidKeyIdError:  # the provider rolled its keys: fetch them again, once
                decoded = jwt.decode(token["id_token"], self.keys(force=True), registry=registry)
            # OpenID Connect Core §3.1.3.7: the issuer is the provider's and the audience holds our client.
            claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"essential": True, "value": meta["issuer"]},
                                                                  "aud": {"essential": True, "values": [self.client_id]}},
                                 {"nonce": nonce, "client_id": self.client_id,
                                  "access_token": token.get("access_token")})
            claims.validate(leeway=60)
        except (JoseError, ValueError) as exc:
            raise ProviderError("failed", f"the ID token is not valid ({type(exc).__name__}: "
                                          f"{getattr(exc, 'description', '') or exc})") from None
        return dict(claims)


_providers: dict[tuple, Provider] = {}
_providers_lock = threading.Lock()


def provider_for(settings) -> Provider:
    key = (settings.oidc_issuer, settings.oidc_client_id, settings.oidc_client_secret, settings.oidc_scopes)
    with _providers_lock:
        p = _providers.get(key)
        if p is None:
            p = _providers[key] = Provider(settings)
        return p


def enabled(settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def label(settings) -> str:
    return settings.oidc_button_label or "OpenID Connect"


def _redirect_uri(request: Request, settings) -> str:
    return settings.oidc_redirect_url or str(request.url_for("oidc_callback"))


# --- the pages the browser passes through -------------------------------------------------
def _to_console(target: str, status: int = 200) -> HTMLResponse:
    """Back to the console by a page of our own (not a redirect): the navigation that follows
    starts on this site, so the SameSite=Strict session cookie goes with it."""
    url = html.escape(target, quote=True)
    body = (f'<!doctype html><html lang="uk"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={url}">'
            f'<title>Varta</title></head><body><p><a href="{url}">Varta</a></p></body></html>')
    return HTMLResponse(body, status_code=status,
                        headers={"Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store"})


def _refused(code: str, status: int = 403) -> HTMLResponse:
    """The console's sign-in page says why, in its own language, from ``code``."""
    return _to_console(f"/?sso_error={quote(code)}", status)


def _flow_cookie(resp: Response, value: str, settings) -> None:
    resp.set_cookie(FLOW_COOKIE, value, max_age=FLOW_TTL_S, httponly=True, secure=settings.cookie_secure,
                    # Lax: the provider sends the browser back by a top-level GET from its own site.
                    samesite="lax", path="/api/auth/oidc/callback")


def _read_flow(request: Request) -> dict | None:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw:
        return None
    try:
        flow = json.loads(base64.urlsafe_b64decode(raw.encode() + b"==="))
    except (ValueError, TypeError):
        return None
    if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) for k in ("state", "nonce", "verifier")):
        return None
    if not isinstance(flow.get("t"), (int, float)) or time.time() - flow["t"] > FLOW_TTL_S:
        return None
    return flow


# --- routes ---------------------------------------------------------------------------------
@router.get("", dependencies=[public("whether single sign-on is offered, for the sign-in page")])
def oidc_info(svc: AppServices = Depends(services)) -> dict:
    s = svc.settings
    return {"enabled": enabled(s), "label": label(s) if enabled(s) else ""}


@router.get("/start", dependencies=[public("starting single sign-on: a redirect to the identity provider")])
def oidc_start(request: Request, svc: AppServices = Depends(services)):
    s = svc.settings
    if not enabled(s):
        raise HTTPException(404, "single sign-on is not configured (oidc_issuer, oidc_client_id)")
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    try:
        url = provider_for(s).authorization_url(_redirect_uri(request, s), state, nonce, verifier)
    except ProviderError as exc:
        who = Principal(login="?", full_name="", role="", access=_access(request, svc)[0],
                        source=source_address(request, svc.access))
        svc.access.record(who, "session.login", "user:?", "failed", f"{exc}; {_via(s)}")
        return _refused(exc.code, 502)
    flow = base64.urlsafe_b64encode(json.dumps({"state": state, "nonce": nonce, "verifier": verifier,
                                                "t": int(time.time())}).encode()).decode().rstrip("=")
    resp = RedirectResponse(url, status_code=303)
    _flow_cookie(resp, flow, s)
    return resp


def _access(request: Request, svc: AppServices) -> tuple[str, bool]:
    return svc.access.site.classify(source_address(request, svc.access), entrance_address(request))


def _via(settings) -> str:
    return f"{sso.VIA} (issuer {settings.oidc_issuer.rstrip('/')})"


@router.get("/callback", name="oidc_callback",
            dependencies=[public("the identity provider's answer (checked by state, nonce and PKCE)")])
def oidc_callback(request: Request, svc: AppServices = Depends(services)):
    s = svc.settings
    if not enabled(s):
        raise HTTPException(404, "single sign-on is not configured")
    access_ctl = svc.access
    source = source_address(request, access_ctl)
    access, restricted = _access(request, svc)
    via = _via(s)
    flow = _read_flow(request)
    q = request.query_params

    def finish(resp: Response) -> Response:
        resp.delete_cookie(FLOW_COOKIE, path="/api/auth/oidc/callback")
        return resp

    def fail(who: Principal, code: str, detail: str, result: str = "failed", status: int = 403) -> Response:
        access_ctl.record(who, "session.login", f"user:{who.login}", result, f"{detail}; {via}")
        return finish(_refused(code, status))

    nobody = Principal(login="?", full_name="", role="", access=access, source=source)
    if q.get("error"):
        # The person cancelled at the provider, or the provider refused; its words, shortened.
        err = q.get("error", "")[:60]
        return fail(nobody, "cancelled" if err == "access_denied" else "failed",
                    f"the identity provider answered {err}: {q.get('error_description', '')[:200]}")
    if q.get("iss") and q["iss"].rstrip("/") != s.oidc_issuer.rstrip("/"):  # RFC 9207: a mixed-up answer
        return fail(nobody, "failed", f"an answer from another issuer ({q['iss'][:100]})", status=400)
    if flow is None or not hmac.compare_digest(flow["state"].encode(), q.get("state", "").encode()):
        # No sign-in started in this browser (or too long ago): possibly a forged answer.
        return fail(nobody, "expired", "an answer from the identity provider without a matching sign-in started "
                                       "in this browser (state)", status=400)
    code = q.get("code", "")
    if not code:
        return fail(nobody, "failed", "the identity provider's answer has no code", status=400)
    provider = provider_for(s)
    try:
        token = provider.exchange(code, _redirect_uri(request, s), flow["verifier"])
        claims = provider.validate(token, flow["nonce"])
    except ProviderError as exc:
        return fail(nobody, exc.code, str(exc), status=502 if exc.code == "unavailable" else 403)
    issuer, subject = str(claims["iss"]).rstrip("/"), str(claims["sub"])
    # Groups and names: the ID token's, else the UserInfo endpoint's for the same subject
    # (OpenID Connect Core §5.3.2). The second factor is only ever read from the ID token.
    person = claims
    if not sso.claim_values(claims, s.oidc_role_claim):
        info = provider.userinfo(token)
        if str(info.get("sub", "")) == subject:
            person = {**info, **claims}

    sso_accounts = sso.SsoAccounts(access_ctl.engine, access_ctl.accounts)
    acc = sso_accounts.find(issuer, subject)
    mapping = sso.map_claims(person, s.oidc_role_claim, sso.parse_role_map(s.oidc_role_map),
                             sso.parse_group_map(s.oidc_group_map))
    login = acc.login if acc else sso.login_for(person, s.oidc_login_claim)
    full_name = sso.full_name_for(person, login)
    who = Principal(login=login, full_name=acc.full_name if acc else full_name,
                    role=mapping.role or (acc.role if acc else ""), access=access, source=source,
                    camera_groups=mapping.camera_groups)
    if mapping.problem:
        if acc is not None:  # the provider took the rights away: the sessions Varta gave end too
            access_ctl.accounts.end_sessions(acc.id)
        return fail(who, "two_roles" if "more than one" in mapping.problem else "no_role", mapping.problem,
                    "refused")
    now = now_us()
    if acc is not None and not acc.active:
        return fail(who, "disabled", "account disabled", "refused")
    if acc is not None and acc.locked_until_us and acc.locked_until_us > now:
        until = format_time(acc.locked_until_us, s.tz)
        return fail(who, "locked", f"attempt while locked until {until}", "refused", 429)
    decision = access_ctl.policy().decide(who, f"session.{access}")
    if not decision:
        return fail(who, "refused", decision.reason, "refused")
    try:
        if acc is None:
            acc = sso_accounts.provision(issuer, subject, login, full_name, mapping.role, mapping.camera_groups)
            changes = [f"account created: role {acc.role}, camera groups [{', '.join(acc.camera_groups)}]"]
        else:
            acc, changes = sso_accounts.follow(acc, full_name, mapping.role, mapping.camera_groups)
    except AccountError as exc:
        return fail(who, "failed", f"the account cannot follow the provider: {exc}", "refused")
    who = principal_of(acc, access, restricted, source)
    if changes:
        access_ctl.record(who, "user.manage", f"user:{acc.login}",
                          detail=f"{'; '.join(changes)} (groups at the provider: {', '.join(mapping.groups)}); {via}")

    factor = sso.second_factor(claims, sso.words(s.oidc_mfa_amr), sso.words(s.oidc_mfa_acr))
    # No second factor asserted: Varta's own, as for a local sign-in — the code whenever one
    # is enrolled, and enrolment first for a remote session (A4.3).
    if factor:
        stage = FULL
    elif acc.totp_enabled:
        stage = OIDC_OTP
    else:
        stage = TOTP_ENROL if access == REMOTE else FULL
    token_, session = access_ctl.sessions.create(acc.id, stage, access, restricted, source)
    if stage != OIDC_OTP:
        access_ctl.accounts.record_success(acc.login)
        access_ctl.record(who, "session.login", f"user:{acc.login}", "ok",
                          f"{'restricted-zone workstation' if who.restricted else access}"
                          f"{f'; second factor by the identity provider ({factor})' if factor else ''}"
                          f"; stage {stage}; {via}")
    resp = _to_console("/")
    _set_cookies(resp, token_, session.csrf, svc)
    return finish(resp)


class OtpIn(BaseModel):
    otp: str = Field(max_length=16, description="the authenticator app's code")


@router.post("/otp")
def oidc_otp(body: OtpIn, request: Request, caller: Caller = guard("account.self", stages=(OIDC_OTP,)),
             svc: AppServices = Depends(services)):
    """The second factor after a single sign-on whose provider asserted none, for an account
    with Varta's TOTP (as a local sign-in asks for it): the authenticator app's code. Then
    the session is a full one."""
    access_ctl, acc, session = svc.access, caller.account, caller.session
    via = _via(svc.settings)
    if session is None:
        raise HTTPException(400, "only a browser session signing in through the identity provider")
    now = now_us()
    if now - session.created_us > OTP_TTL_S * US:
        access_ctl.sessions.end(_cookie(request))
        raise HTTPException(401, "too long since the identity provider signed you in; sign in again")
    if acc.locked_until_us and acc.locked_until_us > now:
        until = format_time(acc.locked_until_us, svc.settings.tz)
        caller.record("session.login", f"user:{acc.login}", "refused", f"attempt while locked until {until}; {via}")
        return JSONResponse({"detail": f"too many failed sign-ins: the account is locked until {until}",
                             "code": "locked"}, status_code=429)
    if not access_ctl.accounts.accept_totp(acc.login, body.otp, now / 1e6):
        n, until = access_ctl.accounts.record_failure(acc.login, now)
        lock = f"; locked until {format_time(until, svc.settings.tz)}" if until else ""
        caller.record("session.login", f"user:{acc.login}", "failed",
                      f"wrong second-factor code (failure {n}{lock}); {via}")
        return JSONResponse({"detail": "wrong or already used second-factor code", "code": "otp_invalid"},
                            status_code=401)
    access_ctl.accounts.record_success(acc.login)
    access_ctl.sessions.set_stage(session.id, FULL)
    caller.record("session.login", f"user:{acc.login}", "ok",
                  f"{'restricted-zone workstation' if caller.principal.restricted else session.access}"
                  f"; second factor; stage {FULL}; {via}")
    session, _ = access_ctl.sessions.resolve(_cookie(request))
    return _me(svc, session, access_ctl.accounts.get_by_id(acc.id))


def _cookie(request: Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")
