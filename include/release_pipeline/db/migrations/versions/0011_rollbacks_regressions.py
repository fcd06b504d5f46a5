"""regressions and rollbacks requested by OEMs; a withdrawn approval

Revision ID: 0011_rollbacks
Revises: 0010_waves

An approval recorded before this revision is never ``withdrawn``: only a rollback done
at an OEM's request withdraws approvals (``release_pipeline.rollbacks``).
"""

import sqlalchemy as sa
from alembic import op

from release_pipeline.db.schema import UtcDateTime

revision = "0011_rollbacks"
down_revision = "0010_waves"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_approval_events_decision"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_approval_events_decision"),
            "decision IN ('approved', 'rejected', 'overridden', 'withdrawn')",
        )
    op.create_table(
        "regression_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("oem_id", sa.String(length=40), nullable=False),
        sa.Column("release_id", sa.String(length=7), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_by", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("vendor_alerted_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["release_id"], ["releases.id"], name=op.f("fk_regression_reports_release_id_releases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regression_reports")),
    )
    op.create_index(op.f("ix_regression_reports_oem_id_id"), "regression_reports", ["oem_id", "id"], unique=False)
    op.create_table(
        "rollback_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("oem_id", sa.String(length=40), nullable=False),
        sa.Column("from_release_id", sa.String(length=7), nullable=False),
        sa.Column("to_release_id", sa.String(length=7), nullable=False),
        sa.Column("regression_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", UtcDateTime(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('requested', 'approved', 'refused', 'done', 'failed')",
            name=op.f("ck_rollback_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["from_release_id"], ["releases.id"], name=op.f("fk_rollback_requests_from_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["to_release_id"], ["releases.id"], name=op.f("fk_rollback_requests_to_release_id_releases")
        ),
        sa.ForeignKeyConstraint(
            ["regression_id"],
            ["regression_reports.id"],
            name=op.f("fk_rollback_requests_regression_id_regression_reports"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollback_requests")),
    )
    op.create_index(op.f("ix_rollback_requests_oem_id_status"), "rollback_requests", ["oem_id", "status"], unique=False)
    op.create_table(
        "rollback_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["rollback_requests.id"], name=op.f("fk_rollback_events_request_id_rollback_requests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollback_events")),
    )
    op.create_index(op.f("ix_rollback_events_request_id"), "rollback_events", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_rollback_events_request_id"), table_name="rollback_events")
    op.drop_table("rollback_events")
    op.drop_index(op.f("ix_rollback_requests_oem_id_status"), table_name="rollback_requests")
    op.drop_table("rollback_requests")
    op.drop_index(op.f("ix_regression_reports_oem_id_id"), table_name="regression_reports")
    op.drop_table("regression_reports")
    op.execute("DELETE FROM approval_events WHERE decision = 'withdrawn'")
    with op.batch_alter_table("approval_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_approval_events_decision"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_approval_events_decision"), "decision IN ('approved', 'rejected', 'overridden')"
        )
