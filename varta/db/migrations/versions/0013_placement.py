"""camera placement analysis: incidents, sites, zones, proposals (issue 17)

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'placement_incidents',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('batch', sa.String(120), nullable=False),
        sa.Column('time_us', sa.BigInteger(), nullable=True),
        sa.Column('category', sa.String(64), nullable=False),
        sa.Column('severity', sa.Float(), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=False),
        sa.Column('longitude', sa.Float(), nullable=False),
        sa.Column('ref', sa.String(64), nullable=False),
        sa.Column('imported_by', sa.String(64), nullable=False),
        sa.Column('imported_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_placement_incidents_time', 'placement_incidents', ['time_us'])
    op.create_table(
        'placement_sites',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('ref', sa.String(64), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=False),
        sa.Column('longitude', sa.Float(), nullable=False),
        sa.Column('imported_us', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'placement_zones',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('polygon', sa.JSON(), nullable=False),
        sa.Column('imported_us', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'placement_proposals',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('result', sa.JSON(), nullable=False),
        sa.Column('sent_to', sa.String(64), nullable=True),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('created_us', sa.BigInteger(), nullable=False),
        sa.Column('updated_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_placement_proposals_sent_to', 'placement_proposals', ['sent_to'])
    op.create_table(
        'placement_notes',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('proposal_id', sa.BigInteger(), nullable=False),
        sa.Column('account', sa.String(64), nullable=False),
        sa.Column('full_name', sa.String(300), nullable=False),
        sa.Column('step', sa.String(16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('time_us', sa.BigInteger(), nullable=False),
    )
    op.create_index('ix_placement_notes_proposal', 'placement_notes', ['proposal_id'])


def downgrade() -> None:
    op.drop_index('ix_placement_notes_proposal', 'placement_notes')
    op.drop_table('placement_notes')
    op.drop_index('ix_placement_proposals_sent_to', 'placement_proposals')
    op.drop_table('placement_proposals')
    op.drop_table('placement_zones')
    op.drop_table('placement_sites')
    op.drop_index('ix_placement_incidents_time', 'placement_incidents')
    op.drop_table('placement_incidents')
