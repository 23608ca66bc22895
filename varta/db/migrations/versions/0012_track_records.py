"""track records for search across cameras (issue 16)

Revision ID: 0012
Revises: 0011
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'track_records',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('label', sa.String(32), nullable=False),
        sa.Column('start_us', sa.BigInteger(), nullable=False),
        sa.Column('end_us', sa.BigInteger(), nullable=False),
        sa.Column('path', sa.JSON(), nullable=False),
        sa.Column('entry', sa.String(8), nullable=False),
        sa.Column('exit', sa.String(8), nullable=False),
        sa.Column('heading', sa.String(12), nullable=True),
        sa.Column('compass', sa.String(2), nullable=True),
        sa.Column('speed', sa.Float(), nullable=False),
        sa.Column('dwell_s', sa.Float(), nullable=False),
        sa.Column('colours', sa.String(100), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('thumbnail', sa.LargeBinary(), nullable=True),
        sa.Column('worker', sa.String(100), nullable=False),
    )
    op.create_index('ix_track_records_start', 'track_records', ['start_us'])
    op.create_index('ix_track_records_camera', 'track_records', ['camera_id', 'start_us'])
    op.create_index('ix_track_records_label', 'track_records', ['label', 'start_us'])


def downgrade() -> None:
    op.drop_index('ix_track_records_label', 'track_records')
    op.drop_index('ix_track_records_camera', 'track_records')
    op.drop_index('ix_track_records_start', 'track_records')
    op.drop_table('track_records')
