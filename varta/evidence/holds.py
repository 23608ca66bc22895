"""Holds (A4.6): pure rules, no I/O.

"When a non-standard situation is recorded, on the instruction of the mayor, first deputy or
a deputy mayor, the recordings of a specific time interval are kept indefinitely, until a
special instruction to destroy them." So a hold records its instruction (number, date,
author and the author's office) and is released only by a recorded destruction instruction
by one of the same offices; after that, ordinary retention applies again.

Requests place an automatic hold on their intervals from registration until they close
(``kind = request``): nothing in the order lets a request's footage expire while it is
being answered. Retention itself (``recording/retention.py``) knows only intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from varta.access.policy import DEPUTY_MAYOR, FIRST_DEPUTY, MAYOR, ROLE_TITLES

INSTRUCTION, REQUEST = "instruction", "request"
AUTHOR_OFFICES = (MAYOR, FIRST_DEPUTY, DEPUTY_MAYOR)  # A4.6


class HoldError(ValueError):
    pass


@dataclass(frozen=True)
class Instruction:
    """A written instruction: to hold footage, or to destroy held footage."""

    number: str
    date: date
    author: str  # the official's full name
    office: str  # mayor | first_deputy | deputy_mayor

    def describe(self) -> str:
        title = ROLE_TITLES.get(self.office, (self.office, self.office))[0]
        return f"№ {self.number} від {self.date:%d.%m.%Y}, {title} {self.author}"


def validate_instruction(ins: Instruction, today: date, what: str = "hold") -> None:
    if not ins.number.strip():
        raise HoldError(f"the {what} instruction's number is required")
    if ins.date > today:
        raise HoldError(f"the {what} instruction's date {ins.date} is in the future")
    if not ins.author.strip():
        raise HoldError(f"the {what} instruction's author (full name) is required")
    if ins.office not in AUTHOR_OFFICES:
        raise HoldError(f"a {what} instruction is given by the mayor, the first deputy or a deputy mayor "
                        f"(A4.6), not by {ins.office!r}")


def validate_interval(start_us: int, end_us: int, now_us: int) -> None:
    if end_us <= start_us:
        raise HoldError("the held interval's end must be after its start")
    if start_us > now_us:
        raise HoldError("the held interval starts in the future: nothing is recorded there yet")


def validate_release(kind: str, released: bool, destruction: Instruction | None, hold_date: date, today: date) -> None:
    """A4.6: only a destruction instruction releases a hold placed by instruction."""
    if released:
        raise HoldError("this hold is already released")
    if kind == REQUEST:
        raise HoldError("a request's hold is released when the request closes, not by hand")
    if destruction is None:
        raise HoldError("releasing a hold needs the destruction instruction (A4.6)")
    validate_instruction(destruction, today, "destruction")
    if destruction.date < hold_date:
        raise HoldError(f"the destruction instruction ({destruction.date}) predates the hold ({hold_date})")
