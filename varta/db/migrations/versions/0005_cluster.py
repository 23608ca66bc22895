"""cluster: nodes, leases, one jobs table, key shares, the alarm feed's position (issue 12)

Revision ID: 0005
Revises: 0004

Additive only (new tables, a nullable column, indexes, triggers), so a node of the previous
version keeps working against this schema during a rolling upgrade.
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# The alarm feed's position: the writing transaction's id on PostgreSQL (the feed reads
# only below the oldest transaction still running, so a late commit is never skipped);
# on SQLite, where writers are serialised, a counter taken under the write lock.
PG_FEED_FUNCTION = """
CREATE OR REPLACE FUNCTION varta_events_feed_pos() RETURNS trigger AS $$
BEGIN
    NEW.feed_pos := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
PG_FEED_TRIGGER = """
CREATE TRIGGER events_feed_pos BEFORE INSERT OR UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION varta_events_feed_pos()
"""
SQLITE_FEED_TRIGGERS = (
    """
    CREATE TRIGGER events_feed_pos_insert AFTER INSERT ON events
    BEGIN
        UPDATE events SET feed_pos = (SELECT COALESCE(MAX(feed_pos), 0) + 1 FROM events) WHERE id = NEW.id;
    END
    """,
    """
    CREATE TRIGGER events_feed_pos_update AFTER UPDATE ON events WHEN NEW.feed_pos IS OLD.feed_pos
    BEGIN
        UPDATE events SET feed_pos = (SELECT COALESCE(MAX(feed_pos), 0) + 1 FROM events) WHERE id = NEW.id;
    END
    """,
)


def upgrade():
    op.create_table('cluster_nodes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('takes_unpinned', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('wrap_key', sa.Text(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('started_us', sa.BigInteger(), nullable=False),
    sa.Column('heartbeat_us', sa.BigInteger(), nullable=False),
    sa.Column('expires_us', sa.BigInteger(), nullable=False),
    sa.Column('load', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('leases',
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=36), nullable=True),
    sa.Column('epoch', sa.BigInteger(), nullable=False),
    sa.Column('acquired_us', sa.BigInteger(), nullable=True),
    sa.Column('start_at_us', sa.BigInteger(), nullable=True),
    sa.Column('handoff_to', sa.String(length=36), nullable=True),
    sa.Column('handoff_at_us', sa.BigInteger(), nullable=True),
    sa.Column('handoff_since_us', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('leases', schema=None) as batch_op:
        batch_op.create_index('ix_leases_holder', ['holder'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('resume', sa.JSON(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('node', sa.String(length=36), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.Column('started_us', sa.BigInteger(), nullable=True),
    sa.Column('finished_us', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index('ix_jobs_status', ['status'], unique=False)
        batch_op.create_index('ix_jobs_subject', ['subject'], unique=False)

    op.create_table('key_shares',
    sa.Column('node_id', sa.String(length=36), nullable=False),
    sa.Column('key_name', sa.String(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('sealed', sa.Text(), nullable=False),
    sa.Column('sealed_by', sa.String(length=36), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('node_id', 'key_name')
    )

    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.create_index('ix_segments_recorder_start', ['recorder', 'start_us'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feed_pos', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_events_feed', ['feed_pos'], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute(PG_FEED_FUNCTION)
        op.execute(PG_FEED_TRIGGER)
    else:
        for ddl in SQLITE_FEED_TRIGGERS:
            op.execute(ddl)

    # One job mechanism: the rows of the two old job tables move into ``jobs``.
    jobs = sa.table('jobs', sa.column('id'), sa.column('kind'), sa.column('subject'), sa.column('status'),
                    sa.column('progress'), sa.column('params', sa.JSON), sa.column('resume', sa.JSON),
                    sa.column('result', sa.JSON), sa.column('error'), sa.column('node'), sa.column('attempts'),
                    sa.column('created_by'), sa.column('created_us'), sa.column('started_us'),
                    sa.column('finished_us'))
    exports = sa.table('exports', sa.column('id'), sa.column('cameras', sa.JSON), sa.column('start_us'),
                       sa.column('end_us'), sa.column('status'), sa.column('progress'), sa.column('out_path'),
                       sa.column('files', sa.JSON), sa.column('error'), sa.column('node'), sa.column('created_us'),
                       sa.column('finished_us'))
    ev_jobs = sa.table('evidence_jobs', sa.column('id'), sa.column('request_id'), sa.column('kind'),
                       sa.column('status'), sa.column('progress'), sa.column('params', sa.JSON),
                       sa.column('resume', sa.JSON), sa.column('result', sa.JSON), sa.column('error'),
                       sa.column('node'), sa.column('created_by'), sa.column('created_us'),
                       sa.column('finished_us'))
    rows = []
    for r in bind.execute(sa.select(exports)).mappings():
        rows.append(dict(id=r['id'], kind='export', subject=None, status=r['status'], progress=r['progress'],
                         params={'cameras': r['cameras'], 'start_us': r['start_us'], 'end_us': r['end_us']},
                         resume=None, result={'files': r['files'], 'out_path': r['out_path']}, error=r['error'],
                         node=r['node'], attempts=1, created_by='', created_us=r['created_us'], started_us=None,
                         finished_us=r['finished_us']))
    for r in bind.execute(sa.select(ev_jobs)).mappings():
        rows.append(dict(id=r['id'], kind=r['kind'], subject=r['request_id'], status=r['status'],
                         progress=r['progress'], params=r['params'], resume=r['resume'], result=r['result'],
                         error=r['error'], node=r['node'], attempts=1, created_by=r['created_by'],
                         created_us=r['created_us'], started_us=None, finished_us=r['finished_us']))
    if rows:
        op.bulk_insert(jobs, rows)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS events_feed_pos ON events")
        op.execute("DROP FUNCTION IF EXISTS varta_events_feed_pos()")
    else:
        op.execute("DROP TRIGGER IF EXISTS events_feed_pos_insert")
        op.execute("DROP TRIGGER IF EXISTS events_feed_pos_update")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_feed')
        batch_op.drop_column('feed_pos')
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_index('ix_segments_recorder_start')
    op.drop_table('key_shares')
    op.drop_table('jobs')
    op.drop_table('leases')
    op.drop_table('cluster_nodes')
