"""The one clock and the one time format.

Inside Varta every instant is an ``int`` of microseconds since the Unix epoch, UTC
("µs"). That is exact, sorts and compares cheaply in SQLite and PostgreSQL alike, and
cannot be confused with local time. At the edges (CLI, HTTP, files) instants are
ISO 8601 strings; a string without an offset is read in the city's time zone, and
output carries the offset of the city's time zone so that a person reads local time.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

US = 1_000_000
DAY_US = 86_400 * US


def now_us() -> int:
    """Current wall-clock time in µs UTC."""
    return time.time_ns() // 1000


def to_datetime(us: int, tz: ZoneInfo | timezone = timezone.utc) -> datetime:
    return datetime.fromtimestamp(us / US, tz=timezone.utc).astimezone(tz)


def from_datetime(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: attach a time zone first")
    delta = dt.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


_CITY_FORMAT = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def parse_time(text: str, tz: ZoneInfo) -> int:
    """Parse ISO 8601 (``2026-03-03T14:05``, ``2026-03-03 14:05:00+02:00``, ``...Z``), or
    the city's ``03.03.2026 14:05[:00]``.

    Without an offset the time is local to ``tz`` (the city). ``now`` and
    ``now-15m`` / ``now-2h`` / ``now-1d`` are accepted for convenience on the command line.
    """
    s = text.strip()
    if s.startswith("now"):
        rest = s[3:]
        if not rest:
            return now_us()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        if rest[0] in "+-" and rest[-1] in units:
            try:
                n = float(rest[1:-1])
            except ValueError:
                n = None
            if n is not None:
                sign = -1 if rest[0] == "-" else 1
                return now_us() + sign * int(n * units[rest[-1]] * US)
        raise ValueError(f"cannot read time {text!r}: use e.g. now-15m, now-2h")
    city = _CITY_FORMAT.fullmatch(s)
    if city:  # the console's and the city's own dd.mm.yyyy hh:mm[:ss]
        d, mo, y, hh, mm, ss = city.groups()
        s = f"{y}-{int(mo):02d}-{int(d):02d}T{int(hh or 0):02d}:{mm or '00'}:{ss or '00'}"
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: expected ISO 8601 such as 2026-03-03T14:05:00 "
            "or 2026-03-03T14:05:00+02:00, or the city's 03.03.2026 14:05:00"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return from_datetime(dt)


def format_time(us: int, tz: ZoneInfo | timezone = timezone.utc) -> str:
    """ISO 8601 with offset, millisecond precision (``2026-03-03T14:05:00.000+02:00``)."""
    return to_datetime(us, tz).isoformat(timespec="milliseconds")


def format_duration(us: int) -> str:
    return str(timedelta(microseconds=us))
