"""Single sign-on with OpenID Connect: the provider's claims → a Varta account (docs/access.md).

The mapping is pure (no I/O) and tested alone (tests/test_sso_mapping.py): which Varta role
and camera groups the provider's groups give, whether the ID token asserts a second factor,
the login and full name a new account gets. :class:`SsoAccounts` stores the accounts the
provider provisions: an account row with no usable local password, found again by the
provider's issuer and subject, whose role and camera groups follow the claims at each
sign-in. The flow itself (redirects, tokens, the session) is varta.web.api_oidc's.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from varta.access.accounts import LOGIN_RE, Account, AccountError, Accounts, validate
from varta.access.policy import ROLES
from varta.clock import now_us
from varta.db.schema import users

# Not an argon2 hash: verify_password() never accepts anything against it, so an SSO
# account cannot be signed into with a password until an administrator gives it one
# (`varta user reset-password`, break-glass).
NO_PASSWORD = "!sso: signs in through the identity provider"
VIA = "via OpenID Connect"


# --- the settings' maps ----------------------------------------------------------------
def _entries(text: str, what: str):
    for raw in re.split(r"[;\n]", text or ""):
        item = raw.strip()
        if not item:
            continue
        group, sep, value = item.rpartition("=")
        if not sep or not group.strip() or not value.strip():
            raise ValueError(f"{what}: {item!r} is not 'provider group=value'")
        yield group.strip(), value.strip()


def parse_role_map(text: str) -> tuple[tuple[str, str], ...]:
    """``"city-operators=department; city-leaders=mayor"`` → ((group, role), …), in order."""
    out = []
    for group, role in _entries(text, "oidc_role_map"):
        if role not in ROLES:
            raise ValueError(f"oidc_role_map: {group}={role}: {role!r} is not a Varta role ({', '.join(ROLES)})")
        out.append((group, role))
    return tuple(out)


def parse_group_map(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``"police-centre=centre,market; police-north=north"`` → ((group, camera groups), …)."""
    out = []
    for group, value in _entries(text, "oidc_group_map"):
        cams = tuple(dict.fromkeys(c.strip() for c in value.split(",") if c.strip()))
        if not cams:
            raise ValueError(f"oidc_group_map: {group}= names no camera group")
        out.append((group, cams))
    return tuple(out)


def words(text: str) -> frozenset[str]:
    """A setting listing values separated by spaces or commas."""
    return frozenset(w for w in re.split(r"[\s,]+", text or "") if w)


# --- claims ----------------------------------------------------------------------------
def claim_values(claims: dict, path: str) -> tuple[str, ...]:
    """The strings at a claim (a dotted path reaches nested claims, e.g. Keycloak's
    ``realm_access.roles``): a list of strings, or one string."""
    value = claims
    for part in (path or "").split("."):
        if not isinstance(value, dict) or part not in value:
            return ()
        value = value[part]
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, (list, tuple)):
        return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))
    return ()


@dataclass(frozen=True)
class Mapping:
    """What the provider's groups give in Varta; ``problem`` says why sign-in is refused."""

    groups: tuple[str, ...]  # the provider's, as the token gave them
    role: str | None
    camera_groups: tuple[str, ...]
    problem: str = ""


def map_claims(claims: dict, role_claim: str, role_map, group_map) -> Mapping:
    """The account's role and camera groups from the provider's groups.

    Exactly one Varta role must follow from the groups: none means the user has no business
    in Varta, two (say police and department) would be a guess about which rights the person
    has, so both are refused and the identity provider's administrators decide. Camera
    groups are the union of every matching entry (none: the role's default — every camera,
    except for the police)."""
    groups = claim_values(claims, role_claim)
    have = set(groups)
    roles = tuple(dict.fromkeys(role for group, role in role_map if group in have))
    cams = tuple(sorted({c for group, cs in group_map if group in have for c in cs}))
    shown = ", ".join(groups) if groups else f"no {role_claim!r} claim"
    if not roles:
        return Mapping(groups, None, cams, f"the provider's groups ({shown}) map to no Varta role")
    if len(roles) > 1:
        return Mapping(groups, None, cams, f"the provider's groups ({shown}) map to more than one Varta role "
                                           f"({', '.join(roles)}): an account has one role")
    return Mapping(groups, roles[0], cams)


