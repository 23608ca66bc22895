"""archive: where each segment is (local disk, bucket or both), its SHA-256, its legal hold (issue 13)

Revision ID: 0006
Revises: 0005

Additive only (a column with a default, a nullable column, a partial index), so a node of
the previous version keeps working against this schema during a rolling upgrade (its
segments are ``local``, which is where they are).
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('segments', sa.Column('stored', sa.String(length=8), nullable=False, server_default='local'))
    op.add_column('segments', sa.Column('sha256', sa.String(length=64), nullable=True))
    op.add_column('segments', sa.Column('locked', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_segments_locked', 'segments', ['id'],
                    postgresql_where=sa.text('locked'), sqlite_where=sa.text('locked'))
    op.create_index('ix_segments_unshipped', 'segments', ['recorder', 'id'],
                    postgresql_where=sa.text("stored <> 's3'"), sqlite_where=sa.text("stored <> 's3'"))


def downgrade():
    op.drop_index('ix_segments_unshipped', table_name='segments')
    op.drop_index('ix_segments_locked', table_name='segments')
    op.drop_column('segments', 'locked')
    op.drop_column('segments', 'sha256')
    op.drop_column('segments', 'stored')
