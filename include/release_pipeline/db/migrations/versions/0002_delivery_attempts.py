"""delivery attempts and instance locks

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "instance_locks",
        sa.Column("oem_id", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=250), nullable=False),
        sa.Column("acquired_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("oem_id", name=op.f("pk_instance_locks")),
    )


def downgrade() -> None:
    op.drop_table("instance_locks")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("attempt")
