"""What a lockdown shuts, and the two-person rule for moves from the console (pure).

While a lockdown is in force, for every camera in its scope (``sensitive`` cameras, or
``all``): video — live, the archive, PTZ, alarm pictures, track thumbnails, packages — is
given only to people at restricted-zone workstations (and the server's own shell); remote
sessions are cut, API tokens' video scopes suspended and outgoing alarms carry no picture.
Everything else (the camera list, alarms' texts, the journal, requests) goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from varta.access.policy import CONSOLE, Principal

SCOPES = ("sensitive", "all")
MOVES = ("on", "off")
# Actions that show what a camera sees ("event.picture": an alarm's picture).
VIDEO_ACTIONS = frozenset({"live.view", "archive.play", "archive.export", "ptz.control", "search.tracks",
                           "request.prepare", "event.picture"})
CONFIRM_WINDOW_S = 15 * 60  # a move asked for in the console waits this long for its second person
MIN_REASON = 5


class LockdownError(ValueError):
    """A move refused; the message says why."""


@dataclass(frozen=True)
class LockState:
    id: int
    scope: str
    reason: str
    source: str  # console | web | alert
    started_us: int
    started_by: str
    confirmed_by: str | None


def in_scope(state: LockState | None, sensitivity: str) -> bool:
    return state is not None and (state.scope == "all" or sensitivity == "sensitive")


def refusal(state: LockState | None, who: Principal, action: str, sensitivity: str) -> str | None:
    """Why ``who`` may not do ``action`` on a camera of this sensitivity now (None: the
    lockdown does not stand in the way)."""
    if state is None or action not in VIDEO_ACTIONS or not in_scope(state, sensitivity):
        return None
    if who.role == CONSOLE:
        return None
    what = "every camera" if state.scope == "all" else "sensitive cameras"
    if who.scopes is not None:
        return f"lockdown in force ({state.reason}): API tokens' video access to {what} is suspended"
    if not who.restricted:
        return (f"lockdown in force ({state.reason}): {what} are shown only at restricted-zone workstations")
    return None


def picture_withheld(state: LockState | None, sensitivity: str) -> bool:
    """Outgoing alarms (webhooks, subscriptions) of this camera go without their picture."""
    return in_scope(state, sensitivity)


def check_move(move: str, scope: str | None, reason: str, state: LockState | None) -> None:
    if move not in MOVES:
        raise LockdownError(f"move {move!r} is not one of: on, off")
    if len((reason or "").strip()) < MIN_REASON:
        raise LockdownError("give the reason (at least a few words): it goes into the journal")
    if move == "on":
        if scope not in SCOPES:
            raise LockdownError(f"scope {scope!r} is not one of: {', '.join(SCOPES)}")
        if state is not None and state.scope == scope:
            raise LockdownError(f"a lockdown of {scope} cameras is already in force (since it was started by "
                                f"{state.started_by})")
    elif state is None:
        raise LockdownError("no lockdown is in force")


def confirm_refusal(requested_by: str, state: str, expires_us: int, confirmer: str, now_us: int) -> str | None:
    """Why ``confirmer`` may not confirm a request (None: may). The second person must be
    another named person; a request confirms once, and only while it is fresh."""
    if state != "pending":
        return f"the request is {state}, not waiting for confirmation"
    if now_us > expires_us:
        return "the request has expired: ask again"
    if confirmer == requested_by:
        return "a second person must confirm: the one who asked cannot confirm their own request"
    return None