def second_factor(claims: dict, amr_values, acr_values) -> str:
    """How the provider says it checked a second factor ("amr otp", "acr …"), or ""."""
    amr = claims.get("amr")
    amr = [amr] if isinstance(amr, str) else amr if isinstance(amr, list) else []
    for value in amr:
        if isinstance(value, str) and value in amr_values:
            return f"amr {value}"
    acr = claims.get("acr")
    if isinstance(acr, str) and acr in acr_values:
        return f"acr {acr}"
    return ""


def login_for(claims: dict, login_claim: str) -> str:
    """A Varta login from the provider's user name (``o.shevchenko@city.gov.ua`` →
    ``o.shevchenko``), in the letters logins allow; or ``sso-<hash of the subject>``."""
    raw = next(iter(claim_values(claims, login_claim)), "") or str(claims.get("email") or "")
    raw = raw.split("@", 1)[0] if "@" in raw else raw
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    login = re.sub(r"[^a-z0-9._-]+", ".", ascii_).strip("._-")[:64]
    if LOGIN_RE.match(login):
        return login
    return "sso-" + hashlib.sha256(str(claims.get("sub", "")).encode()).hexdigest()[:10]


def full_name_for(claims: dict, login: str) -> str:
    """Surname, name and patronymic as the provider knows them (at least two words)."""
    name = " ".join(str(claims.get("name") or "").split())
    if len(name.split()) < 2:
        parts = [str(claims.get(k) or "").strip() for k in ("family_name", "given_name", "middle_name")]
        name = " ".join(p for p in parts if p) or name
    if len(name.split()) < 2:
        name = f"{name or login} (SSO)"
    return name[:300]


# --- the accounts the provider provisions ----------------------------------------------
class SsoAccounts:
    def __init__(self, engine: Engine, accounts: Accounts):
        self.engine, self.accounts = engine, accounts

    def find(self, issuer: str, subject: str) -> Account | None:
        with self.engine.connect() as conn:
            uid = conn.execute(select(users.c.id).where(users.c.sso_issuer == issuer,
                                                        users.c.sso_subject == subject)).scalar()
        return self.accounts.get_by_id(uid) if uid is not None else None

    def identity(self, user_id: int) -> tuple[str | None, str | None]:
        with self.engine.connect() as conn:
            r = conn.execute(select(users.c.sso_issuer, users.c.sso_subject).where(users.c.id == user_id)).first()
        return (r[0], r[1]) if r else (None, None)

    def provision(self, issuer: str, subject: str, login: str, full_name: str, role: str,
                  camera_groups, extra: str = "") -> Account:
        """A new account for a person the provider signed in for the first time. A login
        already taken (a local break-glass account, or another person) is never reused:
        the new account gets ``login-sso`` or ``login-<hash>`` instead."""
        validate(login, full_name, role, camera_groups)
        digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:6]
        candidates = [login, f"{login[:60]}-sso", f"{login[:57]}-{digest}"]
        now = now_us()
        for candidate in candidates:
            if self.accounts.get(candidate) is not None:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(users).values(
                        login=candidate, full_name=full_name, position="", organisation=extra[:200], role=role,
                        camera_groups=sorted(set(camera_groups)), active=True, password_hash=NO_PASSWORD,
                        must_change_password=False, failed_logins=0, created_us=now, updated_us=now,
                        sso_issuer=issuer, sso_subject=subject))
            except IntegrityError:
                found = self.find(issuer, subject)  # the same person signing in twice at once
                if found is not None:
                    return found
                continue
            return self.accounts.get(candidate)
        raise AccountError(f"no free login for {login!r}")

    def follow(self, acc: Account, full_name: str, role: str, camera_groups) -> tuple[Account, list[str]]:
        """Bring the account in line with the provider's claims; returns what changed.
        A changed role or set of groups ends the account's other sessions (accounts.update)."""
        changes = []
        cams = tuple(sorted(set(camera_groups)))
        if full_name != acc.full_name:
            with self.engine.begin() as conn:
                conn.execute(update(users).where(users.c.id == acc.id).values(full_name=full_name,
                                                                              updated_us=now_us()))
            changes.append("full name")
        if role != acc.role or cams != tuple(sorted(acc.camera_groups)):
            if role != acc.role:
                changes.append(f"role {acc.role} → {role}")
            if cams != tuple(sorted(acc.camera_groups)):
                changes.append(f"camera groups [{', '.join(acc.camera_groups)}] → [{', '.join(cams)}]")
            self.accounts.update(acc.login, role=role, camera_groups=cams)
        return self.accounts.get_by_id(acc.id), changes
