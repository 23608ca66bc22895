"""Passwords (argon2id), generated one-time passwords, lockout and TOTP codes.

The lockout rule and the TOTP check are pure functions of their inputs, so they are
tested alone; storing their state is varta.access.accounts' job.
"""

from __future__ import annotations

import hmac
import secrets
import string

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106's second recommended option (64 MiB, 3 passes), argon2-cffi's default profile.
_HASHER = PasswordHasher()
# Verified against when the login is unknown, so a wrong login takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))

MIN_PASSWORD_LENGTH = 12
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def generate_password(length: int = 16) -> str:
    """A random password in groups of four, easy to read aloud or type (≈ 94 bits at 16)."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
    return "-".join(raw[i:i + 4] for i in range(0, length, 4))


def password_problem(password: str, login: str = "") -> str | None:
    """Why a chosen password is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if login and login.lower() in password.lower():
        return "the password must not contain the login"
    if len(set(password)) < 5:
        return "the password is too repetitive"
    return None


# --- lockout ----------------------------------------------------------------------------
LOCKOUT_THRESHOLD = 5  # failures before the first lock
LOCKOUT_BASE_S = 30
LOCKOUT_MAX_S = 3600


def lock_seconds(failures: int, threshold: int = LOCKOUT_THRESHOLD, base_s: int = LOCKOUT_BASE_S,
                 max_s: int = LOCKOUT_MAX_S) -> int:
    """Progressive lockout: 0 below the threshold, then base·2^k seconds, capped.

    5 failures lock for 30 s, the 6th for 60 s, the 7th for 2 min … at most an hour, so a
    password cannot be guessed online while a mistyping user is only slowed down.
    """
    if failures < threshold:
        return 0
    return min(max_s, base_s * 2 ** min(failures - threshold, 20))


# --- TOTP (RFC 6238) --------------------------------------------------------------------
TOTP_STEP_S = 30


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, login: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=issuer)


def totp_qr_svg(uri: str) -> str:
    import segno

    return segno.make(uri, error="m").svg_inline(scale=4)


def totp_code(secret: str, at_s: float) -> str:
    return pyotp.TOTP(secret).at(int(at_s))


def check_totp(secret: str, code: str, now_s: float, last_step: int | None) -> int | None:
    """The time step the code belongs to (±1 step of clock drift), or None.

    A code is good once: a step at or before ``last_step`` (the last accepted) is refused,
    so a code seen over someone's shoulder or in a proxy log cannot be replayed.
    """
    code = (code or "").strip().replace(" ", "")
    # ASCII digits only: str.isdigit() takes any script's digits ("٣", "༥"), which no
    # authenticator sends and hmac.compare_digest refuses with a TypeError (a 500).
    if not (code.isascii() and code.isdigit()) or not 6 <= len(code) <= 8:
        return None
    try:
        totp = pyotp.TOTP(secret)
        totp.at(0)
    except (ValueError, TypeError):  # not base32: no code can match it
        return None
    now_step = int(now_s) // TOTP_STEP_S
    for step in (now_step - 1, now_step, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * TOTP_STEP_S), code):
            return step
    return None
