"""The database's clock, for everything the cluster decides by time (lease and session
expiry). Nodes' clocks may disagree by seconds; the database has one clock for all of them."""

from __future__ import annotations

from sqlalchemy import BigInteger, literal_column, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

_EXPR = {
    # clock_timestamp(), not now(): the instant of the statement, not of the transaction's start.
    "postgresql": "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
}


def db_now(dialect_name: str) -> ColumnElement:
    """An SQL expression for the database's current time in µs UTC."""
    return literal_column(_EXPR[dialect_name], BigInteger)


def read_db_now(bind: Engine | Connection) -> int:
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return read_db_now(conn)
    return int(bind.execute(select(db_now(bind.dialect.name))).scalar_one())
