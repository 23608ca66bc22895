"""Access control as one service: sign-in, who is asking, may they, and the journal line.

The web layer (varta.web.auth) and the command line (varta.cli) are thin adapters over
this; the decisions themselves are varta.access.policy's.
"""

from __future__ import annotations

import getpass
import os
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select

from varta.access.accounts import Account, Accounts
from varta.access.journal import Entry, Journal
from varta.access.network import Site
from varta.access.policy import CONSOLE, DIRECT, REMOTE, Decision, Policy, Principal, validate_restriction
from varta.access.sessions import FULL, MUST_CHANGE_PASSWORD, TOTP_ENROL, ApiTokens, Session, Sessions
from varta.clock import format_time, now_us
from varta.db.schema import policy_restrictions


@dataclass
class LoginOutcome:
    ok: bool
    status: int  # HTTP status to answer with
    code: str  # machine-readable: ok | bad_credentials | locked | disabled | refused | otp_required | otp_invalid
    message: str
    token: str = ""
    session: Session | None = None
    account: Account | None = None


def principal_of(acc: Account, access: str, restricted: bool, source: str, scopes=None) -> Principal:
    return Principal(login=acc.login, full_name=acc.full_name, role=acc.role, access=access,
                     restricted=restricted and access == DIRECT, source=source, camera_groups=acc.camera_groups,
                     scopes=frozenset(scopes) if scopes is not None else None)


def session_stage(acc: Account, access: str) -> str:
    """What a session may do yet: change a one-time password first, then (remote sessions)
    enrol a second factor, which is mandatory for remote access; then everything allowed."""
    if acc.must_change_password:
        return MUST_CHANGE_PASSWORD
    if access == REMOTE and not acc.totp_enabled:
        return TOTP_ENROL
    return FULL


def console_principal(accounts: Accounts, as_login: str | None) -> Principal:
    """A command typed on the server: direct access, at the server itself (C2: the server
    stands in the locked cabinet, so it is a restricted zone). With ``--as`` the account's
    role decides; without, the operating-system user acts as the server console."""
    os_user = _os_user()
    if as_login:
        acc = accounts.get(as_login)
        if acc is None:
            raise PermissionError(f"--as {as_login}: no such account")
        if not acc.active:
            raise PermissionError(f"--as {as_login}: the account is disabled")
        return principal_of(acc, DIRECT, True, f"console:{os_user}")
    return Principal(login=f"os:{os_user}", full_name=f"operating-system user {os_user}", role=CONSOLE,
                     access=DIRECT, restricted=True, source=f"console:{os_user}")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


