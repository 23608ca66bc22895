"""Engine creation and schema migration (Alembic), the same for SQLite and PostgreSQL.

Migrations run once in a cluster: every node starting at once calls :func:`upgrade`, and on
PostgreSQL the migration runs inside one transaction that first takes a transaction-level
advisory lock; the others wait on that lock, then find the schema current and do nothing.
PostgreSQL's DDL is transactional, so a migrating node that dies leaves nothing half done,
and its lock goes with its transaction (connections carry TCP keepalives, so even a node cut
off mid-migration is noticed in about a minute, not the kernel's two hours). A node older
than the schema (a rolling upgrade) starts anyway: migrations only add, and it says so.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event

_HERE = Path(__file__).parent


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL: readers never block the recorder's writes; NORMAL sync is durable
            # across process crashes and loses at most the last commits on power loss.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # TCP keepalives: a database (or a peer's migration transaction) behind a cut cable is
    # noticed in about 40 s, not after the kernel's default two hours.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args={"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                                       "keepalives_count": 4, "connect_timeout": 10})


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


MIGRATION_LOCK = 0x56415254  # "VART": the advisory lock key migrations run under


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, once in a cluster)."""
    import logging

    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            logging.getLogger("varta.db").warning(
                "the database schema (%s) is newer than this version of Varta knows (%s): running on it "
                "(migrations only add); upgrade this node", current, script.get_current_head())
            return
        if current == script.get_current_head():
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_database(url: str, migrate: bool = True, keys_dir=None, identity=None) -> Engine:
    """The database, migrated; with ``keys_dir`` (the data folder's keys) the secrets it
    holds are sealed and opened with the instance's secrets key (varta/secrets), and with a
    node's ``identity`` that key reaches this node from the others."""
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    if keys_dir is not None:
        from varta.secrets.vault import Vault, attach

        attach(engine, Vault(engine, keys_dir, identity))
    return engine
