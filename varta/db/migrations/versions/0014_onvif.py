"""ONVIF devices behind cameras, PTZ control (issue 18)

Revision ID: 0014
Revises: 0013
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'onvif_devices',
        sa.Column('camera_id', sa.String(64), primary_key=True),
        sa.Column('xaddr', sa.Text(), nullable=False),
        sa.Column('username', sa.String(200), nullable=False),
        sa.Column('password', sa.Text(), nullable=False),
        sa.Column('manufacturer', sa.String(200), nullable=False),
        sa.Column('model', sa.String(200), nullable=False),
        sa.Column('firmware', sa.String(100), nullable=False),
        sa.Column('serial', sa.String(200), nullable=False),
        sa.Column('hardware_id', sa.String(200), nullable=False),
        sa.Column('main_profile', sa.String(100), nullable=False),
        sa.Column('sub_profile', sa.String(100), nullable=True),
        sa.Column('main_uri', sa.Text(), nullable=False),
        sa.Column('sub_uri', sa.Text(), nullable=True),
        sa.Column('snapshot_uri', sa.Text(), nullable=True),
        sa.Column('profiles', sa.JSON(), nullable=False),
        sa.Column('ptz', sa.Boolean(), nullable=False),
        sa.Column('events', sa.Boolean(), nullable=False),
        sa.Column('events_since_us', sa.BigInteger(), nullable=True),
        sa.Column('events_seen_us', sa.BigInteger(), nullable=True),
        sa.Column('home_after_s', sa.Integer(), nullable=True),
        sa.Column('clock_offset_s', sa.Float(), nullable=True),
        sa.Column('checked_us', sa.BigInteger(), nullable=True),
        sa.Column('state', sa.String(200), nullable=False),
        sa.Column('added_us', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'ptz_control',
        sa.Column('camera_id', sa.String(64), primary_key=True),
        sa.Column('holder', sa.String(64), nullable=True),
        sa.Column('full_name', sa.String(300), nullable=False),
        sa.Column('role', sa.String(32), nullable=False),
        sa.Column('expires_us', sa.BigInteger(), nullable=False),
        sa.Column('last_command_us', sa.BigInteger(), nullable=False),
        sa.Column('away', sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('ptz_control')
    op.drop_table('onvif_devices')
