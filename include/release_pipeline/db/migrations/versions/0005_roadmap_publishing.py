"""roadmap items are the vendor's words: published items, asks attached to them, hidden items

Revision ID: 0005_roadmap_publishing
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0005_roadmap_publishing"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("item_id", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("linked_by", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("linked_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("planned_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("hidden_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("updated_by", sa.String(length=100), nullable=True))
    with op.batch_alter_table("roadmap_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidates", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("roadmap_snapshots", schema=None) as batch_op:
        batch_op.drop_column("candidates")
    with op.batch_alter_table("planned_items", schema=None) as batch_op:
        batch_op.drop_column("updated_by")
        batch_op.drop_column("hidden_at")
        batch_op.drop_column("kind")
        batch_op.drop_column("description")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_column("linked_at")
        batch_op.drop_column("linked_by")
        batch_op.drop_column("item_id")
