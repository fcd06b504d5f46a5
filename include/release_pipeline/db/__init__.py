"""Release database access: engines for a URL, migrations, and the repository (the
only code that issues SQL)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

# Several processes write the release DB at once (task runners, the triggerer, the
# portal in the api-server): SQLite needs WAL and a busy timeout to share it.
_SQLITE_PRAGMAS = ("PRAGMA foreign_keys=ON", "PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=30000")

_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


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
    """The same database through its asyncio driver (aiosqlite / asyncpg)."""
    return _with_driver(url, _ASYNC_DRIVERS)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def connect(url: str, **engine_kwargs) -> Engine:
    """An engine for the release database at ``url`` (any sqlite or postgresql URL)."""
    engine = create_engine(sync_url(url), **engine_kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def connect_async(url: str, **engine_kwargs):
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(async_url(url), **engine_kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine
