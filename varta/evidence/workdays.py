"""Working days and the answer deadline (A4.10): pure, no I/O.

A4.10: the Responsible Department prepares the answer "as a rule within 5 working days of
the resolution". Working days are Monday to Friday that are not public holidays, and which
days are holidays depends on the rules in force:

* ``martial_law`` — under martial law (from 24 February 2022, Law No. 2136-IX art. 6 and
  Labour Code art. 73 as amended) public holidays are ordinary working days; only the
  holidays before martial law began in 2022 were days off. The ``holidays`` package's
  ``public`` category already models this.
* ``peacetime`` — the holidays of Labour Code art. 73 are days off, and a holiday that falls
  on a Saturday or Sunday moves the day off to the next working day (art. 67).

The rule set is a setting (``holiday_rules``) because it is a legal fact that changes by
decree, not by code; a city can also list extra days off (a local decision) or working
Saturdays (a government transfer of days) without waiting for a release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import holidays

MARTIAL_LAW, PEACETIME = "martial_law", "peacetime"
RULES = (MARTIAL_LAW, PEACETIME)

ANSWER_WORKING_DAYS = 5  # A4.10

ON_TIME, DUE_SOON, DUE_TODAY, OVERDUE = "on_time", "due_soon", "due_today", "overdue"


@lru_cache(maxsize=64)
def _days_off(year: int, rules: str) -> frozenset[date]:
    """Weekday holidays that are days off in ``year`` under ``rules``."""
    if rules == MARTIAL_LAW:
        return frozenset(holidays.Ukraine(years=year, categories=("public",)))
    if rules != PEACETIME:
        raise ValueError(f"unknown holiday rules {rules!r}; use one of: {', '.join(RULES)}")
    # The `workday` category lists the holidays that martial law turned into working days:
    # in peacetime they are days off again.
    named = set(holidays.Ukraine(years=year, categories=("public", "workday"), observed=False))
    named |= set(holidays.Ukraine(years=year - 1, categories=("public", "workday"), observed=False))
    off = set(named)
    for day in sorted(named):  # art. 67: a holiday on a weekend moves the day off forward
        if day.weekday() >= 5:
            moved = day + timedelta(days=1)
            while moved.weekday() >= 5 or moved in off:
                moved += timedelta(days=1)
            off.add(moved)
    return frozenset(d for d in off if d.year == year)


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days for the city's deadlines."""

    rules: str = MARTIAL_LAW
    extra_days_off: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)  # e.g. a working Saturday

    def __post_init__(self) -> None:
        if self.rules not in RULES:
            raise ValueError(f"unknown holiday rules {self.rules!r}; use one of: {', '.join(RULES)}")

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off or day.weekday() >= 5:
            return False
        return day not in _days_off(day.year, self.rules)

    def why_not_working(self, day: date) -> str:
        """'' for a working day, else the reason (for reports and tests)."""
        if self.is_working_day(day):
            return ""
        if day in self.extra_days_off:
            return "day off by the city's decision"
        if day.weekday() >= 5:
            return "weekend"
        names = holidays.Ukraine(years=day.year, categories=("public", "workday"))
        return names.get(day) or "day off moved from a holiday on a weekend"

    def add_working_days(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself does not count)."""
        if n < 0:
            raise ValueError("n must not be negative")
        day = start
        while n > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                n -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative if end < start)."""
        if end < start:
            return -self.working_days_between(end, start)
        return sum(1 for i in range(1, (end - start).days + 1) if self.is_working_day(start + timedelta(days=i)))


def due_date(resolved_on: date, calendar: WorkingCalendar, days: int = ANSWER_WORKING_DAYS) -> date:
    """A4.10: the answer is due on the 5th working day after the day of the resolution."""
    return calendar.add_working_days(resolved_on, days)


def deadline_state(due: date, today: date, calendar: WorkingCalendar, soon_days: int = 1) -> str:
    """How close an open request is to its due date, for the red marks and the daily report.

    ``due_soon``: at most ``soon_days`` working days are left before the due date.
    """
    if today > due:
        return OVERDUE
    if today == due:
        return DUE_TODAY
    return DUE_SOON if calendar.working_days_between(today, due) <= soon_days else ON_TIME
