"""segment index partitioned by day on PostgreSQL (issue 13: retention drops whole days)

Revision ID: 0007
Revises: 0006

PostgreSQL only (SQLite keeps its one table). The table is rebuilt: ``segments`` becomes
``PARTITION BY RANGE (start_us)`` with one partition per UTC day holding rows now (and the
next days), a default partition, the same columns, indexes and sequence; the rows are
copied in one statement. On a large archive this takes a while (about a minute per 10 M
rows) and runs once, under the migration lock, before any node of this version starts.
Columns are unchanged, so nodes of the previous version read and write it as before.
"""
import time

from alembic import op
import sqlalchemy as sa

from varta.db import partitions as parts


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_segments_camera_start", "(camera_id, start_us)", ""),
    ("ix_segments_start", "(start_us)", ""),
    ("ix_segments_recorder_start", "(recorder, start_us)", ""),
    ("ix_segments_locked", "(id)", " where locked"),
    ("ix_segments_unshipped", "(recorder, id)", " where stored <> 's3'"),
)


def _rebuild(bind, partitioned: bool) -> None:
    x = lambda sql: bind.execute(sa.text(sql))  # noqa: E731
    x("alter sequence segments_id_seq owned by none")
    x("alter table segments rename to segments_old")
    x("alter table segments_old rename constraint segments_pkey to segments_old_pkey")
    for name, _, _ in _INDEXES:
        x(f"alter index if exists {name} rename to {name}_old")
    fk = bind.execute(sa.text("select conname from pg_constraint where conrelid = 'segments_old'::regclass "
                              "and contype = 'f'")).scalars().all()
    for name in fk:
        x(f"alter table segments_old drop constraint {name}")
    x("create table segments (like segments_old including defaults)"
      + (" partition by range (start_us)" if partitioned else ""))
    x("alter table segments add primary key " + ("(id, start_us)" if partitioned else "(id)"))
    x("alter table segments add constraint segments_camera_id_fkey foreign key (camera_id) "
      "references cameras (id) on delete cascade")
    if partitioned:
        lo, hi = bind.execute(sa.text("select min(start_us), max(start_us) from segments_old")).first()
        now = int(time.time() * 1e6)
        lo = min(lo, now) if lo is not None else now
        hi = max(hi, now) if hi is not None else now
        # Rows from before 2000 or far in the future (test clocks, broken cameras) go to
        # the default partition rather than thousands of near-empty days.
        lo = max(lo, now - 400 * parts.DAY_US)
        hi = min(hi, now + 30 * parts.DAY_US) + parts.AHEAD_DAYS * parts.DAY_US
        for day in parts.days_between(lo, hi):
            x(f"create table {parts.name_of(day)} partition of segments "
              f"for values from ({day}) to ({day + parts.DAY_US})")
        x(f"create table {parts.DEFAULT} partition of segments default")
    x("insert into segments select * from segments_old")
    x("drop table segments_old")
    x("alter sequence segments_id_seq owned by segments.id")
    for name, cols, where in _INDEXES:
        x(f"create index {name} on segments {cols}{where}")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _rebuild(bind, partitioned=True)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _rebuild(bind, partitioned=False)
