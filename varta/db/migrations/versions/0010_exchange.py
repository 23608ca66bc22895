"""the police on line: requests filed by API with attachments and idempotency keys,
subscriptions and their deliveries (issue 16)

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table('evidence_requests') as batch:
        batch.add_column(sa.Column('filed_by', sa.String(64), nullable=True))
    op.create_index('ix_evidence_requests_filed_by', 'evidence_requests', ['filed_by'])
    op.create_table(
        'request_attachments',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('request_id', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('media_type', sa.String(100), nullable=False),
        sa.Column('bytes', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('added_by', sa.String(64), nullable=False),
        sa.Column('added_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_request_attachments_request', 'request_attachments', ['request_id'])
    op.create_table(
        'idempotency_keys',
        sa.Column('account', sa.String(64), primary_key=True),
        sa.Column('key', sa.String(200), primary_key=True),
        sa.Column('body_sha256', sa.String(64), nullable=False),
        sa.Column('request_id', sa.BigInteger(), nullable=False),
        sa.Column('created_us', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'subscriptions',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('owner', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('secret_nonce', sa.String(64), nullable=False),
        sa.Column('filters', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('created_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_subscriptions_owner', 'subscriptions', ['owner'])
    op.create_table(
        'deliveries',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('subscription_id', sa.BigInteger(), nullable=False),
        sa.Column('event_type', sa.String(40), nullable=False),
        sa.Column('event_id', sa.String(80), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_us', sa.BigInteger(), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_us', sa.BigInteger(), nullable=False),
        sa.Column('delivered_us', sa.BigInteger(), nullable=True),
    )
    op.create_index('ix_deliveries_queue', 'deliveries', ['subscription_id', 'state', 'id'])


def downgrade() -> None:
    op.drop_index('ix_deliveries_queue', 'deliveries')
    op.drop_table('deliveries')
    op.drop_index('ix_subscriptions_owner', 'subscriptions')
    op.drop_table('subscriptions')
    op.drop_table('idempotency_keys')
    op.drop_index('ix_request_attachments_request', 'request_attachments')
    op.drop_table('request_attachments')
    op.drop_index('ix_evidence_requests_filed_by', 'evidence_requests')
    with op.batch_alter_table('evidence_requests') as batch:
        batch.drop_column('filed_by')
