"""Who steers a PTZ camera (pure): one operator at a time holds the control for a while
after each command; another may take over only with a higher role, and sees who holds it."""

from __future__ import annotations

from dataclasses import dataclass

from varta.access.policy import (CONSOLE, CONTRACTOR, DEPARTMENT, DEPUTY_MAYOR, FIRST_DEPUTY, MAYOR, POLICE)

# Higher takes over from lower; equal waits. The server's console outranks everyone.
RANK = {POLICE: 1, CONTRACTOR: 2, DEPARTMENT: 3, DEPUTY_MAYOR: 4, FIRST_DEPUTY: 5, MAYOR: 6, CONSOLE: 9}


@dataclass(frozen=True)
class Lock:
    holder: str
    full_name: str
    role: str
    expires_us: int


@dataclass(frozen=True)
class Verdict:
    granted: bool
    taken_over: str | None = None  # whose control was taken
    reason: str = ""


def decide(current: Lock | None, login: str, role: str, now_us: int) -> Verdict:
    if current is None or current.expires_us <= now_us or current.holder == login:
        return Verdict(True)
    if RANK.get(role, 0) > RANK.get(current.role, 0):
        return Verdict(True, taken_over=current.holder)
    left = max(1, (current.expires_us - now_us) // 1_000_000)
    return Verdict(False, reason=f"{current.full_name or current.holder} ({current.holder}) is steering this camera; "
                                 f"free in {left} s or to a higher role")
