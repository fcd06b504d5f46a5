"""E-mail to OEMs end to end: the shared send path (``outbound.send_message``) through the
SMTP provider's hook to a real aiosmtpd server (the simulator's, on 127.0.0.1), on a real
release database (SQLite and PostgreSQL). Each received message is parsed: its parts, its
headers, the thread two messages about one release make, and no trace of the vendor in any
header or part. A refused recipient fails the send, is recorded, and the retry delivers."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from release_pipeline.notes import Audience, render
from release_pipeline.registry import load_registry
from release_pipeline.vendor import load_vendor
from simulator.connections import as_environment, release_db_connection, simulator_connections
from simulator.mailbox import parse, parts
from simulator.process import SimulatorProcess
from tests.conftest import REPO

RELEASE = "2026.24"
NIMBUS_EMAIL = {
    "to": ["releases@nimbus.example", "Olga Berg <olga.berg@nimbus.example>"],
    "cc": ["qa@nimbus.example"],
    "from": "Nimbus Connect Releases <no-reply@releases.nimbus.example>",
    "reply_to": "Nimbus Connect Support <support@nimbus.example>",
}
RECIPIENTS = ["releases@nimbus.example", "olga.berg@nimbus.example", "qa@nimbus.example"]


def config_with_email(target, nimbus_email: dict) -> None:
    """A copy of config/ where nimbus is e-mailed (the others keep the HTTP sink)."""
    shutil.copytree(REPO / "config", target)
    oems = yaml.safe_load((target / "oems.yaml").read_text())
    next(o for o in oems["oems"] if o["id"] == "nimbus")["email"] = nimbus_email
    (target / "oems.yaml").write_text(yaml.safe_dump(oems, sort_keys=False))


@pytest.fixture(scope="module")
def mail_config(tmp_path_factory):
    target = tmp_path_factory.mktemp("mail") / "config"
    config_with_email(target, NIMBUS_EMAIL)
    return target


@pytest.fixture(scope="module")
def mail_simulator(tmp_path_factory, mail_config):
    """A simulator whose SMTP server knows nimbus's addresses (its mailbox page lists them)."""
    with SimulatorProcess(tmp_path_factory.mktemp("mail-sim"), oems=mail_config / "oems.yaml") as process:
        yield process


@pytest.fixture
def wired(release_db_url, mail_simulator, mail_config, monkeypatch):
    """Airflow connections to the simulator (nimbus's SMTP connection included), the
    release database, and config/ with nimbus on e-mail."""
    from release_pipeline.db.repository import ReleaseRepository
    from release_train_airflow import resources

    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(mail_config))
    sim = mail_simulator.client()
    sim.reset()
    sim.refuse_recipients()
    connections = simulator_connections(mail_simulator.endpoints, load_registry().oems.values())
    connections["release_db"] = release_db_connection(release_db_url)
    for name, value in as_environment(connections).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    repo = ReleaseRepository.from_url(release_db_url)
    yield repo, sim
    repo.engine.dispose()
    resources.reset_caches()


def nimbus_message(kind: str, subject: str, lines: list[str]) -> dict:
    """A message rendered for nimbus the way the DAGs render them (white-labelled)."""
    nimbus = load_registry().get("nimbus")
    rendered = render("vendor_alert", Audience.oem(nimbus, load_vendor()), subject, lines=lines, link=None)
    return rendered.as_message(kind=kind, release_id=RELEASE)


