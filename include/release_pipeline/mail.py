"""E-mail to an OEM: what a message's headers and parts are, built from the rendered
message the HTTP sink would get (subject, Markdown, HTML).

- **Parts**: ``multipart/alternative`` with the Markdown as the ``text/plain`` part and
  the HTML as the ``text/html`` part.
- **Threading**: every message about one release to one OEM is one thread. Its
  ``Message-ID`` is made from the send's idempotency key (a retry sends the same id, so a
  mail client shows a duplicate once); a later message names the thread's earlier ones in
  ``References`` and the latest in ``In-Reply-To``. Which messages came earlier is read
  from the idempotency ledger, where each sent e-mail records its thread and id.
- **List-Id** names the OEM's release list, so the OEM can filter on it.
- **The guard** scans :func:`guarded_payload`: the body and every header an OEM reads
  (subject, From, Reply-To, To, Cc, List-Id, the Message-ID's domain).

Pure: no Airflow, no network. The send itself is ``release_train_airflow.mail``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, getaddresses
from typing import Any

from markupsafe import escape

from release_pipeline.mail_address import bare_address
from release_pipeline.registry import Oem

KIND = "email"  # an e-mail's side effect kind in the idempotency ledger

# the message fields that name what a message is about, most specific first: every
# message about release 2026.24 (sign-off request, reminders, delivery update) is one thread
THREAD_FIELDS = ("release_id", "target_release", "cycle", "period", "snapshot", "page_key")


def thread_of(message: Mapping[str, Any], key: str) -> str:
    """The thread a message belongs to: ``release 2026.24``; a message about nothing
    known starts its own thread (its key)."""
    for name in THREAD_FIELDS:
        value = message.get(name)
        if value:
            return f"{name.removesuffix('_id')} {value}"
    return f"key {key}"


def message_id(key: str, domain: str) -> str:
    """The deterministic ``Message-ID`` of the send ``key``, in the sender's domain. The
    local part is a digest: the key itself may name things no OEM should read."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def list_id(oem: Oem) -> str:
    assert oem.email is not None
    return oem.email.list_id or f"{oem.brand_name} releases <releases.{oem.email.domain}>"


def email_headers(oem: Oem, message: Mapping[str, Any], *, key: str, earlier: Sequence[str] = ()) -> dict[str, str]:
    """The headers of the e-mail for send ``key`` to ``oem``; ``earlier``: the Message-IDs
    already sent in its thread, oldest first."""
    email = oem.email
    if email is None:
        raise ValueError(f"OEM {oem.id!r} has no e-mail configured (config/oems.yaml: email)")
    headers = {
        "Subject": str(message["subject"]),
        "From": email.sender,
        "To": ", ".join(email.to),
        **({"Cc": ", ".join(email.cc)} if email.cc else {}),
        "Reply-To": email.reply_to,
        "Message-ID": message_id(key, email.domain),
        "List-Id": list_id(oem),
        "Auto-Submitted": "auto-generated",
    }
    if earlier:
        headers["In-Reply-To"] = earlier[-1]
        headers["References"] = " ".join(earlier)
    return headers


def recipients(oem: Oem) -> list[str]:
    """The envelope recipients: every To and Cc address, bare."""
    assert oem.email is not None
    return [bare_address(a) for a in (*oem.email.to, *oem.email.cc)]


def recipients_of(headers: Mapping[str, str]) -> list[str]:
    """The envelope recipients of built headers: every To and Cc address, bare."""
    return [address for _, address in getaddresses([headers.get("To", ""), headers.get("Cc", "")]) if address]


