"""cameras' field of view and the city's address list: cameras near a point (issue 16)

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('view_direction', sa.Float(), nullable=True))
        batch.add_column(sa.Column('view_angle', sa.Float(), nullable=True))
        batch.add_column(sa.Column('view_range_m', sa.Float(), nullable=True))
    op.create_table(
        'addresses',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('text', sa.String(300), nullable=False),
        sa.Column('key', sa.String(300), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=False),
        sa.Column('longitude', sa.Float(), nullable=False),
    )
    op.create_index('ix_addresses_key', 'addresses', ['key'])


def downgrade() -> None:
    op.drop_index('ix_addresses_key', 'addresses')
    op.drop_table('addresses')
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('view_range_m')
        batch.drop_column('view_angle')
        batch.drop_column('view_direction')