def vendor_traces(text: str) -> list[str]:
    """The vendor's names, hosts and identifiers (config/vendor.yaml) found in ``text``, as
    whole words (``java`` is not ``AVA``)."""
    vendor = load_vendor()
    found = []
    for term in vendor.guarded_terms:
        if re.search(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", text, re.IGNORECASE):
            found.append(term)
    return found


def test_two_messages_about_one_release_arrive_as_one_thread_in_text_and_html_without_the_vendor(wired):
    from release_train_airflow.outbound import send_message

    repo, sim = wired
    first = nimbus_message("signoff_request", f"AVA Platform {RELEASE}: please sign off", ["Run ava-ctl version."])
    second = nimbus_message("delivery_update", f"AVA {RELEASE} is installed", ["See https://production.ava.example"])
    assert send_message(repo, "oem_nimbus_notify", first, key=f"signoff:{RELEASE}:nimbus") is True
    assert send_message(repo, "oem_nimbus_notify", second, key=f"delivery:{RELEASE}:nimbus") is True
    # once per key: the task's retry or re-run sends nothing more
    assert send_message(repo, "oem_nimbus_notify", first, key=f"signoff:{RELEASE}:nimbus") is False

    received = sim.mail("nimbus")
    assert len(received) == 2 and sim.notifications("nimbus") == []  # e-mail instead of the HTTP sink
    assert all(sorted(m["rcpt_tos"]) == sorted(RECIPIENTS) for m in received)
    assert all(m["mail_from"] == "no-reply@releases.nimbus.example" for m in received)
    one, two = (parse(m["raw"]) for m in received)

    for mail in (one, two):
        assert mail.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
        assert mail["From"] == NIMBUS_EMAIL["from"]
        assert mail["To"] == ", ".join(NIMBUS_EMAIL["to"])
        assert mail["Cc"] == "qa@nimbus.example"
        assert mail["Reply-To"] == NIMBUS_EMAIL["reply_to"]
        assert mail["List-Id"] == "Nimbus Connect releases <releases.releases.nimbus.example>"
        assert re.fullmatch(r"<[0-9a-f]{32}@releases\.nimbus\.example>", mail["Message-ID"])
        assert len(mail.get_all("Date")) == 1
        # no trace of the vendor in any header or part
        for name, value in mail.items():
            assert vendor_traces(str(value)) == [], name
        for content_type, text in parts(mail).items():
            assert vendor_traces(text) == [], content_type
    assert one["Subject"] == f"Nimbus Connect {RELEASE}: please sign off"
    assert "nimbus-ctl version" in parts(one)["text/plain"] and "<html" in parts(one)["text/html"].lower()
    assert "https://acceptance.nimbus.example" in parts(two)["text/html"]

    # the thread: the first starts it, the second answers it
    assert one["In-Reply-To"] is None and one["References"] is None
    assert two["In-Reply-To"] == one["Message-ID"] and two["References"] == one["Message-ID"]

    # a third message about the same release names both; one about another release starts anew
    third = nimbus_message("signoff_reminder", f"Reminder: {RELEASE}", ["Two days left."])
    send_message(repo, "oem_nimbus_notify", third, key=f"reminder:{RELEASE}:nimbus")
    other = {**nimbus_message("signoff_request", "2026.26: please sign off", ["x"]), "release_id": "2026.26"}
    send_message(repo, "oem_nimbus_notify", other, key="signoff:2026.26:nimbus")
    three, four = (parse(m["raw"]) for m in sim.mail("nimbus")[2:])
    assert three["In-Reply-To"] == two["Message-ID"]
    assert three["References"].split() == [one["Message-ID"], two["Message-ID"]]
    assert four["In-Reply-To"] is None and four["References"] is None

    # the mailbox page shows them as a mail client does
    page = sim._http.get("/mailbox/nimbus")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Nimbus Connect 2026.24 is installed" in page.text and "srcdoc=" in page.text


def test_an_oem_without_email_still_gets_the_http_sink(wired):
    from release_train_airflow.outbound import send_message

    repo, sim = wired
    message = {"subject": "OrbitLink Integrate 2026.24", "markdown": "Hi", "html": "<p>Hi</p>", "kind": "x"}
    assert send_message(repo, "oem_orbitel_notify", message, key="x:orbitel")
    assert len(sim.notifications("orbitel")) == 1 and sim.mail() == []


def test_a_refused_recipient_fails_the_send_is_recorded_and_the_retry_delivers(wired):
    from airflow.sdk.exceptions import AirflowFailException

    from release_train_airflow.mail import RecipientsRefused
    from release_train_airflow.outbound import send_message

    repo, sim = wired
    key = f"signoff:{RELEASE}:nimbus"
    message = nimbus_message("signoff_request", f"{RELEASE}: please sign off", ["Please sign off."])

    sim.refuse_recipients("qa@nimbus.example")  # a partial acceptance: the server takes the other two
    with pytest.raises(RecipientsRefused, match=r"refused qa@nimbus\.example: 550 5\.1\.1 mailbox unavailable") as err:
        send_message(repo, "oem_nimbus_notify", message, key=key)
    assert not isinstance(err.value, AirflowFailException)  # Airflow retries the task
    row = repo.side_effect(key)
    assert (row.kind, row.status, row.attempts) == ("email", "failed", 1)
    assert "qa@nimbus.example" in row.result["error"] and "550" in row.result["error"]
    assert row.result["refused"] == {"qa@nimbus.example": "550 5.1.1 mailbox unavailable"}
    assert sorted(row.result["accepted"]) == ["olga.berg@nimbus.example", "releases@nimbus.example"]
    (partial,) = sim.mail()
    assert sorted(partial["rcpt_tos"]) == ["olga.berg@nimbus.example", "releases@nimbus.example"]

    sim.refuse_recipients(*RECIPIENTS)  # the retry: refused again, still recorded, nobody new has it
    with pytest.raises(RecipientsRefused, match="refused qa@nimbus.example: 550") as err:
        send_message(repo, "oem_nimbus_notify", message, key=key)
    assert "accepted by releases@nimbus.example, olga.berg@nimbus.example" in str(err.value)
    assert repo.side_effect(key).status == "failed" and len(sim.mail()) == 1

    sim.refuse_recipients()  # the mailbox is back: the retry delivers to the one missing it
    assert send_message(repo, "oem_nimbus_notify", message, key=key) is True
    row = repo.side_effect(key)
    assert (row.status, row.attempts, sorted(row.result["recipients"])) == ("done", 3, sorted(RECIPIENTS))
    first, retried = sim.mail()
    assert retried["rcpt_tos"] == ["qa@nimbus.example"]  # no duplicate for those who had it
    assert parse(first["raw"])["Message-ID"] == parse(retried["raw"])["Message-ID"]
    assert parse(retried["raw"])["To"] == ", ".join(NIMBUS_EMAIL["to"])  # the headers name everyone still

    sim.refuse_recipients(*RECIPIENTS)  # a send refused by everyone is a failure too
    with pytest.raises(RecipientsRefused, match="nobody received it"):
        send_message(repo, "oem_nimbus_notify", message, key="another:key")
    assert repo.side_effect("another:key").status == "failed"


def test_a_vendor_name_in_a_header_holds_the_whole_send_until_released_by_the_cli(
    wired, tmp_path, monkeypatch, release_db_url, capsys
):
    from release_pipeline.cli import main
    from release_train_airflow.outbound import SendHeld, send_message

    repo, sim = wired
    leaky, fixed = tmp_path / "leaky", tmp_path / "fixed"
    config_with_email(leaky, {**NIMBUS_EMAIL, "reply_to": "AVA Support <support@ava.example>"})
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(leaky))
    key = f"signoff:{RELEASE}:nimbus"
    message = nimbus_message("signoff_request", f"{RELEASE}: please sign off", ["Please sign off."])
    with pytest.raises(SendHeld, match=r"held send #1 to OEM nimbus: nothing was sent; it leaks headers\.Reply-To"):
        send_message(repo, "oem_nimbus_notify", message, key=key)
    assert sim.mail() == [] and repo.side_effect(key) is None
    (held,) = repo.held_sends()
    assert (held.channel, held.method, held.conn_id, held.endpoint) == ("email", "SMTP", "oem_nimbus_smtp", "nimbus")
    assert {leak["field"] for leak in held.leaks} == {"headers.Reply-To"}

    # the glossary gets the vendor's support host: released from the CLI, sent by e-mail once
    config_with_email(fixed, {**NIMBUS_EMAIL, "reply_to": "AVA Support <support@ava.example>"})
    oems = yaml.safe_load((fixed / "oems.yaml").read_text())
    next(o for o in oems["oems"] if o["id"] == "nimbus")["glossary"]["support@ava.example"] = "support@nimbus.example"
    (fixed / "oems.yaml").write_text(yaml.safe_dump(oems, sort_keys=False))
    args = ["--db-url", release_db_url, "--config-dir", str(fixed), "held", "release", "1", "--by", "ann"]
    assert main(args) == 0, capsys.readouterr().err
    (received,) = sim.mail("nimbus")
    mail = parse(received["raw"])
    assert mail["Reply-To"] == "Nimbus Connect Support <support@nimbus.example>"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert sorted(received["rcpt_tos"]) == sorted(RECIPIENTS)
    row = repo.side_effect(key)
    assert (row.kind, row.status, row.result["message_id"]) == ("email", "done", mail["Message-ID"])

    # released twice or re-run: nothing more; the next message of the release (its e-mail
    # block now fixed: headers come from config as written, the white-label step is for texts)
    assert main(args) == 0
    config_with_email(tmp_path / "clean", NIMBUS_EMAIL)
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(tmp_path / "clean"))
    assert send_message(repo, "oem_nimbus_notify", message, key=key) is False
    later = nimbus_message("delivery_update", f"{RELEASE} is installed", ["Done."])
    send_message(repo, "oem_nimbus_notify", later, key=f"delivery:{RELEASE}:nimbus")
    assert len(sim.mail("nimbus")) == 2
    assert parse(sim.mail("nimbus")[1]["raw"])["In-Reply-To"] == mail["Message-ID"]


