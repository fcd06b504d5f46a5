"""install calendar: feed tokens, and what each calendar event last said

Revision ID: 0009_calendar
Revises: 0008_ledger_reverts

Tokens issued before this revision are portal tokens (``kind = 'portal'``).
"""

import sqlalchemy as sa
from alembic import op

from release_pipeline.db.schema import UtcDateTime

revision = "0009_calendar"
down_revision = "0008_ledger_reverts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=10), server_default="portal", nullable=False))
        batch_op.create_check_constraint(batch_op.f("ck_portal_tokens_kind"), "kind IN ('portal', 'feed')")
    op.create_table(
        "calendar_event_revisions",
        sa.Column("oem_id", sa.String(length=40), nullable=False),
        sa.Column("uid", sa.String(length=120), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("changed_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("oem_id", "uid", name=op.f("pk_calendar_event_revisions")),
    )


def downgrade() -> None:
    op.drop_table("calendar_event_revisions")
    with op.batch_alter_table("portal_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_portal_tokens_kind"), type_="check")
        batch_op.drop_column("kind")
