"""/api/users, /api/tokens, /api/policy: administration, which sees no video (A4.3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from varta.access.accounts import AccountError
from varta.access.policy import ACTIONS, MATRIX, ROLE_TITLES, ROLES
from varta.clock import format_time
from varta.web.auth import Caller, guard
from varta.web.deps import AppServices, services

router = APIRouter(tags=["administration"])


class UserIn(BaseModel):
    login: str
    full_name: str = Field(description="surname, name, patronymic")
    role: str = Field(description=" | ".join(ROLES))
    position: str = ""
    organisation: str = ""
    camera_groups: list[str] = Field(default_factory=list, description="police: the groups they may see")


class UserPatch(BaseModel):
    full_name: str | None = None
    role: str | None = None
    position: str | None = None
    organisation: str | None = None
    camera_groups: list[str] | None = None
    active: bool | None = None


@router.get("/api/users")
def list_users(caller: Caller = guard("user.manage"), svc: AppServices = Depends(services)) -> list[dict]:
    return [a.to_dict() for a in svc.access.accounts.list()]


@router.post("/api/users", status_code=201)
def add_user(body: UserIn, caller: Caller = guard("user.manage"), svc: AppServices = Depends(services)) -> dict:
    """Create an account; the answer carries its one-time password (shown once, never stored)."""
    try:
        acc, password = svc.access.accounts.add(body.login, body.full_name, body.role, position=body.position,
                                                organisation=body.organisation, camera_groups=body.camera_groups)
    except AccountError as exc:
        raise HTTPException(400, str(exc)) from None
    caller.record("user.manage", f"user:{acc.login}", detail=f"created: {acc.full_name}, role {acc.role}, "
                                                             f"groups {list(acc.camera_groups)}")
    return acc.to_dict() | {"one_time_password": password}


@router.patch("/api/users/{login}")
def update_user(login: str, body: UserPatch, caller: Caller = guard("user.manage"),
                svc: AppServices = Depends(services)) -> dict:
    accounts = svc.access.accounts
    changes = body.model_dump(exclude_unset=True)
    try:
        before = accounts.require(login)
        active = changes.pop("active", None)
        acc = accounts.update(login, **changes) if changes else before
        if active is not None:
            acc = accounts.set_active(login, active)
    except AccountError as exc:
        raise HTTPException(404 if "no account" in str(exc) else 400, str(exc)) from None
    diff = {k: (getattr(before, k), getattr(acc, k)) for k in body.model_dump(exclude_unset=True)
            if getattr(before, k) != getattr(acc, k)}
    caller.record("user.manage", f"user:{login}", detail="changed: " + "; ".join(f"{k} {a!r} → {b!r}"
                                                                             for k, (a, b) in diff.items()))
    return acc.to_dict()


@router.post("/api/users/{login}/reset-password")
def reset_password(login: str, caller: Caller = guard("user.manage"), svc: AppServices = Depends(services)) -> dict:
    try:
        password = svc.access.accounts.reset_password(login)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None
    caller.record("user.manage", f"user:{login}", detail="password reset (one-time password issued; sessions ended)")
    return {"login": login, "one_time_password": password}


@router.post("/api/users/{login}/reset-totp")
def reset_totp(login: str, caller: Caller = guard("user.manage"), svc: AppServices = Depends(services)) -> dict:
    try:
        svc.access.accounts.reset_totp(login)
    except AccountError as exc:
        raise HTTPException(404, str(exc)) from None
    caller.record("user.manage", f"user:{login}", detail="second factor reset (must enrol again; sessions ended)")
    return {"login": login, "totp_enabled": False}


# --- API tokens for outside systems (R11, MVS-3) -------------------------------------------
class TokenIn(BaseModel):
    login: str = Field(description="the account the token acts as (e.g. a police unit's account)")
    name: str = Field(min_length=3, max_length=200, examples=["Melitopol police dispatch"])
    scopes: list[str] = Field(min_length=1, examples=[["camera.list", "live.view"]])
    days: float = Field(default=90, gt=0, le=366)


def _token_dict(t, svc, login: str) -> dict:
    tz = svc.settings.tz
    return {"id": t.id, "login": login, "name": t.name, "scopes": list(t.scopes),
            "created": format_time(t.created_us, tz), "expires": format_time(t.expires_us, tz),
            "revoked": format_time(t.revoked_us, tz) if t.revoked_us else None,
            "last_used": format_time(t.last_used_us, tz) if t.last_used_us else None}


@router.get("/api/tokens")
def list_tokens(caller: Caller = guard("token.manage"), svc: AppServices = Depends(services)) -> list[dict]:
    logins = {a.id: a.login for a in svc.access.accounts.list()}
    return [_token_dict(t, svc, logins.get(t.user_id, "?")) for t in svc.access.tokens.list()]


@router.post("/api/tokens", status_code=201)
def create_token(body: TokenIn, caller: Caller = guard("token.manage"), svc: AppServices = Depends(services)) -> dict:
    """The token is shown once. It can do no more than its account's role from where it is used."""
    bad = [s for s in body.scopes if s not in ACTIONS]
    if bad:
        raise HTTPException(400, f"unknown scope(s) {bad}; scopes are actions: {', '.join(ACTIONS)}")
    acc = svc.access.accounts.get(body.login)
    if acc is None:
        raise HTTPException(404, f"no account {body.login}")
    try:
        token, t = svc.access.tokens.create(acc.id, body.name, body.scopes, body.days)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    caller.record("token.manage", f"token:{t.id}", detail=f"created for {acc.login}: {body.name}; "
                                                          f"scopes {list(t.scopes)}; {body.days:g} days")
    return _token_dict(t, svc, acc.login) | {"token": token}


