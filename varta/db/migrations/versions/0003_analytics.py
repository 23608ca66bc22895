"""analytics: settings, status, events, operator actions, motion spans

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('analytics_config',
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('updated_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('camera_id')
    )
    op.create_table('analytics_status',
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('worker', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('target_fps', sa.Float(), nullable=False),
    sa.Column('actual_fps', sa.Float(), nullable=False),
    sa.Column('detect_fps', sa.Float(), nullable=False),
    sa.Column('since_us', sa.BigInteger(), nullable=False),
    sa.Column('updated_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('camera_id')
    )
    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('zone', sa.String(length=100), nullable=True),
    sa.Column('label', sa.String(length=32), nullable=True),
    sa.Column('track_id', sa.Integer(), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('start_us', sa.BigInteger(), nullable=False),
    sa.Column('end_us', sa.BigInteger(), nullable=True),
    sa.Column('box', sa.JSON(), nullable=True),
    sa.Column('path', sa.JSON(), nullable=True),
    sa.Column('heading', sa.String(length=16), nullable=True),
    sa.Column('speed_px_s', sa.Float(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('verdict', sa.String(length=8), nullable=True),
    sa.Column('handled_by', sa.String(length=64), nullable=True),
    sa.Column('handled_us', sa.BigInteger(), nullable=True),
    sa.Column('updated_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_camera_start', ['camera_id', 'start_us'], unique=False)
        batch_op.create_index('ix_events_start', ['start_us'], unique=False)
        batch_op.create_index('ix_events_updated', ['updated_us'], unique=False)

    op.create_table('motion_spans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('start_us', sa.BigInteger(), nullable=False),
    sa.Column('end_us', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('motion_spans', schema=None) as batch_op:
        batch_op.create_index('ix_motion_spans_camera', ['camera_id', 'start_us'], unique=False)

    op.create_table('event_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_us', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('event_actions', schema=None) as batch_op:
        batch_op.create_index('ix_event_actions_event', ['event_id'], unique=False)



def downgrade():
    with op.batch_alter_table('event_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_event_actions_event')

    op.drop_table('event_actions')
    with op.batch_alter_table('motion_spans', schema=None) as batch_op:
        batch_op.drop_index('ix_motion_spans_camera')

    op.drop_table('motion_spans')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_updated')
        batch_op.drop_index('ix_events_start')
        batch_op.drop_index('ix_events_camera_start')

    op.drop_table('events')
    op.drop_table('analytics_status')
    op.drop_table('analytics_config')
