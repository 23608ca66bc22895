"""archive viewings are journaled once per viewed interval (issue 15)

Revision ID: 0009
Revises: 0008

``archive_views`` holds what each viewer is playing of each camera until it becomes one
journal line (varta/access/viewings.py). Older nodes keep journaling per segment.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'archive_views',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('viewer', sa.String(80), nullable=False),
        sa.Column('camera_id', sa.String(64), nullable=False),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('full_name', sa.String(200), nullable=False),
        sa.Column('role', sa.String(32), nullable=False),
        sa.Column('source', sa.String(64), nullable=False),
        sa.Column('access', sa.String(8), nullable=False),
        sa.Column('from_us', sa.BigInteger(), nullable=False),
        sa.Column('to_us', sa.BigInteger(), nullable=False),
        sa.Column('segments', sa.Integer(), nullable=False),
        sa.Column('opened_us', sa.BigInteger(), nullable=False),
        sa.Column('touched_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_archive_views_viewer', 'archive_views', ['viewer', 'camera_id'])
    op.create_index('ix_archive_views_touched', 'archive_views', ['touched_us'])


def downgrade() -> None:
    op.drop_index('ix_archive_views_touched', 'archive_views')
    op.drop_index('ix_archive_views_viewer', 'archive_views')
    op.drop_table('archive_views')
