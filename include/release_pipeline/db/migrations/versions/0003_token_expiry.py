"""portal tokens expire

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:00:00

Tokens issued before this revision expire 90 days after they were issued.
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DEFAULT_VALIDITY = dt.timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=True)
        )
    tokens = sa.table(
        "portal_tokens",
        sa.column("id", sa.Integer()),
        sa.column("created_at", release_pipeline.db.schema.UtcDateTime(timezone=True)),
        sa.column("expires_at", release_pipeline.db.schema.UtcDateTime(timezone=True)),
    )
    connection = op.get_bind()
    for token_id, created_at in connection.execute(sa.select(tokens.c.id, tokens.c.created_at)).all():
        connection.execute(
            sa.update(tokens).where(tokens.c.id == token_id).values(expires_at=created_at + DEFAULT_VALIDITY)
        )
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.alter_column(
            "expires_at", existing_type=release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
