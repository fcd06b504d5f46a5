"""The guard in the shared send path, against the real simulator (notification sink and
docs portals) and a real release database (SQLite and PostgreSQL): a leaking send
delivers nothing, is recorded as held and alerted once; the operator CLI releases it
after the fix, and it is delivered exactly once."""

import shutil

import pytest
import yaml

from release_pipeline.cli import main
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.notes import Rendered
from release_pipeline.registry import load_registry
from simulator.connections import as_environment, release_db_connection, simulator_connections
from tests.conftest import REPO

LEAKY_HTML = '<p>Status: <a href="https://status.ava.example/">status.ava.example</a></p>'
CLEAN = {"subject": "Nimbus Connect 2026.24", "markdown": "All good.", "kind": "delivery_update"}


@pytest.fixture
def wired(release_db_url, simulator, sim, monkeypatch):
    """Airflow connections to the simulator and the test's release database."""
    from release_train_airflow import resources

    connections = simulator_connections(simulator.endpoints, load_registry().oems.values())
    connections["release_db"] = release_db_connection(release_db_url)
    env = as_environment(connections)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    repo = ReleaseRepository.from_url(release_db_url)
    yield repo
    repo.engine.dispose()
    resources.reset_caches()


@pytest.fixture
def fixed_config(tmp_path):
    """config/ with nimbus's glossary mapping the vendor's status host to its own."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    oems = yaml.safe_load((target / "oems.yaml").read_text())
    nimbus = next(o for o in oems["oems"] if o["id"] == "nimbus")
    nimbus["glossary"]["status.ava.example"] = "status.nimbus.example"
    (target / "oems.yaml").write_text(yaml.safe_dump(oems, sort_keys=False))
    return target


def alerts(sim) -> list[dict]:
    return [n for n in sim.notifications("ava_release_managers") if "Held" in n["message"]["subject"]]


def test_a_leak_in_the_html_alone_sends_nothing_and_is_held_then_released_once(
    wired, sim, release_db_url, fixed_config, capsys
):
    from release_train_airflow.outbound import SendHeld, send_message

    repo = wired
    message = {**CLEAN, "html": LEAKY_HTML}
    for _ in range(2):  # the task's retry, or a re-run before the fix
        with pytest.raises(SendHeld, match=r"held send #1 to OEM nimbus: nothing was sent; it leaks html"):
            send_message(repo, "oem_nimbus_notify", message, key="delivery:installed:nimbus:2026.24")
    assert sim.notifications("nimbus") == []
    (held,) = repo.held_sends()
    assert (held.oem_id, held.channel, held.status, held.attempts) == ("nimbus", "notification", "held", 2)
    assert {(leak["field"], leak["found"]) for leak in held.leaks} == {("html", "ava.example")}
    assert "[status.ava.example]" in held.leaks[0]["passage"] or "[ava.example]" in held.leaks[0]["passage"]
    assert len(alerts(sim)) == 1  # staff are told once, not per attempt
    assert repo.side_effect("delivery:installed:nimbus:2026.24") is None  # the ledger does not call it sent

    # listed for staff
    assert main(["--db-url", release_db_url, "held", "list"]) == 0
    listing = capsys.readouterr().out
    assert "delivery:installed:nimbus:2026.24" in listing and "ava.example" in listing

    # released before the fix: still leaks, exit 2, says where, sends nothing
    assert main(["--db-url", release_db_url, "held", "release", "1", "--by", "ann"]) == 2
    assert "html: vendor" in capsys.readouterr().err
    assert sim.notifications("nimbus") == []

    # the glossary is fixed: released, delivered once, with the OEM's host
    args = ["--db-url", release_db_url, "--config-dir", str(fixed_config), "held", "release", "1", "--by", "ann"]
    assert main(args) == 0
    assert "held send #1 to nimbus sent: released by ann" in capsys.readouterr().out
    (delivered,) = sim.notifications("nimbus")
    assert "status.nimbus.example" in delivered["message"]["html"]
    assert "ava" not in delivered["message"]["html"].lower()
    assert delivered["idempotency_key"] == "delivery:installed:nimbus:2026.24"
    assert repo.held_send(1).status == "released"

    # neither a second release nor the task's re-run sends it again
    assert main(args) == 0
    assert send_message(repo, "oem_nimbus_notify", message, key="delivery:installed:nimbus:2026.24") is False
    assert len(sim.notifications("nimbus")) == 1


def test_a_rerun_whose_render_passes_sends_once_and_ends_the_hold(wired, sim):
    from release_train_airflow.outbound import SendHeld, send_message

    repo = wired
    with pytest.raises(SendHeld):
        send_message(repo, "oem_orbitel_notify", {**CLEAN, "markdown": "Ask Nimbus Systems GmbH"}, key="k:orbitel")
    assert sim.notifications("orbitel") == []
    assert send_message(repo, "oem_orbitel_notify", {**CLEAN, "subject": "OrbitLink Integrate"}, key="k:orbitel")
    assert len(sim.notifications("orbitel")) == 1
    assert repo.held_send(key="k:orbitel").status == "released"


def test_a_leaking_docs_page_is_not_published_until_released(wired, sim, release_db_url, fixed_config):
    from release_train_airflow.outbound import SendHeld, apply_docs_strategy

    repo = wired
    nimbus = load_registry().get("nimbus")  # docs_strategy ava: the vendor publishes its portal
    notes = Rendered("Nimbus Connect 2026.24 release notes", "See status.ava.example", "<p>fine</p>")
    with pytest.raises(SendHeld):
        apply_docs_strategy(
            repo, nimbus, notes, kind="delivery_notes", scope_key="2026.24", page_key="releases/2026.24"
        )
    assert sim.docs("nimbus") == {}
    (publication,) = repo.publications(kind="delivery_notes")
    assert publication.status == "failed" and "held send #1 " in publication.detail
    (held,) = repo.held_sends()
    assert (held.channel, held.method, held.endpoint) == ("docs_page", "PUT", "pages/releases/2026.24")

    args = ["--db-url", release_db_url, "--config-dir", str(fixed_config), "held", "release", "1", "--by", "ann"]
    assert main(args) == 0
    page = sim.docs("nimbus")["releases/2026.24"]
    assert page["markdown"] == "See status.nimbus.example" and page["revision"] == 1
    (publication,) = repo.publications(kind="delivery_notes")
    assert publication.status == "published" and "released by ann" in publication.detail


def test_vendor_channels_are_not_guarded_and_unknown_ones_refused(wired, sim):
    from airflow.sdk.exceptions import AirflowFailException

    from release_train_airflow.outbound import send_message

    repo = wired
    assert send_message(repo, "ava_notify", {"subject": "AVA internal", "html": "production.ava.example"}, key="v1")
    with pytest.raises(AirflowFailException, match="belongs to no OEM"):
        send_message(repo, "somewhere_else", CLEAN, key="x1")


def test_a_change_text_fixed_after_the_hold_is_what_gets_released(wired, sim, release_db_url, calendar, capsys):
    """The leak is in an engineer's change text, inside release notes: staff correct the
    text, and the held message goes out with the corrected text in every part."""
    import pendulum

    from release_pipeline.models import Change, ChangeType
    from release_pipeline.notes import Audience, ReleaseNotesInput, render_release_notes
    from release_pipeline.vendor import load_vendor
    from release_train_airflow.outbound import SendHeld, send_message

    repo = wired
    release = calendar.release_by_id("2026.24")
    leaky = Change(
        "CHG-9",
        ChangeType.FIX,
        "connectors",
        "Retry <gateway> calls",
        "As Kestrel Flow asked: retries on ava-ctl timeouts & 503s",
        False,
        pendulum.datetime(2026, 11, 20, 12, tz="UTC"),
    )
    repo.record_release(release, [leaky], changes_since=calendar.previous(release).at, changes_until=release.at,
                        actor="test")  # fmt: skip
    nimbus = load_registry().get("nimbus")
    notes = render_release_notes([ReleaseNotesInput("2026.24", release.at, repo.changes_of(["2026.24"]))],
                                 Audience.oem(nimbus, load_vendor()))  # fmt: skip
    with pytest.raises(SendHeld):
        send_message(repo, "oem_nimbus_notify", notes.as_message(kind="release_notes"), key="release_notes:x:nimbus")
    held = repo.held_send(1)
    assert {leak["field"] for leak in held.leaks} == {"markdown", "html"}
    assert list(held.sources) == ["CHG-9"]

    fixed = "Retries on ava-ctl timeouts & 503s"
    assert main(["--db-url", release_db_url, "change", "edit", "CHG-9", "--description", fixed, "--by", "ann"]) == 0
    assert "change CHG-9: updated description" in capsys.readouterr().out
    assert main(["--db-url", release_db_url, "held", "release", "1", "--by", "ann"]) == 0
    (delivered,) = sim.notifications("nimbus")
    body = delivered["message"]
    assert "Retries on nimbus-ctl timeouts & 503s" in body["markdown"]
    assert "Retries on nimbus-ctl timeouts &amp; 503s" in body["html"]
    assert "kestrel" not in str(body).lower()
    assert [e.event for e in repo.release_events("2026.24")][-1] == "change_edited"
