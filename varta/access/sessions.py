"""Sessions (browser sign-ins) and API tokens (outside systems), stored by hash only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from varta.clock import US, now_us
from varta.db.schema import api_tokens, sessions

FULL, MUST_CHANGE_PASSWORD, TOTP_ENROL = "full", "password", "totp_enrol"
TOKEN_PREFIX = "varta_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str
    user_id: int
    stage: str
    access: str
    restricted: bool
    source: str
    csrf: str
    created_us: int
    last_seen_us: int
    expires_us: int


class Sessions:
    """Idle expiry (no request for ``idle_s``) and absolute expiry (``max_s`` after sign-in)."""

    def __init__(self, engine: Engine, idle_s: float, max_s: float):
        self.engine, self.idle_us, self.max_us = engine, int(idle_s * US), int(max_s * US)
        # Refresh "last seen" at most this often: a request need not be a write.
        self._touch_us = min(30 * US, self.idle_us // 4)

    def create(self, user_id: int, stage: str, access: str, restricted: bool, source: str) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        now = now_us()
        row = {"id": _digest(token), "user_id": user_id, "stage": stage, "access": access,
               "restricted": restricted, "source": source[:64], "csrf": secrets.token_urlsafe(24),
               "created_us": now, "last_seen_us": now, "expires_us": now + self.max_us}
        with self.engine.begin() as conn:
            # Expired sessions are swept as new ones are made: the table stays small.
            conn.execute(delete(sessions).where(sessions.c.expires_us < now))
            conn.execute(insert(sessions).values(**row))
        return token, Session(**row)

    def resolve(self, token: str | None) -> tuple[Session | None, str]:
        """(session, "") when the token is a live session, else (None, why)."""
        if not token:
            return None, "not signed in"
        sid = _digest(token)
        with self.engine.connect() as conn:
            r = conn.execute(select(sessions).where(sessions.c.id == sid)).first()
        if r is None:
            return None, "the session has ended; sign in again"
        now = now_us()
        if now >= r.expires_us:
            self.end(token)
            return None, "the session reached its maximum length; sign in again"
        if now - r.last_seen_us >= self.idle_us:
            self.end(token)
            return None, "the session expired after inactivity; sign in again"
        if now - r.last_seen_us >= self._touch_us:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id == sid).values(last_seen_us=now))
        return Session(**dict(r._mapping)), ""

    def set_stage(self, session_id: str, stage: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.id == session_id).values(stage=stage))

    def end(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.id == _digest(token)))

    def end_all(self, user_id: int, keep: str | None = None) -> int:
        """End every session of an account (but ``keep``, a session id, when given)."""
        q = delete(sessions).where(sessions.c.user_id == user_id)
        if keep:
            q = q.where(sessions.c.id != keep)
        with self.engine.begin() as conn:
            return conn.execute(q).rowcount


@dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: int
    name: str
    scopes: tuple[str, ...]
    created_us: int
    expires_us: int
    revoked_us: int | None
    last_used_us: int | None


class ApiTokens:
    """``varta_<id>_<secret>``: the id is public (lists, journal), the secret only hashed."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create(self, user_id: int, name: str, scopes, days: float) -> tuple[str, ApiToken]:
        if days <= 0 or days > 366:
            raise ValueError("a token must expire within 1 to 366 days")
        tid, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = now_us()
        row = {"id": tid, "user_id": user_id, "name": name, "secret_hash": _digest(secret),
               "scopes": sorted(set(scopes)), "created_us": now, "expires_us": now + int(days * 86400 * US)}
        with self.engine.begin() as conn:
            conn.execute(insert(api_tokens).values(**row))
        return f"{TOKEN_PREFIX}{tid}_{secret}", self.get(tid)

    def get(self, tid: str) -> ApiToken | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(api_tokens).where(api_tokens.c.id == tid)).first()
        return _token(r) if r else None

    def list(self) -> list[ApiToken]:
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.created_us))]

    def revoke(self, tid: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(update(api_tokens).where(api_tokens.c.id == tid, api_tokens.c.revoked_us.is_(None))
                                .values(revoked_us=now_us())).rowcount == 1

    def resolve(self, token: str) -> tuple[ApiToken | None, str]:
        parts = token.removeprefix(TOKEN_PREFIX).split("_", 1)
        if not token.startswith(TOKEN_PREFIX) or len(parts) != 2:
            return None, "malformed API token"
        tid, secret = parts
        with self.engine.connect() as conn:
            r = conn.execute(select(api_tokens).where(api_tokens.c.id == tid)).first()
        if r is None or not hmac.compare_digest(r.secret_hash, _digest(secret)):
            return None, "unknown API token"
        now = now_us()
        if r.revoked_us is not None:
            return None, f"API token {tid} was revoked"
        if now >= r.expires_us:
            return None, f"API token {tid} has expired"
        if r.last_used_us is None or now - r.last_used_us > 60 * US:
            with self.engine.begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == tid).values(last_used_us=now))
        return _token(r), ""


def _token(r) -> ApiToken:
    return ApiToken(r.id, r.user_id, r.name, tuple(r.scopes), r.created_us, r.expires_us, r.revoked_us,
                    r.last_used_us)
