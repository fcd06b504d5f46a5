"""Held sends: what the white-label guard stopped, and releasing one once it is fixed.

A send is held whole (a message whose HTML alone leaks sends nothing at all; a docs
page is not published). Staff fix the cause, then either re-run the task (it renders
again from the current change texts and config, and sends once the guard passes), or
``release-train held release ID``: the stored text gets the current text of the changes
it came from (``release-train change edit``) and passes the *current* white-label step
(a new glossary entry, a new ``acceptance_url``) and the guard again, and is sent once
it is clean, under the send's own idempotency key so no re-run sends it twice.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import escape

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.idempotency import perform_once
from release_pipeline.notes.whitelabel import Guard, Leak, Whitelabel
from release_pipeline.registry import Oem, Registry
from release_pipeline.vendor import VendorConfig

# fields that name things rather than say them: never rewritten as text (a release id stays
# one); an id carrying the vendor's name is shown by its OEM-neutral id
KEEP_AS_IS = ("_key", "kind")


def relabel(value: Any, label: Whitelabel, key: str = "") -> Any:
    """``value`` with every string passed through ``label``, except identifiers."""
    if isinstance(value, str):
        if key.endswith("id"):
            return label.neutral_id(value)
        return value if key.endswith(KEEP_AS_IS) else label.apply(value)
    if isinstance(value, dict):
        return {k: relabel(v, label, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relabel(v, label, key) for v in value]
    return value


def describe_leaks(leaks: list[Leak] | list[dict]) -> list[str]:
    lines = []
    for leak in leaks:
        leak = leak.as_dict() if isinstance(leak, Leak) else leak
        lines.append(f"{leak['field'] or 'text'}: {leak['owner']} {leak['term']!r} in “{leak['passage']}”")
    return lines


@dataclass(frozen=True)
class Recheck:
    payload: dict
    leaks: list[Leak]


def _replace_everywhere(value: Any, pairs: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in pairs:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _replace_everywhere(v, pairs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_everywhere(v, pairs) for v in value]
    return value


def change_fixes(row, repo: ReleaseRepository, label: Whitelabel) -> list[tuple[str, str]]:
    """(old, new) text pairs for the changes behind a held send whose text was corrected
    since it was held, in every form a rendered text holds them (as written, white-labelled,
    HTML-escaped)."""
    sources = row.sources or {}
    current = repo.changes_by_id(sources)
    pairs = []
    for change_id, then in sources.items():
        now = current.get(change_id)
        for name, old in then.items():
            new = getattr(now, name, old) if now else old
            if not old or new == old:
                continue
            for shape in (lambda s: s, label.apply, lambda s: str(escape(s)), lambda s: str(escape(label.apply(s)))):
                if shape(old) != shape(new):
                    pairs.append((shape(old), shape(new)))
    return sorted(dict.fromkeys(pairs), key=lambda pair: len(pair[0]), reverse=True)


def recheck(row, oem: Oem, registry: Registry, vendor: VendorConfig, repo: ReleaseRepository | None = None) -> Recheck:
    """The held payload with the current change texts and the current white-label step
    applied, and what the current guard still finds in it."""
    label = Whitelabel.for_oem(vendor, oem)
    payload = row.payload
    if repo is not None:
        payload = _replace_everywhere(payload, change_fixes(row, repo, label))
    payload = relabel(payload, label)
    return Recheck(payload, Guard.for_oem(oem, registry, vendor).scan_value(payload))


class StillLeaks(Exception):
    def __init__(self, held_id: int, leaks: list[Leak]):
        self.held_id, self.leaks = held_id, leaks
        super().__init__(f"held send #{held_id} still leaks:\n  " + "\n  ".join(describe_leaks(leaks)))


Sender = Callable[[str, str, str, dict, str], dict]  # (method, conn_id, endpoint, payload, idempotency key)


def release(
    repo: ReleaseRepository,
    held_id: int,
    *,
    by: str,
    registry: Registry,
    vendor: VendorConfig,
    send: Sender,
) -> str:
    """Re-check held send ``held_id`` and send it once clean; returns what happened."""
    row = repo.held_send(held_id)
    if row is None:
        raise LookupError(f"no held send #{held_id} (see `release-train held list`)")
    if row.status != "held":
        return f"held send #{held_id} was already released ({row.detail})"
    oem = registry.get(row.oem_id)
    checked = recheck(row, oem, registry, vendor, repo)
    if checked.leaks:
        raise StillLeaks(held_id, checked.leaks)
    kind = {"docs_page": "docs_publication", "email": "email"}.get(row.channel, "notification")
    performed, _ = perform_once(
        repo,
        row.key,
        kind,
        lambda key: send(row.method, row.conn_id, row.endpoint, checked.payload, key),
    )
    detail = f"released by {by}" + ("" if performed else " (it had been sent by a re-run meanwhile)")
    repo.release_held_send(held_id, by=by, detail=detail, payload=checked.payload)
    repo.update_publications_of_held(held_id, status="sent", detail=f"{detail} (was held send #{held_id})")
    return f"held send #{held_id} to {row.oem_id} {'sent' if performed else 'was already sent'}: {detail}"


# -- sending from the CLI: the Airflow connection, read the way Airflow reads it ----------------
def connection(conn_id: str, connections_file: Path | None = None) -> dict:
    """An Airflow HTTP connection from ``AIRFLOW_CONN_<ID>`` (JSON or URI, as ``make up``'s
    ``.airflow/env.sh`` sets them) or from a connections JSON file (the production
    shape's ``deploy/secrets/connections.json``)."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw is not None:
        raw = raw.strip()
        if raw.startswith("{"):
            return json.loads(raw)
        return {"conn_type": "http", "host": raw}
    if connections_file is not None:
        conns = json.loads(connections_file.read_text())
        if conn_id in conns:
            return conns[conn_id]
    where = f"set AIRFLOW_CONN_{conn_id.upper()} (`source .airflow/env.sh`)"
    raise LookupError(f"connection {conn_id!r} not found: {where} or pass --connections-file")


def base_url(conn: dict) -> str:
    host = conn.get("host") or ""
    if "://" in host:
        return host
    scheme = conn.get("schema") or "http"
    return f"{scheme}://{host}" + (f":{conn['port']}" if conn.get("port") else "")


def http_sender(connections_file: Path | None = None, timeout: float = 30) -> Sender:
    def send(method: str, conn_id: str, endpoint: str, payload: dict, key: str) -> dict:
        conn = connection(conn_id, connections_file)
        url = base_url(conn)
        if endpoint:
            url = url.rstrip("/") + "/" + endpoint.lstrip("/")
        extra = conn.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra.strip() else {}
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            **{k: str(v) for k, v in extra.items() if isinstance(v, str | int)},
        }
        if conn.get("login"):
            secret = f"{conn['login']}:{conn.get('password') or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
        request = urllib.request.Request(url, json.dumps(payload).encode(), headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return {"status": answer.status, "conn_id": conn_id, "released": True}

    return send