class AccessControl:
    RESTRICTIONS_TTL_S = 5.0  # other nodes see a tightened policy within this time

    def __init__(self, engine: Engine, site: Site, idle_s: float, max_s: float, issuer: str = "Varta", tz=None):
        self.engine = engine
        self.tz = tz  # the city's: times in messages people read (stored in UTC)
        self.site = site
        self.accounts = Accounts(engine)
        self.sessions = Sessions(engine, idle_s, max_s)
        self.tokens = ApiTokens(engine)
        self.journal = Journal(engine)
        self.issuer = issuer
        self._policy: tuple[float, Policy] | None = None
        self._policy_lock = threading.Lock()
        self._limits: tuple[float, dict] | None = None
        from varta.access.bulkview import BulkWatch

        self.bulk = BulkWatch()

    @classmethod
    def from_settings(cls, engine: Engine, settings) -> "AccessControl":
        site = Site.from_settings(settings.onsite_networks, settings.restricted_workstations, settings.trusted_proxies,
                                 settings.remote_entrances)
        return cls(engine, site, settings.session_idle_s, settings.session_max_s, settings.instance_name,
                   tz=settings.tz)

    # --- the policy in force -----------------------------------------------------------
    def policy(self) -> Policy:
        with self._policy_lock:
            if self._policy and time.monotonic() - self._policy[0] < self.RESTRICTIONS_TTL_S:
                return self._policy[1]
            with self.engine.connect() as conn:
                rows = conn.execute(select(policy_restrictions.c.role, policy_restrictions.c.action)).all()
            pol = Policy(frozenset((r, a) for r, a in rows))
            self._policy = (time.monotonic(), pol)
            return pol

    def restrict(self, who: Principal, role: str, action: str) -> None:
        validate_restriction(role, action)
        with self.engine.begin() as conn:
            conn.execute(delete(policy_restrictions).where(policy_restrictions.c.role == role,
                                                           policy_restrictions.c.action == action))
            conn.execute(insert(policy_restrictions).values(role=role, action=action, created_us=now_us(),
                                                            created_by=who.login))
        self._policy = None
        self.record(who, "policy.manage", f"policy:{role}", detail=f"withdrew {action} from {role}")

    def unrestrict(self, who: Principal, role: str, action: str) -> bool:
        """Give back an action the city withdrew (never more than the order grants)."""
        with self.engine.begin() as conn:
            n = conn.execute(delete(policy_restrictions).where(policy_restrictions.c.role == role,
                                                               policy_restrictions.c.action == action)).rowcount
        self._policy = None
        if n:
            self.record(who, "policy.manage", f"policy:{role}", detail=f"restored {action} to {role} (order default)")
        return bool(n)

    # --- the policy's limits (bulk viewing) --------------------------------------------
    def limits(self) -> dict[str, float]:
        """The city's limits in force (defaults where it set none); read like the restrictions."""
        from varta.access.bulkview import LIMITS
        from varta.db.schema import policy_limits

        with self._policy_lock:
            if self._limits and time.monotonic() - self._limits[0] < self.RESTRICTIONS_TTL_S:
                return self._limits[1]
            with self.engine.connect() as conn:
                rows = dict(conn.execute(select(policy_limits.c.name, policy_limits.c.value)).all())
            out = {name: float(rows.get(name, spec[0])) for name, spec in LIMITS.items()}
            self._limits = (time.monotonic(), out)
            return out

    def set_limit(self, who: Principal, name: str, value: float) -> float:
        from varta.access.bulkview import validate_limit
        from varta.db.schema import policy_limits

        from sqlalchemy import update
        from sqlalchemy.exc import IntegrityError

        value = validate_limit(name, value)
        values = {"value": value, "set_us": now_us(), "set_by": who.login}
        for _ in range(2):  # two administrators at once: the second write wins, never a 500
            try:
                with self.engine.begin() as conn:
                    if not conn.execute(update(policy_limits).where(policy_limits.c.name == name)
                                        .values(**values)).rowcount:
                        conn.execute(insert(policy_limits).values(name=name, **values))
                break
            except IntegrityError:
                continue
        self._limits = None
        self.record(who, "policy.manage", f"policy:{name}", detail=f"limit {name} set to {value:g}")
        return value

    def watch_viewing(self, who: Principal, viewer: str, camera_id: str, alarms=None) -> int | None:
        """One camera opened by ``viewer`` (a login or token:<id>); above the policy's limit
        a system alarm and a journal line name the viewer (once a window)."""
        lim = self.limits()
        n = self.bulk.seen(viewer, camera_id, time.monotonic(), lim["bulk_view_cameras"], lim["bulk_view_window_s"])
        if n is None:
            return None
        text = (f"bulk viewing: {viewer} ({who.full_name or who.login}, {who.role}, from {who.source or '-'}) opened "
                f"{n} different cameras within {lim['bulk_view_window_s']:g} s (the policy allows "
                f"{lim['bulk_view_cameras']:g})")
        self.record(who, "live.view", viewer if viewer.startswith("token:") else f"user:{viewer}", "flagged", text)
        if alarms is not None:
            alarms.raise_alarm("bulk_viewing", "warning", text)
        return n

    # --- deciding and journaling -------------------------------------------------------
    def check(self, who: Principal, action: str, obj: str = "", camera_group: str | None = None,
              detail: str = "") -> Decision:
        """Decide; a refusal is journaled here (the allowed action is journaled by the caller,
        which knows what was actually done)."""
        d = self.policy().decide(who, action, camera_group)
        if not d.allowed:
            self.record(who, action, obj, "refused", f"{d.reason}{'; ' + detail if detail else ''}")
        return d

    def record(self, who: Principal, action: str, obj: str = "", result: str = "ok", detail: str = "") -> int:
        return self.journal.append(Entry(account=who.login, full_name=who.full_name, role=who.role,
                                         source=who.source, access=who.access, action=action, object=obj,
                                         result=result, detail=detail))

    # --- signing in --------------------------------------------------------------------
    def login(self, login: str, password: str, otp: str | None, source: str, entrance: str = "") -> LoginOutcome:
        access, restricted = self.site.classify(source, entrance)
        login = (login or "").strip().lower()[:64]
        now = now_us()
        acc = self.accounts.get(login) if login else None
        anon = Principal(login=login or "?", full_name=acc.full_name if acc else "", role=acc.role if acc else "",
                         access=access, source=source)

        def fail(status, code, message, detail, result="failed") -> LoginOutcome:
            self.record(anon, "session.login", f"user:{anon.login}", result, detail)
            return LoginOutcome(False, status, code, message)

        if acc and acc.locked_until_us and acc.locked_until_us > now:
            until = format_time(acc.locked_until_us, self.tz) if self.tz else format_time(acc.locked_until_us)
            return fail(429, "locked", f"too many failed sign-ins: the account is locked until {until}",
                        f"attempt while locked until {until}", "refused")
        checked = self.accounts.check_password(login, password)
        if checked is None:
            if acc is None:
                return fail(401, "bad_credentials", "wrong login or password", "unknown login")
            n, until = self.accounts.record_failure(login, now)
            lock = f"; locked until {format_time(until, self.tz) if self.tz else format_time(until)}" if until else ""
            return fail(401, "bad_credentials", "wrong login or password", f"wrong password (failure {n}{lock})")
        acc = checked
        if not acc.active:
            return fail(403, "disabled", "this account is disabled", "account disabled", "refused")
        who = principal_of(acc, access, restricted, source)
        decision = self.policy().decide(who, f"session.{access}")
        if not decision:
            return fail(403, "refused", f"sign-in refused: {decision.reason}", decision.reason, "refused")
        if acc.totp_enabled:
            if not otp:
                return LoginOutcome(False, 401, "otp_required", "enter the code from your authenticator app")
            if not self.accounts.accept_totp(login, otp, now / 1e6):
                n, until = self.accounts.record_failure(login, now)
                lock = f"; locked until {format_time(until, self.tz) if self.tz else format_time(until)}" if until else ""
                return fail(401, "otp_invalid", "wrong or already used second-factor code",
                            f"wrong second-factor code (failure {n}{lock})")
        self.accounts.record_success(login)
        stage = session_stage(acc, access)
        token, session = self.sessions.create(acc.id, stage, access, restricted, source)
        self.record(who, "session.login", f"user:{acc.login}", "ok",
                    f"{'restricted-zone workstation' if who.restricted else access}"
                    f"{'; second factor' if acc.totp_enabled else ''}; stage {stage}")
        return LoginOutcome(True, 200, "ok", "signed in", token, session, acc)
