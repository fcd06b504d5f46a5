"""Sending a released held e-mail from the CLI (``release-train held release``), which runs
outside Airflow: the OEM's SMTP connection read from ``AIRFLOW_CONN_<ID>`` or the
connections file the way :func:`release_pipeline.held.connection` reads an HTTP one, and
the connection's extras read as the Airflow SMTP provider reads them (``disable_ssl``,
``disable_tls``, ``timeout``; login and password when set)."""

from __future__ import annotations

import json
import smtplib
import ssl
from pathlib import Path

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.db.store import utc_now
from release_pipeline.held import Sender, connection
from release_pipeline.mail import (
    KIND,
    accepted_before,
    build_email,
    email_from_held,
    message_id,
    recipients_of,
    sendmail_checked,
    sent_record,
    thread_of,
)
from release_pipeline.mail_address import bare_address

_TRUE = ("true", "1", "yes")


def _flag(extra: dict, name: str) -> bool:
    return str(extra.get(name, False)).lower() in _TRUE


def smtp_client(conn: dict) -> smtplib.SMTP:
    extra = conn.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra.strip() else {}
    timeout = int(extra.get("timeout", 30))
    host, port = conn.get("host") or "localhost", int(conn.get("port") or 0)
    if not _flag(extra, "disable_ssl"):
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
        if not _flag(extra, "disable_tls"):
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
    if conn.get("login") and conn.get("password"):
        client.login(conn["login"], conn["password"])
    return client


def smtp_sender(repo: ReleaseRepository, connections_file: Path | None, otherwise: Sender) -> Sender:
    """A held-send sender that e-mails holds of method ``SMTP`` (their endpoint is the OEM)
    and hands every other to ``otherwise`` (the HTTP sender)."""

    def send(method: str, conn_id: str, endpoint: str, payload: dict, key: str) -> dict:
        if method != "SMTP":
            return otherwise(method, conn_id, endpoint, payload, key)
        message = {k: v for k, v in payload.items() if k != "headers"}
        thread = thread_of(message, key)
        own = message_id(key, payload["headers"]["Message-ID domain"])
        earlier = [m for m in repo.sent_in_thread(KIND, endpoint, thread) if m != own]
        headers = email_from_held(payload, key=key, earlier=earlier)
        mail = build_email(headers, message, date=utc_now())
        to = recipients_of(headers)
        already = accepted_before(repo.side_effect(key))  # a release that was partly refused before
        with smtp_client(connection(conn_id, connections_file)) as client:
            sendmail_checked(client, mail, bare_address(headers["From"]), to, f"OEM {endpoint}", already)
        return sent_record(endpoint, thread, headers["Message-ID"], conn_id, to)

    return send
