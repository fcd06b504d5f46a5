"""The mailbox page: what each OEM received by e-mail, shown as a mail client shows it
(From, To, Cc, Subject, Date, the thread, the text part and the HTML part). Dev only."""

from __future__ import annotations

from email import message_from_string, policy
from email.message import EmailMessage
from html import escape

HEADERS = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "List-Id", "Message-ID", "In-Reply-To")
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}
.mail{border:1px solid #ccc;border-radius:6px;margin:1.5rem 0;padding:1rem}
.mail dl{display:grid;grid-template-columns:8rem 1fr;margin:0}.mail dt{color:#666}.mail dd{margin:0}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.75rem}iframe{width:100%;height:24rem;border:1px solid #ddd}"""


def parse(raw: str) -> EmailMessage:
    return message_from_string(raw, policy=policy.default)


def parts(mail: EmailMessage) -> dict[str, str]:
    """``{"text/plain": ..., "text/html": ...}`` of a message (its first part of each type)."""
    found: dict[str, str] = {}
    for part in mail.walk():
        if not part.is_multipart():
            found.setdefault(part.get_content_type(), part.get_content())
    return found


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def index_page(mail: list[dict], oem_ids: list[str]) -> str:
    counts = {oem_id: sum(oem_id in m["oems"] for m in mail) for oem_id in oem_ids}
    items = "".join(
        f"<li><a href='/mailbox/{escape(oem_id)}'>{escape(oem_id)}</a>: {n} message{'s' * (n != 1)}</li>"
        for oem_id, n in counts.items()
    )
    return _page("Mailboxes", f"<ul>{items}</ul><p>{len(mail)} message(s) in all.</p>")


def mailbox_page(oem_id: str, mail: list[dict]) -> str:
    cards = []
    for entry in reversed([m for m in mail if oem_id in m["oems"]]):  # newest first, as a mail client lists
        message = parse(entry["raw"])
        rows = "".join(
            f"<dt>{name}</dt><dd>{escape(str(message[name]))}</dd>" for name in HEADERS if message[name] is not None
        )
        shown = parts(message)
        html_part = shown.get("text/html")
        cards.append(
            "<div class='mail'>"
            f"<dl>{rows}</dl>"
            + (f'<h3>HTML part</h3><iframe sandbox srcdoc="{escape(html_part)}"></iframe>' if html_part else "")
            + f"<h3>Text part</h3><pre>{escape(shown.get('text/plain', '(none)'))}</pre>"
            "</div>"
        )
    body = "".join(cards) or "<p>Nothing received yet.</p>"
    return _page(f"Mailbox of {oem_id}", "<p><a href='/mailbox'>all mailboxes</a></p>" + body)
