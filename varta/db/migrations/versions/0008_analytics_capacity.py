"""analytics status tells the rate the governor allows and how far behind the camera analysis runs (issue 14)

Revision ID: 0008
Revises: 0007

Two nullable columns on ``analytics_status``: ``allowed_fps`` (the rate the governor lets a
camera have now; below ``target_fps`` when the machine is overloaded) and ``lag_s`` (the
longest delay, over the last report, between a frame being taken and being analysed).
Older nodes ignore them.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('analytics_status') as batch:
        batch.add_column(sa.Column('allowed_fps', sa.Float(), nullable=True))
        batch.add_column(sa.Column('lag_s', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('analytics_status') as batch:
        batch.drop_column('lag_s')
        batch.drop_column('allowed_fps')
