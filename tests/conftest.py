"""Fixtures shared by every test tier.

Release database tests run once on SQLite and once on PostgreSQL. The PostgreSQL
server comes from ``$RELEASE_TRAIN_TEST_PG_URL`` (``.ci/run`` and the Makefile set
it); when it cannot be reached the tests fail, they are never skipped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from devstack.airflow_env import airflow_environment
from devstack.postgres import ThrowawayDatabases
from release_pipeline.db import connect
from release_pipeline.db.migrate import upgrade
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.db.schema import metadata
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar

REPO = Path(__file__).resolve().parents[1]
PG_URL_ENV = "RELEASE_TRAIN_TEST_PG_URL"

# `.ci/run` runs the calendar-driven end-to-end tests again as if today were another
# day (inside a freeze window, across a new year): tests own their clock, so they pass.
if os.environ.get("RELEASE_TRAIN_TEST_TODAY"):
    import time_machine

    time_machine.travel(os.environ["RELEASE_TRAIN_TEST_TODAY"], tick=True).start()

# Airflow reads its configuration once, on first import: every test process (each
# xdist worker) gets its own Airflow home before any test module imports airflow.
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="release-train-airflow-"))
os.environ.update(airflow_environment(AIRFLOW_HOME))
# failed tasks retry after 1 s instead of 30 s, so retry paths run in test time
os.environ["RELEASE_TRAIN_RETRY_DELAY_SECONDS"] = "1"


def pg_admin_url() -> str:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.fail(f"${PG_URL_ENV} is not set: the release database tests need PostgreSQL (see README)")
    return url


@pytest.fixture(scope="session")
def postgres_databases():
    """Throw-away databases on the test PostgreSQL server, dropped at the end."""
    try:
        databases = ThrowawayDatabases(pg_admin_url())
    except ConnectionError as exc:
        pytest.fail(f"{exc}; start it, see README")
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def _postgres_release_db(postgres_databases) -> str:
    """One migrated PostgreSQL release database per test worker; tests truncate it."""
    url = postgres_databases.create("rt_release")
    engine = connect(url)
    upgrade(engine)
    engine.dispose()
    return url


def _truncate(url: str) -> None:
    engine = connect(url)
    tables = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def release_db_url(request, tmp_path) -> str:
    """An empty, migrated release database; every test using it runs on both backends."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'release.db'}"
        engine = connect(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("_postgres_release_db")
    _truncate(url)
    return url


@pytest.fixture
def repo(release_db_url) -> ReleaseRepository:
    repository = ReleaseRepository.from_url(release_db_url)
    yield repository
    repository.engine.dispose()


@pytest.fixture(scope="session")
def calendar() -> ReleaseCalendar:
    """A fixed calendar, independent of the demo config: releases every second
    Thursday from 2026-01-08 10:00 Amsterdam time."""
    return ReleaseCalendar(
        CalendarConfig(
            timezone="Europe/Amsterdam",
            anchor="2026-01-08",
            release_time="10:00",
            cadence_weeks=2,
            releases_per_cycle=2,
            delivery_offset_days=7,
            freeze_windows=[{"name": "Year-end freeze", "start": "2026-12-21", "end": "2027-01-04"}],
        )
    )


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    """One simulator process per test worker; tests reset it before use."""
    from simulator.process import SimulatorProcess

    with SimulatorProcess(tmp_path_factory.mktemp("simulator"), initial_version="2026.22") as process:
        yield process


@pytest.fixture
def sim(simulator):
    """The simulator's control client, reset to a clean state for this test."""
    client = simulator.client()
    client.reset()
    return client
