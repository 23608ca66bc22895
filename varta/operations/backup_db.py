"""The database half of backup and restore: dump one consistent snapshot, load it back.

* SQLite: the sqlite3 online backup API copies the live database in one step under one
  read transaction (WAL: the recorder keeps writing meanwhile) into a file of its own.
* PostgreSQL: every table is read in one ``REPEATABLE READ READ ONLY`` transaction (one
  snapshot of the whole database, writers never blocked) into JSON lines.
* Loading (PostgreSQL targets, or a SQLite target from a PostgreSQL dump): the schema is
  brought to the backup's own revision by the same Alembic migrations, the rows are
  inserted with their ids as they were, user triggers held off meanwhile (the alarm feed's
  position is kept, not renumbered), sequences moved past the ids; then up to head.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import Engine, MetaData, func, select, text

from varta.operations.backup_manifest import BackupError, decode_row, encode_row, table_header

BATCH = 2000
SKIP_TABLES = {"alembic_version"}


def db_kind(engine: Engine) -> str:
    return "sqlite" if engine.dialect.name == "sqlite" else "postgresql"


def sqlite_path(engine: Engine) -> Path:
    db = engine.url.database
    if not db or db == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(db)


def current_revision(conn) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def script_revisions() -> tuple[list[str], str | None]:
    """Every migration this code knows, and the newest."""
    from alembic.script import ScriptDirectory

    from varta.db.engine import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [s.revision for s in script.walk_revisions()], script.get_current_head()


def _pg_tables(conn) -> list[str]:
    """The schema's tables, without partitions (their rows are read through the parent)."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "ORDER BY c.relname").all()
    return [r[0] for r in rows if r[0] not in SKIP_TABLES]


def _sqlite_tables(conn) -> list[str]:
    rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                                "ORDER BY name").all()
    return [r[0] for r in rows if r[0] not in SKIP_TABLES]


def tables_of(conn) -> list[str]:
    return _sqlite_tables(conn) if conn.dialect.name == "sqlite" else _pg_tables(conn)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def journal_head_of(conn) -> tuple[int, str]:
    row = conn.exec_driver_sql("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1").first()
    return (int(row[0]), row[1]) if row else (0, "0" * 64)


# --- dumping -------------------------------------------------------------------------------
def dump_sqlite(engine: Engine, dest: Path) -> tuple[str | None, dict[str, int], tuple[int, str]]:
    """Copy the live SQLite database to ``dest`` (online, consistent); its revision, row
    counts and journal head, read from the copy."""
    src_path = sqlite_path(engine)
    if not src_path.is_file():
        raise BackupError(f"no database at {src_path}")
    src = sqlite3.connect(src_path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst, pages=-1)  # one step: one read transaction, one snapshot
    finally:
        dst.close()
        src.close()
    dest.chmod(0o600)
    return describe_sqlite_file(dest)


def describe_sqlite_file(path: Path) -> tuple[str | None, dict[str, int], tuple[int, str]]:
    from varta.db.engine import make_engine

    eng = make_engine(f"sqlite:///{path}")
    try:
        with eng.connect() as conn:
            ok = conn.exec_driver_sql("PRAGMA integrity_check").scalar()
            if ok != "ok":
                raise BackupError(f"the database copy fails SQLite's integrity check: {ok}")
            rev = current_revision(conn)
            counts = {t: conn.execute(select(func.count()).select_from(text(_q(t)))).scalar_one()
                      for t in tables_of(conn)}
            head = journal_head_of(conn) if "journal" in counts else (0, "0" * 64)
    finally:
        eng.dispose()
    # The copy is a file of its own: no WAL beside it (checkpointed by the connection close).
    return rev, counts, head


def dump_postgresql(engine: Engine, folder: Path) -> tuple[str | None, dict[str, int], tuple[int, str]]:
    """Every table as ``folder/NAME.jsonl`` (a header line, then one row a line), all read
    in one REPEATABLE READ READ ONLY transaction: one snapshot of the whole database."""
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True) as conn:
        with conn.begin():
            rev = current_revision(conn)
            tables = _pg_tables(conn)
            head = journal_head_of(conn) if "journal" in tables else (0, "0" * 64)
            for t in tables:
                n = 0
                res = conn.execution_options(stream_results=True, yield_per=BATCH).exec_driver_sql(
                    f"SELECT * FROM {_q(t)}")
                cols = list(res.keys())
                path = folder / f"{t}.jsonl"
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(table_header(t, cols) + "\n")
                    while chunk := res.fetchmany(BATCH):
                        for row in chunk:
                            fh.write(encode_row(row) + "\n")
                            n += 1
                path.chmod(0o600)
                counts[t] = n
    return rev, counts, head


