"""Single sign-on with OpenID Connect: accounts provisioned by the city's identity provider (issue 19)

Revision ID: 0016
Revises: 0015
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: SQLite and PostgreSQL add them in place (local accounts keep NULL).
    op.add_column('users', sa.Column('sso_issuer', sa.String(300), nullable=True))
    op.add_column('users', sa.Column('sso_subject', sa.String(255), nullable=True))
    op.create_index('ux_users_sso', 'users', ['sso_issuer', 'sso_subject'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_users_sso', table_name='users')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('sso_subject')
        batch.drop_column('sso_issuer')
