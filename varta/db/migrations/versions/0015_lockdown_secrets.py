"""Lockdown, camera sensitivity, sealed TOTP secrets, the policy's limits (issue 19)

Revision ID: 0015
Revises: 0014
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A sealed TOTP secret (varta/secrets) is longer than the 64 characters of a clear one.
    with op.batch_alter_table('users') as batch:
        batch.alter_column('totp_secret', type_=sa.Text(), existing_type=sa.String(64), existing_nullable=True)
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('sensitivity', sa.String(16), nullable=False, server_default='normal'))
    op.create_table(
        'lockdowns',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('scope', sa.String(16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('source', sa.String(16), nullable=False),
        sa.Column('started_us', sa.BigInteger(), nullable=False),
        sa.Column('started_by', sa.String(64), nullable=False),
        sa.Column('confirmed_by', sa.String(64), nullable=True),
        sa.Column('ended_us', sa.BigInteger(), nullable=True),
        sa.Column('ended_by', sa.String(64), nullable=True),
        sa.Column('end_reason', sa.Text(), nullable=True),
        sa.Column('end_confirmed_by', sa.String(64), nullable=True),
        sa.Column('active_key', sa.Integer(), nullable=True, unique=True),
    )
    op.create_table(
        'lockdown_requests',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True, autoincrement=True),
        sa.Column('move', sa.String(8), nullable=False),
        sa.Column('scope', sa.String(16), nullable=True),
        sa.Column('target_id', sa.BigInteger(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('requested_by', sa.String(64), nullable=False),
        sa.Column('requested_name', sa.String(300), nullable=False),
        sa.Column('requested_us', sa.BigInteger(), nullable=False),
        sa.Column('expires_us', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('decided_by', sa.String(64), nullable=True),
        sa.Column('decided_us', sa.BigInteger(), nullable=True),
    )
    op.create_index('ix_lockdown_requests_state', 'lockdown_requests', ['state'])
    op.create_table(
        'policy_limits',
        sa.Column('name', sa.String(48), primary_key=True),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('set_us', sa.BigInteger(), nullable=False),
        sa.Column('set_by', sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('policy_limits')
    op.drop_index('ix_lockdown_requests_state', 'lockdown_requests')
    op.drop_table('lockdown_requests')
    op.drop_table('lockdowns')
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('sensitivity')