def test_oems_sharing_one_smtp_connection_are_each_guarded_as_themselves(wired, tmp_path, monkeypatch):
    from release_train_airflow.outbound import send_message

    repo, sim = wired
    shared = tmp_path / "shared"
    config_with_email(shared, {**NIMBUS_EMAIL, "connection": "oem_nimbus_smtp"})
    oems = yaml.safe_load((shared / "oems.yaml").read_text())
    next(o for o in oems["oems"] if o["id"] == "orbitel")["email"] = {
        "to": ["releases@orbitlink.example"],
        "from": "OrbitLink Integrate Releases <no-reply@orbitlink.example>",
        "reply_to": "support@orbitlink.example",
        "connection": "oem_nimbus_smtp",  # one relay for both
    }
    (shared / "oems.yaml").write_text(yaml.safe_dump(oems, sort_keys=False))
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(shared))
    message = {"subject": "OrbitLink Integrate 2026.24", "markdown": "Hi", "html": "<p>Hi</p>", "release_id": RELEASE}
    assert send_message(repo, "oem_orbitel_notify", message, key="x:orbitel")  # not held as if it were nimbus's
    (received,) = sim.mail()
    assert received["rcpt_tos"] == ["releases@orbitlink.example"] and sim.notifications("orbitel") == []
    assert repo.held_sends() == []
