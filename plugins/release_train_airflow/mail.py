"""E-mail to an OEM through the Airflow SMTP provider (the OEM's ``email`` in
config/oems.yaml; the server and its credentials in the Airflow connection
``email.connection``, default ``oem_<id>_smtp``).

Called by :func:`release_train_airflow.outbound.send_message` for an OEM that has
e-mail configured: the guard (headers included) runs first, then the message is sent once
per idempotency key. A recipient the server refuses fails the send
(:class:`RecipientsRefused`): recorded in the ledger as failed, with who took it and who
did not, and raised for Airflow to retry, never dropped. The retry sends the same message
(same ``Message-ID``) to the recipients that do not have it yet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook
from airflow.sdk.exceptions import AirflowException

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.db.store import utc_now
from release_pipeline.idempotency import perform_once
from release_pipeline.mail import (
    KIND,
    RecipientsRefused,
    accepted_before,
    build_email,
    email_headers,
    guarded_payload,
    message_id,
    recipients,
    sendmail_checked,
    sent_record,
    thread_of,
)
from release_pipeline.mail_address import bare_address
from release_pipeline.registry import Oem

log = logging.getLogger(__name__)


class MimeSmtpHook(SmtpHook):
    """The provider's hook (connection, TLS, login, connect retries as it does them), sending
    a message built here. Works around three things ``SmtpHook.send_email_smtp`` does
    (apache-airflow-providers-smtp 3.2.0): it builds a ``MIMEMultipart`` holding one
    ``text/html`` part whatever ``mime_subtype`` says (no text + HTML alternative); its
    ``custom_headers`` are added beside its own (a ``Date`` passed gives two); and it drops
    what ``sendmail`` returns, the recipients the server refused while accepting others."""

    def send_mime(self, mail: EmailMessage, sender: str, to: list[str], who: str, had: list[str]) -> None:
        """Send ``mail`` to ``to`` but ``had`` (an earlier attempt reached them);
        :class:`RecipientsRefused` unless every one took it."""
        if self._smtp_client is None:
            raise AirflowException(f"SMTP connection {self.smtp_conn_id!r} is not open: use the hook in a with block")
        sendmail_checked(self._smtp_client, mail, sender, to, who, had)


def send_email(repo: ReleaseRepository, oem: Oem, message: Mapping[str, Any], *, key: str, guard) -> bool:
    """E-mail ``message`` (subject, markdown, html) to ``oem`` once per ``key``; False when
    it was sent before. ``guard(payload, conn_id, oem_id)`` holds a leaking send (raises)."""
    assert oem.email is not None
    conn_id = oem.email.connection
    thread = thread_of(message, key)
    own_id = message_id(key, oem.email.domain)
    earlier = [m for m in repo.sent_in_thread(KIND, oem.id, thread) if m != own_id]
    headers = email_headers(oem, message, key=key, earlier=earlier)
    guard(guarded_payload(message, headers), conn_id, oem.id)
    envelope_to = recipients(oem)
    sender = bare_address(oem.email.sender)

    def deliver(_idempotency_key: str) -> dict[str, Any]:
        # after a partial refusal, those who took the message have it: the rest get it now
        already = accepted_before(repo.side_effect(key))
        mail = build_email(headers, message, date=utc_now().in_timezone(oem.timezone))  # the OEM's own clock
        with MimeSmtpHook(smtp_conn_id=conn_id) as hook:
            try:
                hook.send_mime(mail, sender, envelope_to, f"OEM {oem.id}", already)
            except RecipientsRefused as error:
                log.error("%s (key %s)", error, key)
                raise
        return sent_record(oem.id, thread, headers["Message-ID"], conn_id, envelope_to)

    performed, _ = perform_once(repo, key, KIND, deliver)
    return performed
