"""Operational checks an operator runs from the Airflow UI (release_train_config_check)."""

from __future__ import annotations

from release_pipeline.registry import Oem, Registry, ssh_host_key_problem
from release_pipeline.vendor import ChangeSource, load_vendor

CORE_CONNECTIONS = ("release_db", "qa_system", "ava_production", "ava_docs_portal", "ava_notify")


def change_source_connection(source: ChangeSource) -> str | None:
    """The connection the configured change source reads through (docs/change-sources.md)."""
    return "change_feed" if source.kind == "http" else source.connection


def missing_connections(registry: Registry, source: ChangeSource | None = None) -> list[str]:
    """Every connection id the pipeline needs that Airflow cannot find, with who needs it
    (``source``: the change source, config/vendor.yaml's by default)."""
    needed = dict.fromkeys(CORE_CONNECTIONS, "the release train")
    source = source if source is not None else load_vendor().change_source
    if conn_id := change_source_connection(source):
        needed[conn_id] = f"the change source ({source.kind})"
    for oem in registry.enabled:
        for conn_id, user in oem_connections(oem).items():
            needed.setdefault(conn_id, user)
    return find_missing(needed)


def oem_connections(oem: Oem) -> dict[str, str]:
    """The OEM's connection ids, each with who needs it (its SMTP server when it is e-mailed)."""
    needed = {conn_id: f"OEM {oem.id!r} ({purpose})" for purpose, conn_id in oem.connections.model_dump().items()}
    if oem.email is not None:
        needed.setdefault(oem.email.connection, f"OEM {oem.id!r} (email)")
    return needed


def find_missing(needed: dict[str, str]) -> list[str]:
    """``needed``: connection id -> who needs it; returns the ones Airflow cannot find."""
    from airflow.sdk import BaseHook

    missing = []
    for conn_id, user in needed.items():
        try:
            BaseHook.get_connection(conn_id)
        except Exception:  # the SDK raises AirflowNotFoundException; anything else is as bad
            missing.append(f"{conn_id} (needed by {user})")
    return missing


def unpinned_ssh_connections(registry: Registry) -> list[str]:
    """Every enabled OEM whose SSH connection does not pin the instance's host key, named
    with OEM and connection. Missing connections are left to :func:`missing_connections`."""
    from airflow.sdk import BaseHook

    problems = []
    for oem in registry.enabled:
        try:
            conn = BaseHook.get_connection(oem.connections.ssh)
        except Exception:  # reported as missing by check_connections
            continue
        if problem := ssh_host_key_problem(oem, conn.extra_dejson):
            problems.append(problem)
    return problems


def release_db_revision() -> str:
    """The release DB's schema revision; fails when it is behind the code."""
    from alembic.script import ScriptDirectory

    from release_pipeline.db.migrate import alembic_config, current_revision
    from release_train_airflow.resources import repository

    engine = repository().engine
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    current = current_revision(engine)
    if current != head:
        raise ValueError(
            f"release database is at revision {current}, the code needs {head}: run `release-train db-upgrade`"
        )
    return current
