"""Named accounts (A4.3): the store. Rules about them live in policy.py and credentials.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from varta.access import credentials
from varta.access.policy import ROLES
from varta.clock import now_us
from varta.db.schema import sessions, users
from varta.secrets import vault as secrets

TOTP = "users.totp_secret"

LOGIN_RE = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    id: int
    login: str
    full_name: str
    position: str
    organisation: str
    role: str
    camera_groups: tuple[str, ...]
    active: bool
    must_change_password: bool
    totp_enabled: bool
    failed_logins: int
    locked_until_us: int | None
    created_us: int

    def to_dict(self) -> dict:
        return {"login": self.login, "full_name": self.full_name, "position": self.position,
                "organisation": self.organisation, "role": self.role, "camera_groups": list(self.camera_groups),
                "active": self.active, "must_change_password": self.must_change_password,
                "totp_enabled": self.totp_enabled, "locked": bool(self.locked_until_us and self.locked_until_us > now_us())}


def _account(r) -> Account:
    return Account(r.id, r.login, r.full_name, r.position, r.organisation, r.role, tuple(r.camera_groups or ()),
                   bool(r.active), bool(r.must_change_password), r.totp_secret is not None, r.failed_logins,
                   r.locked_until_us, r.created_us)


def validate(login: str | None = None, full_name: str | None = None, role: str | None = None,
             camera_groups=None) -> None:
    if login is not None and not LOGIN_RE.match(login):
        raise AccountError(f"login {login!r}: 2-64 characters, lower-case Latin letters, digits, '.', '_', '-', "
                           f"starting with a letter")
    if full_name is not None and len(full_name.split()) < 2:
        raise AccountError("full name: give at least the surname and the name (and the patronymic), "
                           "e.g. \"Шевченко Олена Петрівна\"")
    if role is not None and role not in ROLES:
        raise AccountError(f"role {role!r} is not one of: {', '.join(ROLES)}")
    if camera_groups is not None and any(not isinstance(g, str) or not g.strip() for g in camera_groups):
        raise AccountError("camera groups must be non-empty names")


class Accounts:
    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, login: str, full_name: str, role: str, *, position: str = "", organisation: str = "",
            camera_groups=(), password: str | None = None) -> tuple[Account, str]:
        """Create an account. Returns it with its password: the given one, or a generated
        one-time password that must be changed at first sign-in."""
        login = login.strip().lower()
        validate(login, full_name, role, camera_groups)
        one_time = password is None
        if password is None:
            password = credentials.generate_password()
        elif problem := credentials.password_problem(password, login):
            raise AccountError(problem)
        now = now_us()
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(
                    login=login, full_name=" ".join(full_name.split()), position=position.strip(),
                    organisation=organisation.strip(), role=role, camera_groups=sorted(set(camera_groups)),
                    active=True, password_hash=credentials.hash_password(password), must_change_password=one_time,
                    failed_logins=0, created_us=now, updated_us=now))
        except IntegrityError:
            raise AccountError(f"an account {login!r} already exists") from None
        return self.get(login), password

    def get(self, login: str) -> Account | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.login == login.strip().lower())).first()
        return _account(r) if r else None

    def get_by_id(self, user_id: int) -> Account | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.id == user_id)).first()
        return _account(r) if r else None

    def require(self, login: str) -> Account:
        acc = self.get(login)
        if acc is None:
            raise AccountError(f"no account {login!r}")
        return acc

    def list(self) -> list[Account]:
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(select(users).order_by(users.c.login))]

    def _keep_an_admin(self, acc: Account) -> None:
        """Refuse to demote or disable the last active administrator (nobody could manage accounts)."""
        if acc.role == "admin" and acc.active and sum(1 for a in self.list() if a.role == "admin" and a.active) <= 1:
            raise AccountError("this is the last active administrator: create another one first")

    def _set(self, login: str, **values) -> Account:
        acc = self.require(login)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.id == acc.id).values(updated_us=now_us(), **values))
        return self.get(login)

    def update(self, login: str, *, full_name=None, position=None, organisation=None, role=None,
               camera_groups=None) -> Account:
        validate(None, full_name, role, camera_groups)
        if role not in (None, "admin"):
            self._keep_an_admin(self.require(login))
        values = {k: v for k, v in (("full_name", full_name), ("position", position),
                                    ("organisation", organisation), ("role", role)) if v is not None}
        if camera_groups is not None:
            values["camera_groups"] = sorted(set(camera_groups))
        acc = self._set(login, **values)
        if role is not None or camera_groups is not None:
            self.end_sessions(acc.id)  # new rights take effect at the next sign-in, not mid-session
        return acc

    def set_active(self, login: str, active: bool) -> Account:
        if not active:
            self._keep_an_admin(self.require(login))
        acc = self._set(login, active=active, failed_logins=0, locked_until_us=None)
        if not active:
            self.end_sessions(acc.id)
        return acc

    def reset_password(self, login: str) -> str:
        """A new one-time password; every session of the account ends."""
        password = credentials.generate_password()
        acc = self._set(login, password_hash=credentials.hash_password(password), must_change_password=True,
                        failed_logins=0, locked_until_us=None)
        self.end_sessions(acc.id)
        return password

    def change_password(self, login: str, new_password: str) -> None:
        if problem := credentials.password_problem(new_password, login):
            raise AccountError(problem)
        self._set(login, password_hash=credentials.hash_password(new_password), must_change_password=False)

    def check_password(self, login: str, password: str) -> Account | None:
        """The account if the password is right (an unknown login costs the same time)."""
        with self.engine.connect() as conn:
            r = conn.execute(select(users).where(users.c.login == (login or "").strip().lower())).first()
        ok = credentials.verify_password(r.password_hash if r else None, password or "")
        if not (r and ok):
            return None
        if credentials.needs_rehash(r.password_hash):
            self._set(r.login, password_hash=credentials.hash_password(password))
        return _account(r)

    def record_failure(self, login: str, now: int) -> tuple[int, int | None]:
        """Count a failed sign-in; returns (failures, locked until µs or None)."""
        acc = self.get(login)
        if acc is None:
            return 0, None
        failures = acc.failed_logins + 1
        lock_s = credentials.lock_seconds(failures)
        until = now + lock_s * 1_000_000 if lock_s else None
        self._set(login, failed_logins=failures, locked_until_us=until)
        return failures, until

    def record_success(self, login: str) -> None:
        self._set(login, failed_logins=0, locked_until_us=None)

    # --- second factor -----------------------------------------------------------------
    def totp_secret(self, login: str) -> tuple[str | None, int | None]:
        with self.engine.connect() as conn:
            r = conn.execute(select(users.c.totp_secret, users.c.totp_last_step)
                             .where(users.c.login == login)).first()
        # Sealed at rest with the instance's secrets key (varta/secrets).
        return (secrets.open_(self.engine, r[0], TOTP), r[1]) if r else (None, None)

    def set_totp(self, login: str, secret: str | None, last_step: int | None = None) -> None:
        self._set(login, totp_secret=secrets.seal(self.engine, secret, TOTP), totp_last_step=last_step)

    def reset_totp(self, login: str) -> None:
        """Remove the second factor (lost phone); the account's sessions end, it enrols again."""
        acc = self._set(login, totp_secret=None, totp_last_step=None)
        self.end_sessions(acc.id)

    def accept_totp(self, login: str, code: str, now_s: float, secret: str | None = None) -> bool:
        """Check a code against the stored (or a pending) secret; a code is good only once."""
        stored, last = self.totp_secret(login)
        secret = secret or stored
        if not secret:
            return False
        step = credentials.check_totp(secret, code, now_s, last if secret == stored else None)
        if step is None:
            return False
        with self.engine.begin() as conn:
            # Compare-and-set: two requests racing with the same code cannot both win.
            res = conn.execute(update(users).where(users.c.login == login,
                                                   (users.c.totp_last_step.is_(None)) | (users.c.totp_last_step < step))
                               .values(totp_last_step=step))
        return res.rowcount == 1

    def end_sessions(self, user_id: int) -> int:
        # Changed rights, a disabled account or a reset password take effect at once.
        with self.engine.begin() as conn:
            return conn.execute(delete(sessions).where(sessions.c.user_id == user_id)).rowcount
