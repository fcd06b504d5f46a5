"""The Alembic migrations build exactly the schema that ``schema.py`` describes."""

import pendulum
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from release_pipeline.db import connect
from release_pipeline.db.migrate import MIGRATIONS, alembic_config, current_revision, upgrade
from release_pipeline.db.schema import UtcDateTime, metadata


def test_migrated_database_matches_the_schema(release_db_url):
    engine = connect(release_db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
    engine.dispose()


def test_upgrade_is_idempotent_and_reaches_head(release_db_url):
    engine = connect(release_db_url)
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    assert current_revision(engine) == head
    engine.dispose()


def test_one_linear_history():
    with connect("sqlite://").connect() as conn:
        script = ScriptDirectory.from_config(alembic_config(conn))
    assert len(script.get_heads()) == 1
    assert MIGRATIONS.is_dir()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("postgres_databases").create("rt_migrate")


def test_tokens_issued_before_expiry_existed_expire_90_days_after_issue(empty_db_url):
    engine = connect(empty_db_url)
    upgrade(engine, "0001")
    issued = pendulum.datetime(2026, 3, 1, 9, tz="UTC")
    tokens = sa.table(
        "portal_tokens", *(sa.column(c) for c in ("oem_id", "token_hash", "label", "created_by")),
        sa.column("created_at", UtcDateTime()),
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            tokens.insert().values(oem_id="acme", token_hash="h", label="ann", created_by="ops", created_at=issued)
        )
    upgrade(engine, "0003")
    with engine.connect() as conn:
        (expires_at,) = conn.execute(sa.select(metadata.tables["portal_tokens"].c.expires_at)).one()
    assert expires_at == issued.add(days=90)
    engine.dispose()


def test_decisions_taken_before_sign_off_policies_are_the_oems_as_one(empty_db_url):
    """0007: a decision recorded before it names no approver (''), which is what the
    default policy counts; the decision check takes staff overrides and nothing else."""
    from release_pipeline.db.repository import ReleaseRepository
    from release_pipeline.models import Decision

    engine = connect(empty_db_url)
    upgrade(engine, "0006_change_roadmap_items")
    at = pendulum.datetime(2026, 11, 26, 10, tz="UTC")

    def table(name, *columns, times=("created_at",)):
        return sa.table(name, *(sa.column(c) for c in columns), *(sa.column(c, UtcDateTime()) for c in times))

    with engine.begin() as conn:
        conn.execute(
            table("releases", "id", "train_index", "status", times=("release_at", "created_at", "updated_at"))
            .insert().values(id="2026.24", train_index=1, status="deployed", release_at=at, created_at=at,
                             updated_at=at)
        )  # fmt: skip
        conn.execute(
            table("release_changes", "change_id", "release_id", "type", "component", "title", "description",
                  "breaking", times=("merged_at", "created_at"))
            .insert().values(change_id="CHG-1", release_id="2026.24", type="fix", component="core", title="t",
                             description="d", breaking=False, merged_at=at, created_at=at)
        )  # fmt: skip
        conn.execute(
            table("approval_requests", "oem_id", "change_id", "release_id", times=("requested_at",))
            .insert().values(oem_id="acme", change_id="CHG-1", release_id="2026.24", requested_at=at)
        )  # fmt: skip
        conn.execute(
            table("approval_events", "oem_id", "change_id", "release_id", "decision", "actor", "channel")
            .insert().values(oem_id="acme", change_id="CHG-1", release_id="2026.24", decision="approved",
                             actor="ann", channel="portal", created_at=at)
        )  # fmt: skip
    upgrade(engine)
    repo = ReleaseRepository(engine)
    (state,) = repo.approval_states("acme", None, "2026.24")
    assert (state.approver, state.decision, state.actor) == (None, "approved", "ann")
    repo.record_decision(oem_id="acme", change_id="CHG-1", decision=Decision.OVERRIDDEN, actor="s", channel="cli",
                         comment="why")  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("UPDATE approval_events SET decision = 'maybe'"))
    engine.dispose()
