"""the ledger: a change may name the change it reverts

Revision ID: 0008_ledger_reverts
Revises: 0007_signoff_policies
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_ledger_reverts"
down_revision = "0007_signoff_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("release_changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reverts", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("release_changes", schema=None) as batch_op:
        batch_op.drop_column("reverts")
