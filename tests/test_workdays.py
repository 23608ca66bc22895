"""A4.10 deadlines: 5 working days after the resolution, over real Ukrainian holidays and
weekends, under both holiday rules (martial law: holidays are working days; peacetime: they
are days off, and a holiday on a weekend moves the day off to the next working day)."""

from datetime import date

import pytest

from varta.evidence.workdays import (DUE_SOON, DUE_TODAY, MARTIAL_LAW, ON_TIME, OVERDUE, PEACETIME,
                                     WorkingCalendar, deadline_state, due_date)

WAR = WorkingCalendar(MARTIAL_LAW)
PEACE = WorkingCalendar(PEACETIME)


def test_plain_week_skips_the_weekend():
    # Resolved on Thursday 19 Nov 2026: Fri, Mon, Tue, Wed, Thu → due Thursday 26 Nov.
    assert due_date(date(2026, 11, 19), WAR) == date(2026, 11, 26)
    assert due_date(date(2026, 11, 19), PEACE) == date(2026, 11, 26)
    # Resolved on a Saturday: the count starts on Monday.
    assert due_date(date(2026, 11, 21), WAR) == date(2026, 11, 27)


def test_independence_day_is_a_day_off_only_in_peacetime():
    # 24 Aug 2026 is a Monday, Independence Day.
    resolved = date(2026, 8, 20)  # Thursday
    assert not PEACE.is_working_day(date(2026, 8, 24))
    assert WAR.is_working_day(date(2026, 8, 24))
    assert due_date(resolved, WAR) == date(2026, 8, 27)   # Fri 21, Mon 24, Tue 25, Wed 26, Thu 27
    assert due_date(resolved, PEACE) == date(2026, 8, 28)  # Monday the 24th does not count
    assert "Independence" in PEACE.why_not_working(date(2026, 8, 24))


def test_easter_sunday_moves_the_day_off_to_monday_in_peacetime():
    # Orthodox Easter 2026 is Sunday 12 April: in peacetime Monday 13 April is a day off.
    assert not PEACE.is_working_day(date(2026, 4, 13))
    assert WAR.is_working_day(date(2026, 4, 13))
    assert due_date(date(2026, 4, 9), PEACE) == date(2026, 4, 17)
    assert due_date(date(2026, 4, 9), WAR) == date(2026, 4, 16)


def test_constitution_day_on_sunday_moves_to_monday_in_peacetime():
    assert date(2026, 6, 28).weekday() == 6
    assert not PEACE.is_working_day(date(2026, 6, 29))  # the moved day off
    assert WAR.is_working_day(date(2026, 6, 29))


def test_before_martial_law_holidays_were_days_off_under_either_rule():
    # Christmas 2021 (Sat 25 Dec) was observed on Monday 27 Dec 2021.
    for cal in (WAR, PEACE):
        assert not cal.is_working_day(date(2021, 12, 27))
        assert due_date(date(2021, 12, 23), cal) == date(2021, 12, 31)
    # 8 March 2022 (Tuesday) came before martial-law rules on holidays took effect.
    assert not WAR.is_working_day(date(2022, 3, 8))


def test_new_year_across_the_year_boundary():
    # Resolved Tuesday 29 Dec 2026; 1 Jan 2027 is a Friday holiday (peacetime only).
    assert due_date(date(2026, 12, 29), WAR) == date(2027, 1, 5)
    assert due_date(date(2026, 12, 29), PEACE) == date(2027, 1, 6)


def test_city_decisions_override_the_calendar():
    cal = WorkingCalendar(MARTIAL_LAW, extra_days_off=frozenset({date(2026, 11, 23)}),
                          extra_working_days=frozenset({date(2026, 11, 28)}))
    assert not cal.is_working_day(date(2026, 11, 23))
    assert cal.is_working_day(date(2026, 11, 28))  # a working Saturday
    # Fri 20 → Mon 23 off → Tue 24, Wed 25, Thu 26, Fri 27, Sat 28 (working) is the 5th.
    assert due_date(date(2026, 11, 20), cal) == date(2026, 11, 28)


def test_deadline_states_for_the_red_marks():
    due = date(2026, 11, 26)  # Thursday
    assert deadline_state(due, date(2026, 11, 20), WAR) == ON_TIME
    assert deadline_state(due, date(2026, 11, 25), WAR) == DUE_SOON
    assert deadline_state(due, due, WAR) == DUE_TODAY
    assert deadline_state(due, date(2026, 11, 27), WAR) == OVERDUE


def test_unknown_rules_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="martial_law, peacetime"):
        WorkingCalendar("wartime")