# --- loading ---------------------------------------------------------------------------------
class JsonlSource:
    """The tables of a PostgreSQL dump: ``NAME.jsonl`` files."""

    def __init__(self, folder: Path):
        self.folder = folder

    def tables(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.jsonl"))

    @contextmanager
    def rows(self, table: str) -> Iterator[tuple[list[str], Iterator[list]]]:
        with open(self.folder / f"{table}.jsonl", encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            yield header["columns"], (decode_row(line) for line in fh if line.strip())


class SqliteFileSource:
    """The tables of a SQLite copy (a SQLite backup restored to PostgreSQL), read through
    their reflected types: JSON as objects, booleans as booleans."""

    def __init__(self, path: Path):
        from varta.db.engine import make_engine

        self.engine = make_engine(f"sqlite:///{path}")
        self.md = MetaData()
        self.md.reflect(bind=self.engine, only=lambda name, _md: name not in SKIP_TABLES)

    def tables(self) -> list[str]:
        return sorted(self.md.tables)

    @contextmanager
    def rows(self, table: str) -> Iterator[tuple[list[str], Iterator[list]]]:
        t = self.md.tables[table]
        with self.engine.connect() as conn:
            res = conn.execution_options(yield_per=BATCH).execute(select(t))
            yield list(res.keys()), (list(r) for r in res)

    def close(self) -> None:
        self.engine.dispose()


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in each table of the target (empty when it has no schema yet)."""
    with engine.connect() as conn:
        return {t: conn.execute(select(func.count()).select_from(text(_q(t)))).scalar_one() for t in tables_of(conn)}


def wipe_postgresql(engine: Engine) -> None:
    """Drop everything this account owns in the current schema: tables (partitions with
    them), sequences, functions and types the migrations made (``--force``)."""
    with engine.begin() as conn:
        for (t,) in conn.exec_driver_sql(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition").all():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_q(t)} CASCADE")
        for (s,) in conn.exec_driver_sql(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'S'").all():
            conn.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {_q(s)} CASCADE")
        for (sig,) in conn.exec_driver_sql(
                "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema() AND pg_get_userbyid(p.proowner) = current_user").all():
            conn.exec_driver_sql(f"DROP FUNCTION IF EXISTS {sig} CASCADE")
        for (ty,) in conn.exec_driver_sql(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'd') "
                "AND pg_get_userbyid(t.typowner) = current_user").all():
            conn.exec_driver_sql(f"DROP TYPE IF EXISTS {_q(ty)} CASCADE")


def migrate_to(engine: Engine, revision: str | None) -> None:
    """Create the schema exactly at the backup's revision (the same migrations as ever)."""
    from alembic import command

    from varta.db.engine import alembic_config

    if revision is None:
        return
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def load(engine: Engine, source, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Insert every table of ``source`` into the (freshly migrated) target in one
    transaction: seed rows removed first, user triggers off while loading, FK order kept."""
    loaded: dict[str, int] = {}
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        md = MetaData()
        md.reflect(bind=conn, only=lambda name, _md: name not in SKIP_TABLES and not name.startswith("sqlite_"))
        names = source.tables()
        unknown = sorted(set(names) - set(md.tables))
        if unknown:
            raise BackupError(f"the backup has tables {unknown} that the schema at its revision lacks")
        triggers: list[tuple[str, str]] = []
        if pg:
            for t in md.sorted_tables:
                conn.exec_driver_sql(f"ALTER TABLE {_q(t.name)} DISABLE TRIGGER USER")
        else:
            triggers = [tuple(r) for r in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL").all()]
            for name, _sql in triggers:
                conn.exec_driver_sql(f"DROP TRIGGER {_q(name)}")
        for t in reversed(md.sorted_tables):  # the migrations' seed rows (journal_head)
            conn.execute(t.delete())
        for table in md.sorted_tables:  # parents before children
            if table.name not in names:
                continue
            with source.rows(table.name) as (cols, rows):
                missing = [c for c in cols if c not in table.c]
                if missing:
                    raise BackupError(f"table {table.name}: columns {missing} are not in the schema at the "
                                      "backup's revision")
                n, batch = 0, []
                for values in rows:
                    batch.append(dict(zip(cols, values)))
                    if len(batch) >= BATCH:
                        conn.execute(table.insert(), batch)
                        n, batch = n + len(batch), []
                if batch:
                    conn.execute(table.insert(), batch)
                    n += len(batch)
            loaded[table.name] = n
            if progress:
                progress(table.name, n)
        if pg:
            _reset_sequences(conn)
            for t in md.sorted_tables:
                conn.exec_driver_sql(f"ALTER TABLE {_q(t.name)} ENABLE TRIGGER USER")
        else:
            for _name, sql in triggers:
                conn.exec_driver_sql(sql)
    return loaded


def _reset_sequences(conn) -> None:
    """Move every column's sequence past the ids loaded (nextval would collide otherwise)."""
    cols = conn.exec_driver_sql(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN pg_class k ON k.relname = c.table_name JOIN pg_namespace n ON n.oid = k.relnamespace "
        "AND n.nspname = c.table_schema WHERE c.table_schema = current_schema() AND NOT k.relispartition "
        "AND c.data_type IN ('integer', 'bigint', 'smallint')").all()
    for table, column in cols:
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                           {"t": _q(table), "c": column}).scalar()
        if seq:
            conn.execute(text(f"SELECT setval(:s, COALESCE((SELECT MAX({_q(column)}) FROM {_q(table)}), 0) + 1, false)"),
                         {"s": seq})


def place_sqlite_file(copy: Path, target: Path) -> None:
    """Put the backed-up SQLite file where the settings say (no WAL or SHM left beside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(copy, tmp)
    tmp.chmod(0o600)
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)
    tmp.replace(target)
