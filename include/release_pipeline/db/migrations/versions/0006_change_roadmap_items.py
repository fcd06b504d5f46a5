"""changes name the roadmap items they deliver: the change_roadmap_items link table

Revision ID: 0006_change_roadmap_items
Revises: 0005_roadmap_publishing
"""

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0006_change_roadmap_items"
down_revision = "0005_roadmap_publishing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_roadmap_items",
        sa.Column("change_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=80), nullable=False),
        sa.Column("linked_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["release_changes.change_id"],
            name=op.f("fk_change_roadmap_items_change_id_release_changes"),
        ),
        sa.PrimaryKeyConstraint("change_id", "item_id", name=op.f("pk_change_roadmap_items")),
    )
    with op.batch_alter_table("change_roadmap_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_roadmap_items_item_id"), ["item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_roadmap_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_roadmap_items_item_id"))
    op.drop_table("change_roadmap_items")
