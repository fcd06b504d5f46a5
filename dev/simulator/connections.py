"""The Airflow connections that point the pipeline at the simulator.

A real deployment defines the same connection ids against the real vendor systems
and OEM instances; the DAGs do not change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy.engine import make_url

from release_pipeline.registry import Oem
from simulator.process import SimulatorEndpoints


def _http(url: str) -> dict:
    # HttpHook takes a host that holds a scheme as the whole base URL, path included.
    return {"conn_type": "http", "host": url}


def simulator_connections(sim: SimulatorEndpoints, oems: Iterable[Oem]) -> dict[str, dict]:
    base = sim.http_url
    connections = {
        "change_feed": _http(f"{base}/feed"),
        "qa_system": _http(f"{base}/qa"),
        "ava_production": _http(f"{base}/production"),
        "ava_docs_portal": _http(f"{base}/docs/ava"),
        "ava_notify": _http(f"{base}/notify/ava_release_managers"),
    }
    for oem in oems:
        connections[oem.connections.ssh] = {
            "conn_type": "ssh",
            "host": sim.ssh_host,
            "port": sim.ssh_port,
            "login": oem.id,
            "extra": {"key_file": sim.ssh_client_key_file, "host_key": sim.ssh_host_key},
        }
        connections[oem.connections.health] = _http(f"{base}/oems/{oem.id}")
        connections[oem.connections.docs] = _http(f"{base}/docs/{oem.id}")
        connections[oem.connections.notify] = _http(f"{base}/notify/{oem.id}")
        if oem.email is not None:  # the simulator's SMTP server: plain SMTP on 127.0.0.1, no login
            connections[oem.email.connection] = {
                "conn_type": "smtp",
                "host": sim.smtp_host,
                "port": sim.smtp_port,
                "extra": {"disable_ssl": True, "disable_tls": True},
            }
    return connections


def release_db_connection(url: str) -> dict:
    """The ``release_db`` Airflow connection for a SQLAlchemy URL (sqlite or postgresql)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"conn_type": "sqlite", "host": parsed.database}
    if backend == "postgresql":
        connection = {"conn_type": "postgres", "host": parsed.host or "127.0.0.1", "schema": parsed.database}
        if parsed.port:
            connection["port"] = parsed.port
        if parsed.username:
            connection["login"] = parsed.username
        if parsed.password:
            connection["password"] = parsed.password
        if parsed.query:  # sslmode and the like: the postgres connection's extras
            connection["extra"] = dict(parsed.query)
        return connection
    raise ValueError(f"release database URL {url!r}: only sqlite and postgresql are supported")


def as_environment(connections: dict[str, dict]) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` variables, the way every Airflow process reads them."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()}
