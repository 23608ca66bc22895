"""/api/auth: sign-in, sign-out, one's own password and second factor."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from varta.access import credentials
from varta.access.accounts import AccountError
from varta.access.policy import ROLE_TITLES
from varta.access.service import principal_of, session_stage
from varta.access.sessions import FULL, MUST_CHANGE_PASSWORD, TOTP_ENROL
from varta.web.auth import (CSRF_COOKIE, SESSION_COOKIE, Caller, authenticate, entrance_address, guard, public,
                            source_address)
from varta.web.deps import AppServices, services

router = APIRouter(prefix="/api/auth", tags=["auth"])

ANY_STAGE = (FULL, MUST_CHANGE_PASSWORD, TOTP_ENROL)


class LoginIn(BaseModel):
    login: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    otp: str | None = Field(default=None, max_length=16, description="authenticator code (remote sessions)")


def _me(svc: AppServices, session, account) -> dict:
    p = svc.access.policy()
    who = principal_of(account, session.access, session.restricted, session.source)
    return {
        "login": account.login, "full_name": account.full_name, "role": account.role,
        "role_title": dict(zip(("uk", "en"), ROLE_TITLES[account.role])),
        "position": account.position, "organisation": account.organisation,
        "camera_groups": list(account.camera_groups), "access": session.access,
        "restricted_zone": who.restricted, "source": session.source, "stage": session.stage,
        "totp_enabled": account.totp_enabled, "csrf_token": session.csrf, "timezone": svc.settings.timezone,
        "map": {"tile_url": svc.settings.map_tile_url, "attribution": svc.settings.map_attribution},
        "allowed_actions": p.allowed_actions(who) if session.stage == FULL else [],
    }


def _set_cookies(resp: Response, token: str, csrf: str, svc: AppServices) -> None:
    secure = svc.settings.cookie_secure
    # No Max-Age: the cookie goes with the browser; the server enforces idle and absolute expiry.
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, secure=secure, samesite="strict", path="/")
    # Readable by the console's script, which echoes it in X-CSRF-Token (double submit).
    resp.set_cookie(CSRF_COOKIE, csrf, httponly=False, secure=secure, samesite="strict", path="/")


@router.post("/login", dependencies=[public("signing in")])
def login(body: LoginIn, request: Request, svc: AppServices = Depends(services)):
    """Sign in. Remote sessions need ``otp`` once a second factor is enrolled; a session
    whose ``stage`` is not ``full`` can only change its password or enrol a second factor."""
    out = svc.access.login(body.login, body.password, body.otp, source_address(request, svc.access),
                           entrance_address(request))
    if not out.ok:
        return JSONResponse({"detail": out.message, "code": out.code}, status_code=out.status)
    resp = JSONResponse(_me(svc, out.session, out.account))
    _set_cookies(resp, out.token, out.session.csrf, svc)
    return resp


class LogoutIn(BaseModel):
    everywhere: bool = Field(default=False, description="end every session of this account")


@router.post("/logout", dependencies=[public("signing out needs only the session being ended")])
def logout(request: Request, body: LogoutIn | None = None, svc: AppServices = Depends(services)):
    try:
        caller = authenticate(request, ANY_STAGE + ("oidc_otp",))  # a single sign-on waiting for its code too
    except HTTPException as exc:
        if exc.status_code == 401:  # already signed out: nothing to do
            resp = JSONResponse({"ended": 0})
            resp.delete_cookie(SESSION_COOKIE, path="/")
            return resp
        raise
    if caller.session is None:
        raise HTTPException(400, "API tokens do not sign out; an administrator revokes them")
    if body and body.everywhere:
        n = svc.access.sessions.end_all(caller.account.id)
    else:
        svc.access.sessions.end(request.cookies[SESSION_COOKIE])
        n = 1
    svc.viewings.close_all(caller.session.id)  # what it was playing is journaled before the sign-out
    caller.record("session.logout", f"user:{caller.account.login}",
                  detail=f"{n} session(s) ended{' (everywhere)' if body and body.everywhere else ''}; "
                         f"session lasted {(time.time() * 1e6 - caller.session.created_us) / 1e6:.0f} s")
    resp = JSONResponse({"ended": n})
    resp.delete_cookie(SESSION_COOKIE, path="/")
    resp.delete_cookie(CSRF_COOKIE, path="/")
    return resp


@router.get("/me")
def me(caller: Caller = guard("account.self", stages=ANY_STAGE), svc: AppServices = Depends(services)) -> dict:
    if caller.session is None:
        return {"login": caller.account.login, "role": caller.account.role, "token": caller.token.id,
                "scopes": list(caller.token.scopes), "access": caller.principal.access}
    return _me(svc, caller.session, caller.account)


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


@router.post("/password")
def change_password(body: PasswordIn, caller: Caller = guard("account.self", stages=(FULL, MUST_CHANGE_PASSWORD)),
                    svc: AppServices = Depends(services)) -> dict:
    acc = caller.account
    if svc.access.accounts.check_password(acc.login, body.current_password) is None:
        caller.record("account.self", f"user:{acc.login}", "failed", "password change: wrong current password")
        raise HTTPException(403, "the current password is wrong")
    if body.new_password == body.current_password:
        raise HTTPException(400, "the new password must differ from the current one")
    try:
        svc.access.accounts.change_password(acc.login, body.new_password)
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    # Other sessions end (a stolen password stops working everywhere); this one goes on.
    ended, stage = 0, FULL
    if caller.session:
        ended = svc.access.sessions.end_all(acc.id, keep=caller.session.id)
        acc = svc.access.accounts.get_by_id(acc.id)
        stage = session_stage(acc, caller.session.access)
        svc.access.sessions.set_stage(caller.session.id, stage)
    caller.record("account.self", f"user:{acc.login}", detail=f"password changed; {ended} other session(s) ended")
    return {"changed": True, "stage": stage}


@router.post("/totp/setup")
def totp_setup(caller: Caller = guard("account.self", stages=(FULL, TOTP_ENROL)),
               svc: AppServices = Depends(services)) -> dict:
    """A new secret for an authenticator app (as a QR code and as text). Nothing is stored
    until /totp/confirm proves the app holds it."""
    if caller.account.totp_enabled:
        raise HTTPException(409, "a second factor is already enrolled; an administrator can reset it "
                                 "(varta user reset-totp)")
    secret = credentials.new_totp_secret()
    uri = credentials.totp_uri(secret, caller.account.login, svc.settings.instance_name)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": credentials.totp_qr_svg(uri)}


class TotpConfirmIn(BaseModel):
    secret: str = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z2-7]+=*$", description="base32, from /totp/setup")
    otp: str = Field(pattern=r"^\s*\d{6,8}\s*$", description="the app's 6-digit code")


@router.post("/totp/confirm")
def totp_confirm(body: TotpConfirmIn, caller: Caller = guard("account.self", stages=(FULL, TOTP_ENROL)),
                 svc: AppServices = Depends(services)) -> dict:
    acc = caller.account
    if acc.totp_enabled:
        raise HTTPException(409, "a second factor is already enrolled")
    accounts = svc.access.accounts
    step = credentials.check_totp(body.secret, body.otp, time.time(), None)
    if step is None:
        caller.record("account.self", f"user:{acc.login}", "failed", "second factor enrolment: wrong code")
        raise HTTPException(400, "the code does not match: check the phone's clock and try the next code")
    accounts.set_totp(acc.login, body.secret, step)
    if caller.session:
        svc.access.sessions.set_stage(caller.session.id, session_stage(accounts.get(acc.login), caller.session.access))
    caller.record("account.self", f"user:{acc.login}", detail="second factor (TOTP) enrolled")
    return {"totp_enabled": True}
