"""held_sends: sends the white-label guard stopped

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:10:00
"""

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("oem_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("conn_id", sa.String(length=250), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("leaks", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("released_by", sa.String(length=100), nullable=True),
        sa.Column("released_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('held', 'released')", name=op.f("ck_held_sends_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_sends")),
        sa.UniqueConstraint("key", name=op.f("uq_held_sends_key")),
    )
    with op.batch_alter_table("held_sends", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_sends_status_id"), ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_sends", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_sends_status_id"))
    op.drop_table("held_sends")
