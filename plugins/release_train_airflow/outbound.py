"""Everything the release train sends out: notifications (over HTTP, by e-mail to an OEM
with ``email`` in config/oems.yaml, to Slack for staff when config/vendor.yaml says so;
see docs/channels.md), documentation pages and the per-OEM docs strategy. Each send is
keyed in the release DB's idempotency ledger first, so a retried or rerun task never sends
twice.

Every send to an OEM's connection passes the white-label guard here, whoever calls:
the recipient is the OEM whose ``notify``/``docs`` connection it is (or the OEM e-mailed),
and the whole payload (subject, Markdown, HTML, every string in it, an e-mail's headers) is
checked for the vendor's names and hosts and for every other OEM's. A hit holds the send whole: nothing goes out, the
send is recorded in ``held_sends`` with the passages that leaked, vendor staff are
alerted once, and :class:`SendHeld` fails the task (no retry: a retry would leak the
same). ``release-train held release ID`` sends it once fixed; so does a re-run of the
task whose fresh render passes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.errors import error_detail
from release_pipeline.held import describe_leaks
from release_pipeline.idempotency import perform_once
from release_pipeline.models import SideEffectStatus
from release_pipeline.notes import Audience, Guard, Rendered, render
from release_pipeline.registry import Oem, Registry
from release_pipeline.vendor import load_vendor

log = logging.getLogger(__name__)
HTTP_TIMEOUT = {"timeout": 30}
# the vendor's own channels: what goes there is for vendor staff, nothing to guard
VENDOR_CONNECTIONS = frozenset({"ava_notify", "ava_docs_portal"})
SENT, FAILED = "sent", "failed"  # a publication's status when recorded_publication() reports it


class SendHeld(AirflowFailException):
    """The guard held a send to an OEM; nothing of it went out."""

    def __init__(self, held_id: int, oem_id: str, leaks: list[str]):
        self.held_id = held_id
        super().__init__(
            f"held send #{held_id} to OEM {oem_id}: nothing was sent; it leaks "
            + "; ".join(leaks)
            + f" (fix the glossary or the text, then `release-train held release {held_id}`)"
        )


def _registry() -> Registry:
    from release_train_airflow.resources import registry

    return registry()


def recipient(conn_id: str, registry: Registry | None = None) -> Oem | None:
    """The OEM a connection reaches (None: one of the vendor's own). A connection that is
    neither is refused: nothing leaves unchecked."""
    if conn_id in VENDOR_CONNECTIONS:
        return None
    registry = registry or _registry()
    for oem in registry.oems.values():
        if conn_id in (oem.connections.notify, oem.connections.docs):
            return oem
    raise AirflowFailException(
        f"connection {conn_id!r} belongs to no OEM of config/oems.yaml and is not the vendor's "
        f"({', '.join(sorted(VENDOR_CONNECTIONS))}): nothing is sent unchecked"
    )


def _sent_before(repo: ReleaseRepository, key: str) -> bool:
    row = repo.side_effect(key)
    return row is not None and row.status == SideEffectStatus.DONE


def guard_send(
    repo: ReleaseRepository,
    conn_id: str,
    payload: dict[str, Any],
    *,
    key: str,
    channel: str,
    method: str,
    endpoint: str,
    oem: Oem | None = None,
) -> Oem | None:
    """Hold the send (and raise :class:`SendHeld`) if ``payload`` leaks; returns the OEM.
    The recipient is ``oem`` when given (an e-mail: its SMTP connection may be shared by
    several OEMs), else the OEM whose connection ``conn_id`` is."""
    registry = _registry()
    oem = oem or recipient(conn_id, registry)
    if oem is None:
        return None
    leaks = Guard.for_oem(oem, registry, load_vendor()).scan_value(payload)
    if not leaks:
        return oem
    held_id, first = repo.hold_send(
        key=key,
        oem_id=oem.id,
        channel=channel,
        conn_id=conn_id,
        method=method,
        endpoint=endpoint,
        payload=payload,
        leaks=[leak.as_dict() for leak in leaks],
        sources=_sources(repo, leaks),
    )
    lines = describe_leaks(leaks)
    if first:
        try:
            alert_vendor(
                f"Held: a {channel.replace('_', ' ')} to OEM {oem.id} leaks (held send #{held_id})",
                [
                    f"Nothing was sent (key {key}).",
                    *lines,
                    "Fix the OEM's glossary (config/oems.yaml) or the text, then "
                    f"`release-train held release {held_id}`, or re-run the task.",
                ],
                key=f"held:{key}:{held_id}",
                repo=repo,
            )
        except Exception:  # the hold stands whether or not the alert got through
            log.exception("held send #%s: alerting the vendor failed", held_id)
    raise SendHeld(held_id, oem.id, lines)


def _sources(repo: ReleaseRepository, leaks) -> dict:
    """The changes whose text holds a leaked passage, as they read now: a fix of their
    text is applied when the send is released (``release-train change edit``)."""
    try:
        changes = repo.changes_mentioning(leak.found for leak in leaks)
    except Exception:  # the hold stands without them
        log.exception("could not look up the changes behind a held send")
        return {}
    return {c.id: {"title": c.title, "description": c.description, "component": c.component} for c in changes}


def _close_hold(repo: ReleaseRepository, key: str) -> None:
    """A re-run whose fresh render passed sent what was held: the hold is over."""
    held = repo.held_send(key=key)
    if held is not None and held.status == "held":
        repo.release_held_send(held.id, by="re-run", detail="sent by a re-run of its task once it passed the guard")


def _http(method: str, conn_id: str):
    from airflow.providers.http.hooks.http import HttpHook

    return HttpHook(method=method, http_conn_id=conn_id)


def send_message(repo: ReleaseRepository, conn_id: str, message: dict[str, Any], *, key: str) -> bool:
    """Send ``message`` on a notification connection; False when it was sent before.
    An OEM's ``notify`` connection is its HTTP sink, or e-mail when the OEM has ``email``
    configured; the vendor's ``ava_notify`` is its HTTP sink or Slack (``staff_chat``).
    A message for an OEM that leaks is held whole (:class:`SendHeld`)."""
    if _sent_before(repo, key):
        return False
    if conn_id in VENDOR_CONNECTIONS:
        chat = load_vendor().staff_chat
        if chat.kind == "slack":
            from release_train_airflow.chat import post_to_slack

            performed, _ = perform_once(repo, key, "notification", lambda _key: post_to_slack(conn_id, message, chat))
            return performed
    else:
        oem = recipient(conn_id)
        if oem is not None and oem.email is not None and conn_id == oem.connections.notify:
            return _send_email(repo, oem, message, key=key)
    oem = guard_send(repo, conn_id, message, key=key, channel="notification", method="POST", endpoint="")

    def post(idempotency_key: str) -> dict:
        response = _http("POST", conn_id).run(
            "", json=message, headers={"Idempotency-Key": idempotency_key}, extra_options=HTTP_TIMEOUT
        )
        return {"status": response.status_code, "conn_id": conn_id}

    performed, _ = perform_once(repo, key, "notification", post)
    if oem is not None:
        _close_hold(repo, key)
    return performed


def _send_email(repo: ReleaseRepository, oem: Oem, message: dict[str, Any], *, key: str) -> bool:
    from release_train_airflow.mail import send_email

    def guard(payload: dict[str, Any], conn_id: str, mailbox: str) -> None:
        guard_send(repo, conn_id, payload, key=key, channel="email", method="SMTP", endpoint=mailbox, oem=oem)

    performed = send_email(repo, oem, message, key=key, guard=guard)
    _close_hold(repo, key)
    return performed


def publish_page(repo: ReleaseRepository, conn_id: str, page_key: str, notes: Rendered, *, key: str) -> str:
    """PUT a page on a documentation portal; returns where it lives. A page for an OEM
    that leaks is not published (:class:`SendHeld`)."""
    page = {"title": notes.subject, "markdown": notes.markdown, "html": notes.html}
    oem = None
    if not _sent_before(repo, key):
        oem = guard_send(repo, conn_id, page, key=key, channel="docs_page", method="PUT", endpoint=f"pages/{page_key}")

    def put(idempotency_key: str) -> dict:
        response = _http("PUT", conn_id).run(
            f"pages/{page_key}",
            json=page,
            headers={"Idempotency-Key": idempotency_key},
            extra_options=HTTP_TIMEOUT,
        )
        return {"url": response.json().get("url", page_key), "conn_id": conn_id}

    _, result = perform_once(repo, key, "docs_publication", put)
    if oem is not None:
        _close_hold(repo, key)
    return (result or {}).get("url", page_key)


def apply_docs_strategy(
    repo: ReleaseRepository, oem: Oem, notes: Rendered, *, kind: str, scope_key: str, page_key: str
) -> str:
    """``ava``: publish the OEM's white-labelled page on its portal; ``oem``: send the OEM
    the notes package and record that publishing is theirs. The outcome is recorded
    either way, a failure too (then re-raised for Airflow to retry)."""
    channel = "oem_portal" if oem.docs_strategy == "ava" else "oem_package"
    key = f"{kind}:{scope_key}:{oem.id}:{channel}"

    def apply() -> dict[str, Any]:
        if oem.docs_strategy == "ava":
            return {
                "status": "published",
                "location": publish_page(repo, oem.connections.docs, page_key, notes, key=key),
            }
        # release_id: the release the notes are for (an e-mailed package joins its release's thread)
        package = notes.as_message(kind="notes_package", page_key=page_key, release_id=scope_key)
        send_message(repo, oem.connections.notify, package, key=key)
        return {"status": "delegated", "detail": "the OEM publishes its portal from the package sent"}

    return recorded_publication(repo, apply, kind=kind, scope_key=scope_key, audience=oem.id, channel=channel)


def recorded_publication(
    repo: ReleaseRepository,
    attempt: Callable[[], dict[str, Any] | None],
    *,
    kind: str,
    scope_key: str,
    audience: str,
    channel: str,
) -> str:
    """Run ``attempt`` and record its outcome as a publication, so reports read what
    happened from the release database, not from task states: what ``attempt`` returns
    (``status``, optionally ``location`` and ``detail``; None is ``sent``), or ``failed``
    with the error, which is re-raised for Airflow to retry. Returns the status."""
    publication = {"kind": kind, "scope_key": scope_key, "audience": audience, "channel": channel}
    try:
        outcome = attempt() or {"status": SENT}
    except Exception as exc:
        repo.record_publication(**publication, status=FAILED, detail=error_detail(exc))
        raise
    repo.record_publication(**publication, **outcome)
    return outcome["status"]


def alert_vendor(subject: str, lines: list[str], *, key: str, repo: ReleaseRepository | None = None) -> None:
    """Tell the vendor's release managers (connection ``ava_notify``), once per key."""
    if repo is None:
        from release_train_airflow.resources import repository

        repo = repository()
    message = render("vendor_alert", Audience.vendor(load_vendor()), subject, lines=lines, link=None)
    send_message(repo, "ava_notify", message.as_message(kind="alert"), key=f"alert:{key}")
