"""What the evidence registers share: yearly numbers, the history, dates at the edges."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from varta.access.policy import Principal
from varta.clock import US, format_time, now_us
from varta.db.schema import evidence_history


class NotFound(LookupError):
    pass


def numbered(engine: Engine, work):
    """Run ``work(conn)`` in a transaction that takes yearly numbers (``next_number``).

    Two nodes numbering at the same instant race for a number; the loser's insert breaks the
    unique constraint, its whole transaction rolls back, and it runs again with the next one.
    """
    for _ in range(20):
        try:
            with engine.begin() as conn:
                return work(conn)
        except IntegrityError:
            continue
    raise RuntimeError("could not number a new record (too many concurrent registrations)")


def insert_numbered(engine: Engine, table: Table, prefix: str, year: int, values: dict, then=None) -> tuple[int, str]:
    """Insert a row numbered ``PREFIX-YEAR-NNNN`` (the next free number of the year);
    ``then(conn, id, number)`` runs in the same transaction (e.g. the history line)."""
    def work(conn):
        number = next_number(conn, table, prefix, year)
        new_id = conn.execute(insert(table).values(number=number, **values)).inserted_primary_key[0]
        if then is not None:
            then(conn, new_id, number)
        return new_id, number
    return numbered(engine, work)


def fetch(engine: Engine, table: Table, row_id: int, what: str):
    """One record by id, or NotFound naming it ("no request 7")."""
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == row_id)).first()
    if row is None:
        raise NotFound(f"no {what} {row_id}")
    return row


def next_number(conn, table: Table, prefix: str, year: int) -> str:
    taken = conn.execute(select(table.c.number).where(table.c.number.like(f"{prefix}-{year}-%"))).scalars().all()
    return f"{prefix}-{year}-{max((int(x.rsplit('-', 1)[1]) for x in taken), default=0) + 1:04d}"


def add_history(conn, subject: str, subject_id: int, who: Principal, action: str, detail: dict | None = None,
                at_us: int | None = None) -> None:
    conn.execute(insert(evidence_history).values(
        subject=subject, subject_id=subject_id, time_us=at_us or now_us(), account=who.login,
        full_name=who.full_name, action=action, detail=detail or {}))


def history(engine: Engine, subject: str, subject_id: int, tz) -> list[dict]:
    q = (select(evidence_history)
         .where(evidence_history.c.subject == subject, evidence_history.c.subject_id == subject_id)
         .order_by(evidence_history.c.id))
    with engine.connect() as conn:
        return [{"time": format_time(r.time_us, tz), "account": r.account, "full_name": r.full_name,
                 "action": r.action, "detail": r.detail} for r in conn.execute(q)]


def parse_date(value: str | date, what: str) -> date:
    """A document date, YYYY-MM-DD (dates of documents carry no time of day)."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"{what}: expected a date like 2026-03-03, got {value!r}") from None


def city_today(tz, at_us: int | None = None) -> date:
    return datetime.fromtimestamp((at_us or now_us()) / US, tz).date()


def fmt(us: int | None, tz) -> str | None:
    return format_time(us, tz) if us is not None else None
