"""The release database as the ``release_db`` Airflow connection names it: the URL is the postgres
provider's (PostgresHook) with the connection's driver extras, so ``sslmode`` and the like reach
the real server, through the sync and the asyncio engine alike (one driver family, psycopg)."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.models.connection import Connection
from sqlalchemy import text
from sqlalchemy.engine import make_url

from release_pipeline.db import async_url, connect, connect_async, sync_url
from release_train_airflow.resources import url_from_connection
from simulator.connections import release_db_connection
from tests.conftest import pg_admin_url


def postgres_connection(**extra) -> Connection:
    server = make_url(pg_admin_url())
    return Connection(
        conn_id="release_db",
        conn_type="postgres",
        host=server.host,
        port=server.port,
        login=server.username,
        password=server.password,
        schema=server.database,
        extra=json.dumps(extra),
    )


def server_settings(url: str) -> tuple[str, str]:
    engine = connect(url)
    try:
        with engine.connect() as db:
            row = db.execute(text("select current_setting('application_name'), current_setting('statement_timeout')"))
            return tuple(row.one())
    finally:
        engine.dispose()


def test_the_extras_reach_the_server_through_the_sync_engine():
    conn = postgres_connection(sslmode="disable", application_name="rt-release-db", options="-c statement_timeout=4321")
    url = url_from_connection(conn)
    query = make_url(url).query
    assert query["sslmode"] == "disable"
    assert server_settings(url) == ("rt-release-db", "4321ms")


def test_the_extras_reach_the_server_through_the_asyncio_engine():
    url = url_from_connection(postgres_connection(sslmode="disable", application_name="rt-gate"))

    async def name() -> str:
        engine = connect_async(url)
        try:
            async with engine.connect() as db:
                return (await db.execute(text("select current_setting('application_name')"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(name()) == "rt-gate"


def test_sslmode_require_is_enforced_not_dropped():
    # the local test server runs without TLS: a URL that kept sslmode=require must be refused
    url = url_from_connection(postgres_connection(sslmode="require", connect_timeout=5))
    assert make_url(url).query["connect_timeout"] == "5"
    engine = connect(url)
    try:
        with pytest.raises(Exception, match="(?i)ssl"):
            engine.connect().close()
    finally:
        engine.dispose()


def test_one_driver_family_for_sync_and_asyncio():
    url = url_from_connection(postgres_connection(sslmode="verify-full", sslrootcert="/etc/ssl/ca.pem"))
    assert make_url(sync_url(url)).drivername == "postgresql+psycopg"
    assert make_url(async_url(url)).drivername == "postgresql+psycopg_async"
    assert make_url(async_url(url)).query == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/ca.pem"}
    # a URL that names another driver is moved to psycopg
    assert make_url(sync_url("postgresql+psycopg2://u@h/db")).drivername == "postgresql+psycopg"


def test_hook_options_are_not_sent_to_the_server_and_credentials_survive_quoting():
    conn = Connection(
        conn_id="release_db",
        conn_type="postgres",
        host="db.example",
        port=6432,
        login="release train",
        password="p@ss:/word?",
        schema="release_train",
        extra=json.dumps({"sslmode": "require", "cursor": "dictcursor", "sqlalchemy_scheme": "postgresql+psycopg2"}),
    )
    url = make_url(url_from_connection(conn))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "release train",
        "p@ss:/word?",
        "db.example",
        6432,
        "release_train",
    )
    assert dict(url.query) == {"sslmode": "require"}  # cursor/sqlalchemy_scheme are the hook's own


def test_a_devstack_url_with_sslmode_round_trips_through_the_connection():
    connection = release_db_connection("postgresql://rt:secret@127.0.0.1:5432/release?sslmode=prefer")
    assert connection["extra"] == {"sslmode": "prefer"}
    conn = Connection(conn_id="release_db", **{**connection, "extra": json.dumps(connection["extra"])})
    assert make_url(url_from_connection(conn)).query == {"sslmode": "prefer"}


def test_sqlite_connections_are_unchanged(tmp_path):
    conn = Connection(conn_id="release_db", conn_type="sqlite", host=str(tmp_path / "release.db"))
    assert url_from_connection(conn) == f"sqlite:///{tmp_path / 'release.db'}"
