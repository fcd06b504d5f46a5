"""rollout waves: the halt and resume history of a release

Revision ID: 0010_waves
Revises: 0009_calendar
"""

import sqlalchemy as sa
from alembic import op

import release_pipeline.db.schema

revision = "0010_waves"
down_revision = "0009_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wave_halts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_id", sa.String(length=7), nullable=False),
        sa.Column("event", sa.String(length=10), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=True),
        sa.Column("wave", sa.Integer(), nullable=True),
        sa.Column("oem_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", release_pipeline.db.schema.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("event IN ('halted', 'resumed')", name=op.f("ck_wave_halts_event")),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"], name=op.f("fk_wave_halts_release_id_releases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wave_halts")),
    )
    with op.batch_alter_table("wave_halts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wave_halts_release_id_id"), ["release_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wave_halts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wave_halts_release_id_id"))
    op.drop_table("wave_halts")