@router.delete("/api/tokens/{token_id}")
def revoke_token(token_id: str, caller: Caller = guard("token.manage"), svc: AppServices = Depends(services)) -> dict:
    if not svc.access.tokens.revoke(token_id):
        raise HTTPException(404, f"no active token {token_id}")
    caller.record("token.manage", f"token:{token_id}", detail="revoked")
    return {"id": token_id, "revoked": True}


# --- the policy ------------------------------------------------------------------------------
class RestrictionIn(BaseModel):
    role: str
    action: str


@router.get("/api/policy")
def get_policy(caller: Caller = guard("account.self"), svc: AppServices = Depends(services)) -> dict:
    """The permission matrix in force (the order's, minus the city's restrictions)."""
    pol = svc.access.policy()
    return {
        "roles": {r: dict(zip(("uk", "en"), ROLE_TITLES[r])) for r in ROLES},
        "actions": {a: {"clause": MATRIX[a].clause, "text": MATRIX[a].text,
                        "restricted_zone": MATRIX[a].restricted_zone, "camera_scoped": MATRIX[a].camera_scoped}
                    for a in ACTIONS},
        "matrix": pol.effective(),
        "restrictions": [{"role": r, "action": a} for r, a in sorted(pol.restrictions)],
        "limits": svc.access.limits(),
    }


class LimitIn(BaseModel):
    value: float


@router.put("/api/policy/limits/{name}")
def set_limit(body: LimitIn, name: str = PathParam(max_length=48), caller: Caller = guard("policy.manage"),
              svc: AppServices = Depends(services)) -> dict:
    """Set one of the city's limits (bulk viewing: cameras within a window before an alarm)."""
    try:
        return {"name": name, "value": svc.access.set_limit(caller.principal, name, body.value)}
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.post("/api/policy/restrictions", status_code=201)
def add_restriction(body: RestrictionIn, caller: Caller = guard("policy.manage"),
                    svc: AppServices = Depends(services)) -> dict:
    """Withdraw an action from a role (tighten). Nothing beyond the order can be granted."""
    try:
        svc.access.restrict(caller.principal, body.role, body.action)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"role": body.role, "action": body.action, "withdrawn": True}


@router.delete("/api/policy/restrictions/{role}/{action}")
def remove_restriction(role: str, action: str, caller: Caller = guard("policy.manage"),
                       svc: AppServices = Depends(services)) -> dict:
    if not svc.access.unrestrict(caller.principal, role, action):
        raise HTTPException(404, f"{action} is not withdrawn from {role}")
    return {"role": role, "action": action, "withdrawn": False}
