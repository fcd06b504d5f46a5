"""E-mail as the domain builds it (no server): the ``email`` block of config/oems.yaml and
its errors, the headers and parts of a message, and the rules of its thread."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.mail import build_email, email_headers, guarded_payload, message_id, recipients, thread_of
from release_pipeline.registry import load_registry
from tests.builders import make_oem

EMAIL = """\
    email:
      to: [releases@acme.example, "Ann Lee <ann@acme.example>"]
      cc: [qa@acme.example]
      from: "Acme Integrate Releases <no-reply@acme.example>"
      reply_to: support@acme.example
"""
MOMENT = dt.datetime(2026, 6, 12, 9, 30, tzinfo=dt.UTC)
# make_oem()'s entry as config/oems.yaml writes it (an item of the ``oems:`` list)
GOOD = textwrap.indent(yaml.safe_dump([make_oem().model_dump(mode="json", exclude_defaults=True)]), "  ")
ACME = make_oem(email=yaml.safe_load(EMAIL)["email"])


def write(tmp_path, body: str):
    path = tmp_path / "oems.yaml"
    path.write_text("oems:\n" + body)
    return path


def acme(tmp_path, email: str = EMAIL):
    return load_registry(write(tmp_path, GOOD + email)).get("acme")


def errors(tmp_path, email: str) -> str:
    registry = load_registry(write(tmp_path, GOOD + email))
    with pytest.raises(InvalidConfig) as raised:
        registry.raise_for_errors()
    return str(raised.value)


def test_an_oem_without_email_keeps_the_http_sink_and_one_with_it_gets_its_smtp_connection(tmp_path):
    assert load_registry(write(tmp_path, GOOD)).get("acme").email is None
    oem = acme(tmp_path)
    assert oem.email.connection == "oem_acme_smtp"
    assert oem.email.sender == "Acme Integrate Releases <no-reply@acme.example>" and oem.email.domain == "acme.example"
    assert recipients(oem) == ["releases@acme.example", "ann@acme.example", "qa@acme.example"]
    named = acme(tmp_path, EMAIL + "      connection: smtp_default\n")
    assert named.email.connection == "smtp_default"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('to: [releases@acme.example, "Ann Lee <ann@acme.example>"]', "to: []"), "field 'email.to'"),
        (("releases@acme.example, ", "releases@acme, "), "'releases@acme' is not an e-mail address"),
        (("reply_to: support@acme.example", "reply_to: Support support@acme.example"), "field 'email.reply_to'"),
        (("cc: [qa@acme.example]", "cc: [ann@acme.example]"), "ann@acme.example is in both to and cc"),
        (("from: ", "sender_name: x\n      from: "), "unknown field; known fields: to, cc, from"),
        (('      from: "Acme Integrate Releases <no-reply@acme.example>"\n', ""), "field 'email.from': is required"),
    ],
)
def test_a_bad_email_block_is_named_with_its_file_line_and_field(tmp_path, change, expected):
    old, new = change
    message = errors(tmp_path, EMAIL.replace(old, new, 1))
    assert "oems.yaml:" in message and "OEM 'acme'" in message
    assert expected in message


def test_headers_and_parts_of_a_message(tmp_path):
    oem = acme(tmp_path)
    message = {"subject": "Acme Integrate 2026.24", "markdown": "# Hi\n", "html": "<p>Hi</p>", "release_id": "2026.24"}
    headers = email_headers(oem, message, key="signoff:2026.24:acme")
    mail = build_email(headers, message, date=MOMENT)
    assert mail.get_content_type() == "multipart/alternative"
    text, html = mail.iter_parts()
    assert text.get_content() == "# Hi\n" and text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html" and "<p>Hi</p>" in html.get_content()
    assert (
        html.get_content().startswith("<!DOCTYPE html>")
        and "<title>Acme Integrate 2026.24</title>" in html.get_content()
    )
    assert mail["Date"] == "Fri, 12 Jun 2026 09:30:00 +0000" and len(mail.get_all("Date")) == 1
    assert mail["List-Id"] == "Acme Cloud releases <releases.acme.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "In-Reply-To" not in mail and "References" not in mail
    # what the guard reads: every header an OEM sees, the Message-ID by its domain only
    shown = guarded_payload(message, headers)["headers"]
    assert shown["Message-ID domain"] == "acme.example" and "Message-ID" not in shown
    assert {"Subject", "From", "To", "Cc", "Reply-To", "List-Id"} <= set(shown)


def test_a_configured_list_id_is_used(tmp_path):
    oem = acme(tmp_path, EMAIL + '      list_id: "Acme notices <notices.acme.example>"\n')
    headers = email_headers(oem, {"subject": "s"}, key="k")
    assert headers["List-Id"] == "Acme notices <notices.acme.example>"


def test_a_message_belongs_to_its_release_thread():
    assert thread_of({"release_id": "2026.24", "cycle": "c"}, "k") == "release 2026.24"
    assert thread_of({"cycle": "2026-W50"}, "k") == "cycle 2026-W50"
    assert thread_of({"subject": "x"}, "feedback:nimbus") == "key feedback:nimbus"


@given(
    key=st.text(min_size=1, max_size=80),
    earlier=st.lists(st.from_regex(r"<[0-9a-f]{32}@acme\.example>", fullmatch=True), max_size=5, unique=True),
)
def test_threading_rules_hold_for_any_key_and_history(key, earlier):
    """The Message-ID is the key's alone (a retry repeats it), in the sender's domain, and
    shows nothing of the key; a message with earlier ones in its thread answers the latest
    and references them all, oldest first; the first of a thread references nothing."""
    oem = ACME
    headers = email_headers(oem, {"subject": "s"}, key=key, earlier=earlier)
    assert (
        headers["Message-ID"]
        == message_id(key, "acme.example")
        == email_headers(oem, {"subject": "t"}, key=key)["Message-ID"]
    )
    local = headers["Message-ID"][1:].split("@")[0]
    assert len(local) == 32 and set(local) <= set("0123456789abcdef")
    if earlier:
        assert headers["In-Reply-To"] == earlier[-1] and headers["References"].split() == earlier
    else:
        assert "In-Reply-To" not in headers and "References" not in headers


def test_staff_chat_is_validated_in_vendor_yaml(tmp_path):
    """(Staff alerts' channel, the other half of docs/channels.md.)"""
    from release_pipeline.config_loading import config_dir
    from release_pipeline.vendor import load_vendor

    assert load_vendor().staff_chat.kind == "http"  # the HTTP sink stays the default
    text = (config_dir() / "vendor.yaml").read_text()
    bad = tmp_path / "vendor.yaml"
    bad.write_text(text.replace("staff_chat: {kind: http, retries: 3}", "staff_chat: {kind: teams, retries: 30}"))
    with pytest.raises(InvalidConfig) as raised:
        load_vendor(bad)
    message = str(raised.value)
    assert "vendor.yaml:" in message and "field 'staff_chat.kind'" in message and "'http' or 'slack'" in message
    assert "field 'staff_chat.retries'" in message and "less than or equal to 10" in message