def guarded_payload(message: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """What the white-label guard scans (and a hold stores): the message and the headers
    an OEM reads. The Message-ID's digest is left out (hex that happens to spell a short
    OEM id is not a leak); its domain is in."""
    shown = {k: v for k, v in headers.items() if k not in ("Message-ID", "In-Reply-To", "References")}
    shown["Message-ID domain"] = headers["Message-ID"].rsplit("@", 1)[1].rstrip(">")
    return {**message, "headers": shown}


def build_email(headers: Mapping[str, str], message: Mapping[str, Any], *, date: dt.datetime) -> EmailMessage:
    """``multipart/alternative``: the Markdown as plain text first, the HTML last (the
    part a mail client prefers when it can show it)."""
    mail = EmailMessage()
    for name, value in headers.items():
        mail[name] = value
    mail["Date"] = format_datetime(date)
    mail.set_content(str(message.get("markdown") or message["subject"]))
    mail.add_alternative(html_document(str(message.get("html") or ""), str(message["subject"])), subtype="html")
    return mail


def html_document(html: str, title: str) -> str:
    """The rendered HTML (a fragment: an ``<article>``) as the whole document a mail
    client expects in a ``text/html`` part."""
    if html.lstrip().lower().startswith(("<!doctype", "<html")):
        return html
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n{html}</body></html>\n"
    )


def email_from_held(payload: Mapping[str, Any], *, key: str, earlier: Sequence[str] = ()) -> dict[str, str]:
    """The headers of a held e-mail as ``release-train held release`` sends it: those the
    hold stored (re-checked and white-labelled again), its own ``Message-ID`` again and the
    thread as it stands now."""
    shown = dict(payload["headers"])
    headers = {k: str(v) for k, v in shown.items() if k != "Message-ID domain"}
    headers["Message-ID"] = message_id(key, shown["Message-ID domain"])
    if earlier:
        headers["In-Reply-To"] = earlier[-1]
        headers["References"] = " ".join(earlier)
    return headers


def sent_record(audience: str, thread: str, message_id_: str, conn_id: str, to: Sequence[str]) -> dict[str, Any]:
    """What the idempotency ledger keeps of a sent e-mail: enough to thread later ones
    (:meth:`~release_pipeline.db.repository.ReleaseRepository.sent_in_thread`)."""
    return {
        "audience": audience,
        "thread": thread,
        "message_id": message_id_,
        "conn_id": conn_id,
        "recipients": list(to),
    }


class RecipientsRefused(smtplib.SMTPException):
    """The mail server refused some (or all) recipients: the send failed (and is retried)."""

    def __init__(self, who: str, refused: Mapping[str, tuple[int, bytes | str]], accepted: Sequence[str]):
        self.refused = {rcpt: (code, _text(reply)) for rcpt, (code, reply) in refused.items()}
        self.accepted = list(accepted)
        said = "; ".join(f"{rcpt}: {code} {reply}" for rcpt, (code, reply) in sorted(self.refused.items()))
        took = f"; accepted by {', '.join(accepted)}" if accepted else "; nobody received it"
        super().__init__(f"{who}: the mail server refused {said}{took}")

    @property
    def ledger_result(self) -> dict[str, Any]:
        """Kept with the failed attempt in the ledger: who has the message already, so the
        retry sends it only to the others (:func:`accepted_before`)."""
        return {"accepted": self.accepted, "refused": {r: f"{c} {t}" for r, (c, t) in self.refused.items()}}


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def accepted_before(previous: Any) -> list[str]:
    """Who an earlier failed attempt (its ledger row, or None) did reach: a retry after a
    partial refusal sends only to the others."""
    return list(((previous.result or {}) if previous is not None else {}).get("accepted", ()))


def sendmail_checked(
    client: smtplib.SMTP, mail: EmailMessage, sender: str, to: Sequence[str], who: str, had: Sequence[str] = ()
) -> None:
    """Send ``mail`` on a connected client to those of ``to`` not in ``had`` (an earlier
    attempt reached them); :class:`RecipientsRefused` unless every one took it. ``sendmail``
    raises only when all are refused: a partial refusal is its return value, easy to drop,
    so it is checked here."""
    to = [r for r in to if r not in had]
    try:
        # bytes go out as they are (smtplib fixes the line ends of str only): CRLF, as SMTP wants
        refused = client.sendmail(sender, to, mail.as_bytes(policy=SMTP_POLICY))
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
    if refused:
        raise RecipientsRefused(who, refused, [*had, *(r for r in to if r not in refused)])
