"""The release train's shared resources as Airflow sees them: config from ``config/``
and the release database behind the ``release_db`` connection."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from release_pipeline.config_loading import config_dir
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.registry import Registry, load_registry
from release_pipeline.release_calendar import ReleaseCalendar, load_calendar
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy

log = logging.getLogger(__name__)
RELEASE_DB_CONN_ID = "release_db"
_open_repositories: list[ReleaseRepository] = []


def url_from_connection(conn) -> str:
    """A SQLAlchemy URL for an Airflow ``sqlite`` or ``postgres`` connection.

    A postgres connection's URL is the postgres provider's own (``PostgresHook.sqlalchemy_url``:
    login, password, host, port, schema, the ``sqlalchemy_query`` extra, IAM tokens) plus the
    extras that the hook's ``get_conn`` hands to the driver (``sslmode``, ``sslrootcert``,
    ``connect_timeout``, ``options``, ...), so the release database is reached exactly as the
    hook would reach it."""
    if conn.conn_type == "sqlite":
        if not conn.host:
            raise ValueError(f"connection {conn.conn_id!r}: a sqlite connection needs the file path as host")
        return f"sqlite:///{conn.host}"
    if conn.conn_type in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        hook = PostgresHook(connection=conn)
        url = hook.sqlalchemy_url
        driver_parameters = {
            name: _driver_parameter(value)
            for name, value in conn.extra_dejson.items()
            if name not in hook.ignored_extra_options
        }
        return url.update_query_dict(driver_parameters).render_as_string(hide_password=False)
    raise ValueError(
        f"connection {conn.conn_id!r} has type {conn.conn_type!r}: the release database must be sqlite or postgres"
    )


def _driver_parameter(value) -> str:
    """An extra's value as libpq reads it in a URL (``"keepalives": true`` is ``1``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return value if isinstance(value, str) else json.dumps(value)


def release_db_url(conn_id: str = RELEASE_DB_CONN_ID) -> str:
    from airflow.sdk import BaseHook

    return url_from_connection(BaseHook.get_connection(conn_id))


@lru_cache(maxsize=4)
def _repository_for(url: str) -> ReleaseRepository:
    repo = ReleaseRepository.from_url(url)
    _open_repositories.append(repo)
    return repo


def repository(conn_id: str = RELEASE_DB_CONN_ID) -> ReleaseRepository:
    """One repository (and connection pool) per database per process."""
    return _repository_for(release_db_url(conn_id))


def portal_repository(conn_id: str = RELEASE_DB_CONN_ID) -> ReleaseRepository:
    """The release database as the OEM portal reaches it inside the api-server, which
    is no task: the task SDK's lookup is tried first, then the server-side one."""
    return _repository_for(_server_release_db_url(conn_id))


@lru_cache(maxsize=4)
def _server_release_db_url(conn_id: str) -> str:
    try:
        return release_db_url(conn_id)
    except Exception as exc:
        from airflow.models.connection import Connection

        log.info("task SDK connection lookup unavailable here (%s); using the server-side lookup", exc)
        return url_from_connection(Connection.get_connection_from_secrets(conn_id))


def calendar() -> ReleaseCalendar:
    return load_calendar()


def registry() -> Registry:
    return load_registry()


_registry_seen: dict[str, tuple[tuple, Registry]] = {}


def oems_config_stamp() -> tuple[int, int, int]:
    """What changes when ``config/oems.yaml`` does (its OEMs' sign-off policies with it)."""
    stat = (config_dir() / "oems.yaml").stat()
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def signoff_policy(oem_id: str) -> SignoffPolicy:
    """The OEM's sign-off policy as ``config/oems.yaml`` says now (re-read when the file
    changes), for the approval gate's trigger: a policy edited while a gate waits is
    applied at its next poll. An OEM the registry does not know has no DAG (the run's
    next task fails on it): its gate reads the default policy. An OEM whose entry is
    invalid raises, so its gate waits (polling through it as an outage) rather than
    judge its sign-off by a policy it does not have."""
    path = config_dir() / "oems.yaml"
    key = oems_config_stamp()
    seen = _registry_seen.get(str(path))
    if seen is None or seen[0] != key:
        seen = (key, load_registry(path))
        _registry_seen[str(path)] = seen
    registry = seen[1]
    if oem_id not in registry.oems and not any(e.entity == f"OEM '{oem_id}'" for e in registry.errors):
        return DEFAULT_POLICY
    return registry.get(oem_id).signoff_policy


def reset_caches() -> None:
    """Forget pooled engines, e.g. when tests point ``release_db`` elsewhere."""
    while _open_repositories:
        _open_repositories.pop().engine.dispose()
    _repository_for.cache_clear()
    _server_release_db_url.cache_clear()
    _registry_seen.clear()
