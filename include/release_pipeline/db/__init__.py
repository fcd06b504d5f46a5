"""Release database access: engines for a URL, migrations, and one repository module
per aggregate (the only code that issues SQL), joined by ``repository.ReleaseRepository``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

T = TypeVar("T")

# Several processes write the release DB at once (task runners, the triggerer, the
# portal in the api-server): SQLite needs WAL and a busy timeout to share it.
_SQLITE_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000")

# One PostgreSQL driver family, psycopg (v3), for both: it serves SQLAlchemy sync and asyncio,
# takes libpq's parameters from the URL's query (sslmode, sslrootcert, connect_timeout, ...) in
# both modes alike (asyncpg spells them differently), and is what Airflow and its postgres
# provider use themselves when it is installed. A URL naming another driver is moved to it.
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg_async"}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(
            f"release database URL {parsed.render_as_string(hide_password=True)!r}: "
            f"unsupported backend {backend!r} (use sqlite or postgresql)"
        )
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    return _with_driver(url, _SYNC_DRIVERS)


def async_url(url: str) -> str:
    """The same database through its asyncio driver (aiosqlite / psycopg's asyncio mode)."""
    return _with_driver(url, _ASYNC_DRIVERS)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


# The repository reads rowcount after INSERT ... ON CONFLICT DO NOTHING (was it new?).
# SQLAlchemy keeps an INSERT's rowcount only with this option; psycopg2 happened to report it
# anyway, psycopg (v3) reports -1 without it.
_EXECUTION_OPTIONS = {"preserve_rowcount": True}


def _with_execution_options(engine_kwargs: dict) -> dict:
    return {**engine_kwargs, "execution_options": {**_EXECUTION_OPTIONS, **engine_kwargs.get("execution_options", {})}}


def connect(url: str, **engine_kwargs) -> Engine:
    """An engine for the release database at ``url`` (any sqlite or postgresql URL)."""
    engine = create_engine(sync_url(url), **_with_execution_options(engine_kwargs))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def connect_async(url: str, **engine_kwargs):
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(async_url(url), **_with_execution_options(engine_kwargs))
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


async def read_once_more_if_dropped(read: Callable[[], Awaitable[T]], *, log: logging.Logger, reader: str) -> T:
    """``read()``, and once more when its pooled connection turned out dropped (a server
    restart, an idle timeout): SQLAlchemy discards such a connection, so the second read
    goes over a new one. What the triggerer's readers do instead of a pre-ping, which
    costs a round trip on every checkout. ``reader`` names who read, in ``log``."""
    from sqlalchemy.exc import DBAPIError

    try:
        return await read()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("%s: connection dropped (%s); reading on a new one", reader, exc)
        return await read()
