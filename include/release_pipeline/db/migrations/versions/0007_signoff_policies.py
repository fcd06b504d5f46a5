"""sign-off policies: decisions and portal tokens name the approver; staff overrides

Revision ID: 0007_signoff_policies
Revises: 0006_change_roadmap_items

Decisions recorded before this revision name no approver (''): they are the OEM's
decisions as one, which is what the default policy counts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_signoff_policies"
down_revision = "0006_change_roadmap_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approver", sa.String(length=100), server_default="", nullable=False))
        batch_op.add_column(sa.Column("approver_role", sa.String(length=40), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_approval_events_decision"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_approval_events_decision"), "decision IN ('approved', 'rejected', 'overridden')"
        )
        batch_op.create_index(
            batch_op.f("ix_approval_events_oem_id_change_id_approver_id"),
            ["oem_id", "change_id", "approver", "id"],
            unique=False,
        )
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approver", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.drop_column("approver")
    op.execute("DELETE FROM approval_events WHERE decision = 'overridden'")
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_events_oem_id_change_id_approver_id"))
        batch_op.drop_constraint(batch_op.f("ck_approval_events_decision"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_approval_events_decision"), "decision IN ('approved', 'rejected')"
        )
        batch_op.drop_column("approver_role")
        batch_op.drop_column("approver")
