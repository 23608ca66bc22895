"""Weekly recording timetables (R8: programming of operating modes). Pure logic.

A schedule is a default mode plus rules ``{"days": ["mon", ...], "from": "HH:MM",
"to": "HH:MM", "mode": ...}`` evaluated in the city's local time; the last matching
rule wins. ``to`` earlier than ``from`` wraps past midnight (22:00-06:00). Modes:
``continuous``, ``off``, and ``motion`` / ``events``: recorded like continuous, then the
janitor drops what lies away from activity (varta/recording/activity.py). Analytics rules
reuse the format with the modes ``on`` / ``off`` (when a rule is armed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MODES = ("continuous", "off", "motion", "events")
END_OF_DAY = time.max  # "24:00"


class ScheduleError(ValueError):
    pass


def _parse_hhmm(text: str) -> time:
    try:
        if text == "24:00":
            return END_OF_DAY
        h, m = text.split(":")
        return time(int(h), int(m))
    except (ValueError, AttributeError):
        raise ScheduleError(f"time {text!r} is not HH:MM") from None


def _hhmm(t: time) -> str:
    return "24:00" if t == END_OF_DAY else t.strftime("%H:%M")


@dataclass(frozen=True)
class Rule:
    days: tuple[str, ...]
    start: time
    end: time
    mode: str

    def covers(self, local: datetime) -> bool:
        day = DAYS[local.weekday()]
        t = local.time()
        if self.start <= self.end:
            return day in self.days and self.start <= t < self.end
        # Wraps past midnight: the evening belongs to ``day``, the morning to the day after.
        prev_day = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and t >= self.start) or (prev_day in self.days and t < self.end)


@dataclass(frozen=True)
class Schedule:
    default: str = "continuous"
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def always(cls) -> "Schedule":
        return cls("continuous", ())

    @classmethod
    def from_json(cls, data, modes: tuple[str, ...] = MODES, default_mode: str = "continuous",
                  what: str = "recording mode") -> "Schedule":
        """Parse a timetable. ``modes``/``default_mode``/``what`` let other weekly timetables
        (the analytics rules' ``"on"``/``"off"`` arming) reuse this parser; the defaults are
        the recording schedule's."""
        if data is None or data == {}:
            return cls(default_mode, ())
        if isinstance(data, str):
            if data not in modes:
                raise ScheduleError(f"{what} {data!r} is not one of {', '.join(modes)}")
            return cls(data, ())
        if not isinstance(data, dict):
            raise ScheduleError("schedule must be a mode name or {default, rules}")
        default = data.get("default", default_mode)
        if default not in modes:
            raise ScheduleError(f"{what} {default!r} is not one of {', '.join(modes)}")
        rules = []
        for i, r in enumerate(data.get("rules") or []):
            days = r.get("days") or list(DAYS)
            if isinstance(days, str):
                days = [d.strip() for d in days.split(",")]
            days = [d.lower()[:3] for d in days]
            bad = [d for d in days if d not in DAYS]
            if bad:
                raise ScheduleError(f"rule {i + 1}: unknown day(s) {bad}; use {', '.join(DAYS)}")
            mode = r.get("mode")
            if mode not in modes:
                raise ScheduleError(f"rule {i + 1}: {what} {mode!r} is not one of {', '.join(modes)}")
            rules.append(Rule(tuple(days), _parse_hhmm(r.get("from", "00:00")), _parse_hhmm(r.get("to", "24:00")), mode))
        return cls(default, tuple(rules))

    def to_json(self) -> dict:
        return {
            "default": self.default,
            "rules": [
                {"days": list(r.days), "from": _hhmm(r.start), "to": _hhmm(r.end), "mode": r.mode}
                for r in self.rules
            ],
        }

    def mode_at(self, local: datetime) -> str:
        mode = self.default
        for rule in self.rules:
            if rule.covers(local):
                mode = rule.mode
        return mode

    def modes(self) -> set[str]:
        """Every mode the timetable can be in."""
        return {self.default, *(r.mode for r in self.rules)}

    def records_at(self, local: datetime) -> bool:
        return self.mode_at(local) != "off"
