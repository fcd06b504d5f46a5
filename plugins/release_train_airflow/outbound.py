"""Everything the release train sends out over HTTP: notifications, documentation pages
and the per-OEM docs strategy. Each send is keyed in the release DB's idempotency
ledger first, so a retried or rerun task never sends twice."""

from __future__ import annotations

from typing import Any

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.idempotency import perform_once
from release_pipeline.notes import Audience, Rendered, render
from release_pipeline.registry import Oem
from release_pipeline.vendor import load_vendor

HTTP_TIMEOUT = {"timeout": 30}


def _http(method: str, conn_id: str):
    from airflow.providers.http.hooks.http import HttpHook

    return HttpHook(method=method, http_conn_id=conn_id)


def send_message(repo: ReleaseRepository, conn_id: str, message: dict[str, Any], *, key: str) -> bool:
    """POST ``message`` to a notification connection; False when it was sent before."""

    def post(idempotency_key: str) -> dict:
        response = _http("POST", conn_id).run(
            "", json=message, headers={"Idempotency-Key": idempotency_key}, extra_options=HTTP_TIMEOUT
        )
        return {"status": response.status_code, "conn_id": conn_id}

    performed, _ = perform_once(repo, key, "notification", post)
    return performed


def publish_page(repo: ReleaseRepository, conn_id: str, page_key: str, notes: Rendered, *, key: str) -> str:
    """PUT a page on a documentation portal; returns where it lives."""

    def put(idempotency_key: str) -> dict:
        response = _http("PUT", conn_id).run(
            f"pages/{page_key}",
            json={"title": notes.subject, "markdown": notes.markdown, "html": notes.html},
            headers={"Idempotency-Key": idempotency_key},
            extra_options=HTTP_TIMEOUT,
        )
        return {"url": response.json().get("url", page_key), "conn_id": conn_id}

    _, result = perform_once(repo, key, "docs_publication", put)
    return (result or {}).get("url", page_key)


def apply_docs_strategy(
    repo: ReleaseRepository, oem: Oem, notes: Rendered, *, kind: str, scope_key: str, page_key: str
) -> str:
    """``ava``: publish the OEM's white-labelled page on its portal; ``oem``: send the OEM
    the notes package and record that publishing is theirs. The outcome is recorded
    either way, a failure too (then re-raised for Airflow to retry)."""
    channel = "oem_portal" if oem.docs_strategy == "ava" else "oem_package"
    key = f"{kind}:{scope_key}:{oem.id}:{channel}"
    try:
        if oem.docs_strategy == "ava":
            location = publish_page(repo, oem.connections.docs, page_key, notes, key=key)
            status, detail = "published", None
        else:
            send_message(
                repo, oem.connections.notify, notes.as_message(kind="notes_package", page_key=page_key), key=key
            )
            location, status, detail = None, "delegated", "the OEM publishes its portal from the package sent"
    except Exception as exc:
        repo.record_publication(
            kind=kind,
            scope_key=scope_key,
            audience=oem.id,
            channel=channel,
            status="failed",
            detail=f"{type(exc).__name__}: {exc}"[:2000],
        )
        raise
    repo.record_publication(
        kind=kind,
        scope_key=scope_key,
        audience=oem.id,
        channel=channel,
        status=status,
        location=location,
        detail=detail,
    )
    return status


def alert_vendor(subject: str, lines: list[str], *, key: str) -> None:
    """Tell the vendor's release managers (connection ``ava_notify``), once per key."""
    from release_train_airflow.resources import repository

    message = render("vendor_alert", Audience.vendor(load_vendor()), subject, lines=lines, link=None)
    send_message(repository(), "ava_notify", message.as_message(kind="alert"), key=f"alert:{key}")
