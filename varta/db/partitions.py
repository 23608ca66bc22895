"""The segment index on PostgreSQL, partitioned by day (issue 13, item 5).

A capital's index grows by 6,000 cameras × 8,640 segments ≈ 52 M rows a day and loses as
many to retention. Deleting them row by row bloats the table and its indexes and costs a
vacuum every day; a table partitioned by ``start_us`` into UTC days lets retention drop a
whole day in one statement once everything in it has expired (storage/expiry.py).

* ``segments`` is ``PARTITION BY RANGE (start_us)``; a day is ``segments_pYYYYMMDD``
  (``[00:00, 24:00)`` UTC in µs); ``segments_default`` takes any row outside the prepared
  days (a clock far off, an import of old footage), so an insert never fails for want of a
  partition. The primary key is ``(id, start_us)`` (PostgreSQL wants the partition key in
  it); ids still come from one sequence, so ``id`` alone stays unique.
* Days are prepared ahead (today and the next ``AHEAD_DAYS``) by the duty that runs
  retention, at every pass, so the default partition stays empty in normal running.
* SQLite (a town's single machine) keeps one plain table: nothing here applies to it.

The pure helpers (day bounds, names, which days may go) have no I/O; the rest is the
adapter that issues the DDL.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

log = logging.getLogger("varta.db")

DAY_US = 86_400 * 1_000_000
AHEAD_DAYS = 3
PARENT = "segments"
DEFAULT = "segments_default"
_NAME = re.compile(r"^segments_p(\d{8})$")


# --- pure -------------------------------------------------------------------------------
def day_start(us: int) -> int:
    return us - us % DAY_US


def name_of(day_us: int) -> str:
    d = datetime.fromtimestamp(day_us / 1e6, tz=UTC)
    return f"segments_p{d:%Y%m%d}"


def day_of(name: str) -> int | None:
    """The first µs of the day a partition holds (None: not a day partition)."""
    m = _NAME.match(name)
    if not m:
        return None
    d = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
    return int(d.timestamp()) * 1_000_000


def is_partition(table_name: str) -> bool:
    """A partition of the segment index (not a table of the declared schema)."""
    return table_name == DEFAULT or _NAME.match(table_name) is not None


def include_name(name, type_, parent_names) -> bool:
    """For Alembic's comparison: the day partitions are not tables of the declared schema."""
    return not (type_ == "table" and bool(name) and is_partition(name))


def days_between(lo_us: int, hi_us: int) -> list[int]:
    """The day starts covering [lo, hi]."""
    out, d = [], day_start(lo_us)
    while d <= hi_us:
        out.append(d)
        d += DAY_US
    return out


@dataclass(frozen=True)
class Day:
    name: str
    start_us: int

    @property
    def end_us(self) -> int:
        return self.start_us + DAY_US


# --- PostgreSQL -------------------------------------------------------------------------
def partitioned(conn) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(text("select 1 from pg_partitioned_table p join pg_class c on c.oid = p.partrelid "
                                  "where c.relname = :t and c.relnamespace = current_schema()::regnamespace"),
                             {"t": PARENT}).first())


def days(conn) -> list[Day]:
    """The day partitions, oldest first."""
    rows = conn.execute(text("select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
                             "join pg_class p on p.oid = i.inhparent where p.relname = :t "
                             "and p.relnamespace = current_schema()::regnamespace"), {"t": PARENT}).all()
    out = [Day(r[0], d) for r in rows if (d := day_of(r[0])) is not None]
    return sorted(out, key=lambda d: d.start_us)


def create_day(conn, day_us: int) -> bool:
    """Make the partition of one day; False when the default partition already holds rows of
    that day (they stay there: retention deletes them row by row)."""
    name = name_of(day_us)
    conn.execute(text("savepoint varta_part"))
    try:
        conn.execute(text(f"create table if not exists {name} partition of {PARENT} "
                          f"for values from ({day_us}) to ({day_us + DAY_US})"))
    except Exception as exc:  # noqa: BLE001 - a default partition holding rows of that day
        conn.execute(text("rollback to savepoint varta_part"))
        log.warning("segment index: no partition for %s (%s); its rows stay in %s", name,
                    str(exc).splitlines()[0], DEFAULT)
        return False
    conn.execute(text("release savepoint varta_part"))
    return True


def ensure_ahead(engine, now_us: int, ahead: int = AHEAD_DAYS) -> int:
    """Today's and the next days' partitions exist; returns how many were made."""
    made = 0
    with engine.begin() as conn:
        if not partitioned(conn):
            return 0
        have = {d.start_us for d in days(conn)}
        for day in days_between(now_us, now_us + ahead * DAY_US):
            if day not in have and create_day(conn, day):
                made += 1
    if made:
        log.info("segment index: %d day partition(s) prepared", made)
    return made


def drop_day(conn, day: Day) -> None:
    conn.execute(text(f"drop table if exists {day.name}"))


def summary(engine) -> dict | None:
    """What ``varta storage status`` says of the index's days (None: not partitioned)."""
    with engine.connect() as conn:
        if not partitioned(conn):
            return None
        ds = days(conn)
        stray = conn.execute(text(f"select count(*) from {DEFAULT}")).scalar_one()
    fmt = lambda d: datetime.fromtimestamp(d / 1e6, tz=UTC).strftime("%Y-%m-%d")  # noqa: E731
    return {"partitioned_by": "day (UTC)", "days": len(ds), "first_day": fmt(ds[0].start_us) if ds else None,
            "last_day": fmt(ds[-1].start_us) if ds else None, "rows_outside_days": stray}
