"""Requests for recordings and their life (A4.7–A4.11): pure rules, no I/O.

```
registered ──resolve──▶ approved ──prepare──▶ prepared ──transfer──▶ transferred
     │                     │                      │
     ├──resolve(refuse)──▶ refused                │
     └──withdraw──▶ withdrawn ◀───────────────────┘ (also from approved)
```

* A4.7: police and courts on their official request to the mayor.
* A4.8: third parties only in exceptional cases, on a reasoned request; **the mayor decides**.
* A4.9: the council's own units on a service note to the mayor.
* A4.10: the mayor, the first deputy or a deputy mayor resolves; the answer is due
  5 working days after the resolution.
* A4.11: the answer is an upload of the given intervals from the given cameras to
  storage closed to third parties.

``transferred``, ``refused`` and ``withdrawn`` close the request; its automatic hold is then
released (other holds over the same footage still keep it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from varta.access.policy import DEPUTY_MAYOR, FIRST_DEPUTY, MAYOR

POLICE, COURT, THIRD_PARTY, COUNCIL_UNIT = "police", "court", "third_party", "council_unit"
KINDS = {
    POLICE: ("Запит органу Національної поліції", "Police request", "A4.7"),
    COURT: ("Запит суду", "Court request", "A4.7"),
    THIRD_PARTY: ("Вмотивований запит третьої особи", "Reasoned third-party request", "A4.8"),
    COUNCIL_UNIT: ("Службова записка підрозділу ради", "Council unit's service note", "A4.9"),
}

REGISTERED, APPROVED, REFUSED, PREPARED, TRANSFERRED, WITHDRAWN = (
    "registered", "approved", "refused", "prepared", "transferred", "withdrawn")
STATES = (REGISTERED, APPROVED, REFUSED, PREPARED, TRANSFERRED, WITHDRAWN)
CLOSED = frozenset({REFUSED, TRANSFERRED, WITHDRAWN})
STATE_TITLES = {
    REGISTERED: ("Зареєстровано", "Registered"),
    APPROVED: ("Погоджено", "Approved"),
    REFUSED: ("Відмовлено", "Refused"),
    PREPARED: ("Підготовлено", "Prepared"),
    TRANSFERRED: ("Передано", "Transferred"),
    WITHDRAWN: ("Відкликано", "Withdrawn"),
}

# action -> (states it may start from, state it leads to); None = stays (a re-upload, a new link)
TRANSITIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "approve": (frozenset({REGISTERED}), APPROVED),
    "refuse": (frozenset({REGISTERED}), REFUSED),
    "prepare": (frozenset({APPROVED, PREPARED}), PREPARED),  # again: a rebuilt package replaces the old
    "transfer": (frozenset({PREPARED, TRANSFERRED}), TRANSFERRED),  # again: re-upload or a new link
    "withdraw": (frozenset({REGISTERED, APPROVED, PREPARED}), WITHDRAWN),
}

RESOLVERS = frozenset({MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR})  # A4.10

MAX_INTERVAL_US = 7 * 86400 * 1_000_000  # one interval of a request: at most a week of one camera
MAX_ITEMS = 200


class RequestError(ValueError):
    """A request, or a step of it, that the order does not allow; the message says why."""


@dataclass(frozen=True)
class Interval:
    camera_id: str
    start_us: int
    end_us: int


def next_state(state: str, action: str) -> str:
    """The state after ``action``, or RequestError naming what is possible instead."""
    if action not in TRANSITIONS:
        raise RequestError(f"unknown step {action!r}; steps: {', '.join(TRANSITIONS)}")
    sources, target = TRANSITIONS[action]
    if state not in sources:
        allowed = [a for a, (src, _) in TRANSITIONS.items() if state in src]
        hint = f"possible now: {', '.join(allowed)}" if allowed else "the request is closed"
        raise RequestError(f"cannot {action} a request that is {state} ({hint})")
    return target or state


def may_resolve(role: str, kind: str) -> str:
    """'' if ``role`` may resolve a request of ``kind``, else the reason (A4.8, A4.10)."""
    if role not in RESOLVERS:
        return "only the mayor, the first deputy or a deputy mayor resolves requests (A4.10)"
    if kind == THIRD_PARTY and role != MAYOR:
        return "third-party requests are decided by the mayor only (A4.8)"
    return ""


def validate_new(kind: str, incoming_no: str, incoming_date: date, requester: str, basis: str,
                 items: list[Interval], today: date) -> None:
    """The fields a registered request must have; raises RequestError naming the first problem."""
    if kind not in KINDS:
        raise RequestError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    if not incoming_no.strip():
        raise RequestError("the incoming document's number is required")
    if incoming_date > today:
        raise RequestError(f"the incoming document's date {incoming_date} is in the future")
    if not requester.strip():
        raise RequestError("the requesting body (who asks) is required")
    if not basis.strip():
        what = "the reasons (A4.8: a reasoned request)" if kind == THIRD_PARTY else "the legal basis or reason"
        raise RequestError(f"{what} is required")
    if not items:
        raise RequestError("name at least one camera and interval")
    if len(items) > MAX_ITEMS:
        raise RequestError(f"at most {MAX_ITEMS} camera intervals in one request")
    for it in items:
        if it.end_us <= it.start_us:
            raise RequestError(f"camera {it.camera_id}: the interval's end must be after its start")
        if it.end_us - it.start_us > MAX_INTERVAL_US:
            raise RequestError(f"camera {it.camera_id}: an interval longer than 7 days; split the request")


def validate_more(items_before: int, items: list[Interval], state: str) -> None:
    """Intervals added to a registered request (a track found by search, say): only before
    the resolution — what the leader resolves is what the request holds (A4.10)."""
    if state != REGISTERED:
        raise RequestError("intervals are added only before the resolution; for more footage register a new request")
    if not items:
        raise RequestError("name at least one camera and interval")
    if items_before + len(items) > MAX_ITEMS:
        raise RequestError(f"at most {MAX_ITEMS} camera intervals in one request")
    for it in items:
        if it.end_us <= it.start_us:
            raise RequestError(f"camera {it.camera_id}: the interval's end must be after its start")
        if it.end_us - it.start_us > MAX_INTERVAL_US:
            raise RequestError(f"camera {it.camera_id}: an interval longer than 7 days; split the request")


def validate_resolution(approve: bool, text: str, resolved_on: date, registered_on: date, today: date) -> None:
    if not text.strip():
        raise RequestError("the resolution's text is required" if approve else "a refusal must give its reasons")
    if resolved_on > today:
        raise RequestError(f"the resolution date {resolved_on} is in the future")
    if resolved_on < registered_on:
        raise RequestError(f"the resolution date {resolved_on} is before the request was registered ({registered_on})")
