"""Alembic environment: runs on the connection handed over by varta.db.engine.upgrade."""

from alembic import context
from sqlalchemy import create_engine

from varta.db.partitions import include_name
from varta.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn):
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True, include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # the alembic command line
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
        conn.commit()
