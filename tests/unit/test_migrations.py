"""The Alembic migrations build exactly the schema that ``schema.py`` describes."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from release_pipeline.db import connect
from release_pipeline.db.migrate import MIGRATIONS, alembic_config, current_revision, upgrade
from release_pipeline.db.schema import metadata


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
