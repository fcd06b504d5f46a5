"""oem_delivery__<oem>, run for real against the simulator's SSH instances and HTTP
endpoints and the release database on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pendulum
import pytest
import time_machine
import yaml

from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar
from simulator.mailbox import parse
from tests.builders import TWO_OF_TWO, with_policy

pytestmark = pytest.mark.e2e

INSTALLED, MIDDLE, TARGET = "2026.18", "2026.20", "2026.22"
# The tests' clock: after TARGET's install day (5 November 2026), before the next release.
NOW = pendulum.datetime(2026, 11, 10, 12, tz="UTC")


@pytest.fixture(autouse=True)
def pinned_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def delivery(pipeline):
    """Releases 2026.18 (on the instances), 2026.20 and 2026.22 deployed; every enabled
    OEM asked to sign off their changes."""
    repo, train = pipeline.repo, load_calendar()
    repo.record_baseline_release(train.release_by_id(INSTALLED), actor="test", reason="instances start here")
    for release_id, count in ((MIDDLE, 1), (TARGET, 2)):
        release = train.release_by_id(release_id)
        changes = [
            Change(
                f"CHG-{release_id[-2:]}{n}",
                ChangeType.FEATURE,
                "connectors",
                f"Feature {n} of {release_id}",
                "Does things.",
                False,
                release.at.subtract(days=2),
                release_id,
            )
            for n in range(count)
        ]
        repo.record_release(
            release, changes, changes_since=train.previous(release).at, changes_until=release.at, actor="test"
        )
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
        repo.request_approvals(release_id, ["kestrel", "nimbus", "orbitel"])
    for oem in ("kestrel", "nimbus", "orbitel", "tundra"):
        repo.set_installed_version(oem, INSTALLED)
        pipeline.sim.oem(oem, version=INSTALLED)
    return pipeline


CHANGES = ["CHG-200", "CHG-220", "CHG-221"]


def approve(repo, oem: str, changes=CHANGES) -> None:
    for change in changes:
        repo.record_decision(
            oem_id=oem, change_id=change, decision=Decision.APPROVED, actor="oem.user", channel="portal"
        )


def deliver(pipeline, oem: str = "nimbus", **conf):
    conf = {
        "target_release": TARGET,
        "approval_deadline": pendulum.now("UTC").add(minutes=10).isoformat(),
        "gate_poll_seconds": 0.2,
        "verify_grace_seconds": 2,  # an unhealthy instance is given 2 s, not 5 minutes, to come up
        # dag.test() leaves a run's conf in the session DagBag's params: a dry run would leak
        # into the tests after it
        "dry_run": False,
        **conf,
    }
    return pipeline.run(f"oem_delivery__{oem}", conf=conf)


def installs(pipeline, oem: str = "nimbus") -> list[dict]:
    return [h for h in pipeline.sim.state()["oems"][oem]["history"] if h["action"] == "install"]


def test_all_approved_is_installed_recorded_documented_and_not_repeated(delivery):
    approve(delivery.repo, "nimbus")
    run = deliver(delivery)
    states = delivery.task_states(run)
    assert run.state == "success", states
    assert states["recover"] == "skipped"

    assert delivery.sim.state()["oems"]["nimbus"]["version"] == TARGET
    row = delivery.repo.delivery("nimbus", TARGET)
    assert (row.status, row.from_release_id, row.cycle_key) == ("installed", INSTALLED, "2026.21-2026.22")
    assert row.started_at <= row.finished_at and "ava-ctl install 2026.22" in row.log_excerpt
    installed = delivery.repo.installed_version("nimbus")
    assert (installed.release_id, installed.previous_release_id) == (TARGET, INSTALLED)

    page = delivery.sim.docs("nimbus")[f"releases/{TARGET}"]  # docs strategy "ava"
    assert "Feature 0 of 2026.20" in page["markdown"] and "Feature 1 of 2026.22" in page["markdown"]
    [note] = [n["message"] for n in delivery.sim.notifications("nimbus")]
    assert note["subject"] == f"Your Nimbus Connect instance now runs {TARGET}"
    assert "AVA" not in note["markdown"] + note["html"]
    assert len(installs(delivery)) == 1

    again = deliver(delivery)
    assert delivery.task_states(again)["plan_delivery"] == "skipped"
    assert len(installs(delivery)) == 1  # no second install
    assert len(delivery.sim.notifications("nimbus")) == 1


def test_a_run_begun_before_install_day_waits_for_it(delivery, test_config):
    """The cycle's run starts weeks before install day; its wait_for_install_date defers
    (dag.test() runs the trigger inline) and the install follows the moment it passes."""
    always_open(test_config, "nimbus")
    approve(delivery.repo, "nimbus")
    train = load_calendar()
    install_day = train.delivery_cycle_of(train.release_by_id(TARGET)).install_at
    with time_machine.travel(install_day.subtract(seconds=15), tick=True):
        run = deliver(delivery)
    assert run.state == "success", delivery.task_states(run)
    started = {ti.task_id: ti.start_date for ti in run.get_task_instances()}
    assert started["plan_delivery"] < install_day <= started["aim_on_install_day"], started
    installed = delivery.repo.installed_version("nimbus")
    assert installed.release_id == TARGET and installed.installed_at >= install_day


def test_docs_strategy_oem_sends_the_package(delivery, test_config):
    always_open(test_config, "orbitel")
    approve(delivery.repo, "orbitel")
    run = deliver(delivery, "orbitel")
    assert run.state == "success", delivery.task_states(run)
    kinds = [n["message"]["kind"] for n in delivery.sim.notifications("orbitel")]
    assert kinds == ["notes_package", "delivery_update"]
    assert delivery.sim.docs("orbitel") == {}
    [publication] = delivery.repo.publications(kind="delivery_notes", scope_key=TARGET)
    assert (publication.audience, publication.status) == ("orbitel", "delegated")


def test_one_rejected_change_holds_its_release_and_the_approved_one_before_it_goes(delivery):
    approve(delivery.repo, "nimbus", ["CHG-200", "CHG-221"])
    delivery.repo.record_decision(
        oem_id="nimbus",
        change_id="CHG-220",
        decision=Decision.REJECTED,
        actor="nina",
        channel="portal",
        comment="breaks our SSO login",
    )
    run = deliver(delivery, target_release=None)
    states = delivery.task_states(run)
    assert run.state == "success", states
    # 2026.22 holds a rejected change; 2026.20 is approved in full, so it is installed
    assert [h["release"] for h in installs(delivery)] == [MIDDLE]
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "rejected"
    assert row.detail == (
        f"rejected: CHG-220 (release {TARGET}) rejected by nina: breaks our SSO login; installing {MIDDLE} instead"
    )
    assert delivery.repo.delivery("nimbus", MIDDLE).status == "installed"
    assert delivery.repo.installed_version("nimbus").release_id == MIDDLE
    held, delivered = [n["message"] for n in delivery.sim.notifications("nimbus")]
    assert "breaks our SSO login" in held["markdown"] and f"gets {MIDDLE} instead" in held["markdown"]
    assert delivered["subject"] == f"Your Nimbus Connect instance now runs {MIDDLE}"
    [alert] = [n["message"] for n in delivery.sim.notifications("ava_release_managers")]
    assert "CHG-220" in alert["markdown"]


def test_nothing_approved_installs_nothing_and_says_why(delivery):
    delivery.repo.record_decision(
        oem_id="nimbus", change_id="CHG-200", decision=Decision.REJECTED, actor="nina", channel="portal", comment="no"
    )
    run = deliver(delivery)
    assert delivery.task_states(run)["install"] == "skipped" and installs(delivery) == []
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "rejected" and "CHG-200 (release 2026.20) rejected by nina: no" in row.detail
    [note] = [n["message"] for n in delivery.sim.notifications("nimbus")]
    assert f"stays on {INSTALLED}" in note["markdown"]
    assert delivery.repo.installed_version("nimbus").release_id == INSTALLED


def test_pending_approvals_are_waited_for_until_they_arrive(delivery):
    """Sign-off written while the gate waits lets the run go on. (That the waiting gate
    is deferred in the triggerer, holding no worker slot, is shown with the real
    scheduler in test_scheduler_runs.py: dag.test() runs triggers inline.)"""
    started = threading.Event()

    def sign_off_while_waiting():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not delivery.repo.delivery("nimbus", TARGET):
            time.sleep(0.2)
        started.set()
        time.sleep(3)  # several polls find nothing yet
        # the oldest release last: until then nothing at all is installable, and the gate waits
        approve(delivery.repo, "nimbus", list(reversed(CHANGES)))

    helper = threading.Thread(target=sign_off_while_waiting, daemon=True)
    helper.start()
    begun = time.monotonic()
    run = deliver(delivery, approval_deadline=pendulum.now("UTC").add(seconds=90).isoformat())
    helper.join(5)
    assert started.is_set()
    assert run.state == "success", delivery.task_states(run)
    assert time.monotonic() - begun >= 3
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "installed"
    first_approval = min(e.created_at for e in delivery.repo.approval_history("nimbus", "CHG-200"))
    assert row.started_at < first_approval < row.finished_at


def test_no_decision_by_the_deadline_skips_the_cycle_and_rolls_over(delivery):
    run = deliver(delivery, approval_deadline=pendulum.now("UTC").add(seconds=2).isoformat())
    assert delivery.task_states(run)["install"] == "skipped"
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "skipped" and row.detail.startswith("not approved by install day: CHG-200")
    assert "rolls over to the next cycle" in row.detail
    assert installs(delivery) == []
    [note] = [n["message"] for n in delivery.sim.notifications("nimbus")]
    assert note["subject"] == f"Nimbus Connect {TARGET} will not be installed"

    # the next run (the next cycle) brings the same changes; signed off now, they install
    approve(delivery.repo, "nimbus")
    run = deliver(delivery)
    assert run.state == "success" and delivery.repo.delivery("nimbus", TARGET).status == "installed"
    assert delivery.repo.delivery("nimbus", TARGET).attempt == 2


def test_a_transient_install_failure_is_retried(delivery):
    approve(delivery.repo, "nimbus")
    delivery.sim.oem("nimbus", install_failures=2)
    run = deliver(delivery)
    assert run.state == "success", delivery.task_states(run)
    outcomes = [h.get("outcome") for h in installs(delivery)]
    assert outcomes == ["transient_failure", "transient_failure", "installed"]
    assert delivery.repo.side_effect(f"install:nimbus:{TARGET}:1").attempts == 3
    assert delivery.repo.delivery("nimbus", TARGET).status == "installed"


def test_a_failed_health_check_rolls_back(delivery):
    approve(delivery.repo, "nimbus")
    delivery.sim.oem("nimbus", break_on_install=True)
    run = deliver(delivery)
    states = delivery.task_states(run)
    assert run.state == "failed"
    assert (states["verify"], states["recover"], states["publish_docs"]) == ("failed", "failed", "upstream_failed")
    instance = delivery.sim.state()["oems"]["nimbus"]
    assert (instance["version"], instance["healthy"]) == (INSTALLED, True)
    assert [h["action"] for h in instance["history"] if h["action"] != "version"] == ["install", "rollback"]
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "rolled_back" and "verification failed" in row.detail
    assert delivery.repo.installed_version("nimbus").release_id == INSTALLED
    [note] = [n["message"] for n in delivery.sim.notifications("nimbus")]
    assert note["subject"] == f"Nimbus Connect {TARGET} was not installed"
    # the vendor hears of the rollback, then of the release halted for any later wave (docs/waves.md)
    alerts = [n["message"]["subject"] for n in delivery.sim.notifications("ava_release_managers")]
    assert alerts == [f"OEM nimbus: delivery of {TARGET} rolled_back", f"Release {TARGET} halted for waves after 1"]

    # a rerun after the rollback is a new attempt: it installs again and says so again
    delivery.sim.oem("nimbus", break_on_install=False)
    again = deliver(delivery)
    assert again.state == "success", delivery.task_states(again)
    assert len(installs(delivery)) == 2 and delivery.repo.delivery("nimbus", TARGET).attempt == 2
    assert delivery.sim.notifications("nimbus")[-1]["message"]["subject"].endswith(f"now runs {TARGET}")


def test_a_freeze_window_installs_nothing(delivery, test_config):
    today = NOW.in_timezone("Europe/Amsterdam").date()
    calendar_file = test_config / "calendar.yaml"
    calendar_file.write_text(
        calendar_file.read_text().replace(
            "freeze_windows: []",
            f"freeze_windows:\n  - {{name: Test freeze, start: {today.subtract(days=1)}, end: {today.add(days=1)}}}",
        )
    )
    approve(delivery.repo, "nimbus")
    run = deliver(delivery)
    assert delivery.task_states(run)["install"] == "skipped"
    assert installs(delivery) == []
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "skipped" and row.detail.startswith("postponed: Test freeze")


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"target_release": "2026.24"}, "release 2026.24 is not in the release database"),
        ({"target_release": "2026.16"}, "release 2026.16 is not in the release database"),
    ],
)
def test_bad_targets_fail_before_touching_the_instance(delivery, conf, message):
    run = deliver(delivery, **conf)
    assert run.state == "failed" and delivery.task_states(run)["plan_delivery"] == "failed"
    assert installs(delivery) == []


def test_a_downgrade_is_refused(delivery):
    delivery.sim.oem("nimbus", version=TARGET)
    delivery.repo.set_installed_version("nimbus", TARGET)
    run = deliver(delivery, target_release=MIDDLE)
    assert delivery.task_states(run)["plan_delivery"] == "failed"
    row = delivery.repo.delivery("nimbus", MIDDLE)
    assert row.status == "failed" and "a downgrade is not a delivery" in row.detail
    assert installs(delivery) == []


def test_missing_connections_fail_at_once(delivery, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_OEM_NIMBUS_SSH")
    run = deliver(delivery)
    assert delivery.task_states(run)["plan_delivery"] == "failed"
    assert delivery.sim.state()["oems"]["nimbus"]["history"] == []  # nothing touched the instance


def test_an_unknown_instance_version_is_flagged_not_overwritten(delivery):
    delivery.sim.oem("nimbus", version="2026.19")
    approve(delivery.repo, "nimbus")
    run = deliver(delivery)
    assert delivery.task_states(run)["plan_delivery"] == "failed"
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "failed" and "reports version '2026.19'" in row.detail
    assert installs(delivery) == [] and delivery.sim.state()["oems"]["nimbus"]["version"] == "2026.19"
    [alert] = [n["message"] for n in delivery.sim.notifications("ava_release_managers")]
    assert alert["subject"] == "OEM nimbus: instance flagged"


def test_a_dry_run_plans_only(delivery):
    approve(delivery.repo, "nimbus")
    run = deliver(delivery, dry_run=True)
    assert delivery.task_states(run)["plan_delivery"] == "skipped"
    assert delivery.repo.delivery("nimbus", TARGET) is None and installs(delivery) == []


def always_open(test_config, oem: str) -> None:
    """The OEM's maintenance window, opened around the clock for this test."""
    oems = test_config / "oems.yaml"
    text = oems.read_text()
    start = text.index(f"id: {oem}")
    line_start = text.index("maintenance_window:", start)
    line_end = text.index("\n", line_start)
    oems.write_text(text[:line_start] + 'maintenance_window: {start: "00:00", end: "00:00"}' + text[line_end:])


def test_the_oem_that_asked_is_told_you_asked_for_this_and_no_other_oem_learns_of_it(delivery, test_config):
    """Nimbus asked for the Vault item, Kestrel did not: both get CHG-220, which delivers
    it; only Nimbus's message and notes say "you asked for this", and nothing of
    Nimbus (name, brand, its feedback) reaches Kestrel, nor anything of Kestrel Nimbus."""
    always_open(test_config, "kestrel")
    repo = delivery.repo
    repo.link_change_roadmap_items("CHG-220", ["vault-secrets"], by="pm.paula")
    secrets = {}
    for oem, item in (("nimbus", "vault-secrets"), ("kestrel", "flow-versioning")):
        title, body = f"{oem} wants item {item} for project Bluebird-{oem}", f"internal budget of {oem}: 40k"
        feedback_id = repo.record_feedback(
            oem_id=oem,
            category="required_functionality",
            title=title,
            body=body,
            submitted_by=f"pm@{oem}",
            channel="portal",
            at=NOW.subtract(days=30),
        )
        repo.link_feedback(feedback_id, item, by="pm.paula")
        secrets[oem] = [title, body, f"pm@{oem}", f"Bluebird-{oem}"]
    for oem in ("nimbus", "kestrel"):
        approve(repo, oem)
        run = deliver(delivery, oem)
        assert run.state == "success", delivery.task_states(run)

    def received(oem: str) -> tuple[str, str]:
        [note] = [n["message"] for n in delivery.sim.notifications(oem)]
        page = delivery.sim.docs(oem)[f"releases/{TARGET}"]
        return note["markdown"] + note["html"], page["markdown"] + page["html"]

    nimbus_message, nimbus_notes = received("nimbus")
    assert "You asked for this: Secrets from HashiCorp Vault is now live (CHG-220)." in nimbus_message
    page = delivery.sim.docs("nimbus")[f"releases/{TARGET}"]
    assert "**you asked for this** (Secrets from HashiCorp Vault)" in page["markdown"]
    assert "you asked for this (Secrets from HashiCorp Vault)</em>" in page["html"]
    kestrel_message, kestrel_notes = received("kestrel")
    assert "Feature 0 of 2026.22" in kestrel_notes  # Kestrel just sees the change
    registry = load_registry()
    for text, other in ((kestrel_message + kestrel_notes, "nimbus"), (nimbus_message + nimbus_notes, "kestrel")):
        oem = registry.oems[other]
        for leak in (oem.id, oem.display_name, oem.brand_name, *secrets[other]):
            assert leak.lower() not in text.lower(), (other, leak)
    assert "asked for" not in (kestrel_message + kestrel_notes).lower()


# -- a manual run with no parameters (issue 16) --------------------------------------------------
def test_a_manual_run_without_params_installs_the_newest_approved_release_in_production(delivery):
    """2026.19 and 2026.21 were never cut: the run aims at 2026.22, the newest release in
    production, on the pinned clock, and installs it without waiting for anything."""
    approve(delivery.repo, "nimbus")
    run = delivery.run("oem_delivery__nimbus")
    states = delivery.task_states(run)
    assert run.state == "success", states
    assert delivery.sim.state()["oems"]["nimbus"]["version"] == TARGET
    row = delivery.repo.delivery("nimbus", TARGET)
    assert (row.status, row.from_release_id) == ("installed", INSTALLED)


def test_a_manual_run_without_params_and_nothing_newer_in_production_ends_at_once(delivery):
    delivery.repo.set_installed_version("nimbus", TARGET)
    delivery.sim.oem("nimbus", version=TARGET)
    started = time.monotonic()
    run = delivery.run("oem_delivery__nimbus")
    states = delivery.task_states(run)
    assert states["plan_delivery"] == "skipped" and states["wait_for_install_date"] == "skipped", states
    assert time.monotonic() - started < 60
    assert delivery.repo.deliveries("nimbus") == [] and installs(delivery) == []


def test_a_two_of_two_policy_waits_for_the_second_approver(delivery, test_config):
    """nimbus signs off by two people: Olga's approval of every change is not enough, the
    gate keeps waiting (and nothing is installed) until Pat approves too."""
    with_policy(test_config, "nimbus", TWO_OF_TWO)
    for change in CHANGES:
        delivery.repo.record_decision(
            oem_id="nimbus", change_id=change, decision=Decision.APPROVED, actor="olga@nimbus",
            channel="portal", approver="Olga Berg", approver_role="qa",
        )  # fmt: skip
    seen_waiting = threading.Event()

    def second_approver():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not delivery.repo.delivery("nimbus", TARGET):
            time.sleep(0.2)
        time.sleep(3)  # several polls see one approval of two
        row = delivery.repo.delivery("nimbus", TARGET)
        if row is not None and row.status == "waiting" and installs(delivery) == []:
            seen_waiting.set()
        for change in CHANGES:
            delivery.repo.record_decision(
                oem_id="nimbus", change_id=change, decision=Decision.APPROVED, actor="pat@nimbus",
                channel="portal", approver="Pat Kim", approver_role="product",
            )  # fmt: skip

    helper = threading.Thread(target=second_approver, daemon=True)
    helper.start()
    run = deliver(delivery, approval_deadline=pendulum.now("UTC").add(seconds=90).isoformat())
    helper.join(5)
    assert seen_waiting.is_set()
    assert run.state == "success", delivery.task_states(run)
    row = delivery.repo.delivery("nimbus", TARGET)
    assert row.status == "installed" and [h["release"] for h in installs(delivery)] == [TARGET]
    pats = [e.created_at for e in delivery.repo.approval_history("nimbus", "CHG-200") if e.approver == "Pat Kim"]
    assert row.started_at < pats[0] < row.finished_at


NIMBUS_MAILBOXES = ["releases@nimbus.example", "qa@nimbus.example"]


@pytest.fixture
def emailed_nimbus(test_config):
    """Nimbus e-mailed (docs/channels.md), written before ``delivery`` wires the connections."""
    oems = yaml.safe_load((test_config / "oems.yaml").read_text())
    next(o for o in oems["oems"] if o["id"] == "nimbus")["email"] = {
        "to": [NIMBUS_MAILBOXES[0]],
        "cc": [NIMBUS_MAILBOXES[1]],
        "from": "Nimbus Connect Releases <no-reply@nimbus.example>",
        "reply_to": "support@nimbus.example",
    }
    (test_config / "oems.yaml").write_text(yaml.safe_dump(oems, sort_keys=False))


def test_an_emailed_oem_gets_its_delivery_update_by_email(emailed_nimbus, delivery):
    approve(delivery.repo, "nimbus")
    run = deliver(delivery)
    assert run.state == "success", delivery.task_states(run)
    assert delivery.sim.notifications("nimbus") == []  # e-mail instead of the HTTP sink
    (received,) = delivery.sim.mail()
    assert sorted(received["rcpt_tos"]) == sorted(NIMBUS_MAILBOXES)
    mail = parse(received["raw"])
    assert mail["Subject"] == f"Your Nimbus Connect instance now runs {TARGET}"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert delivery.repo.side_effect(f"delivery:installed:nimbus:{TARGET}:1").kind == "email"


def test_a_refused_recipient_fails_the_notify_task_and_is_recorded(emailed_nimbus, delivery):
    approve(delivery.repo, "nimbus")
    delivery.sim.refuse_recipients("qa@nimbus.example")
    run = deliver(delivery)
    states = delivery.task_states(run)
    assert run.state == "failed" and states["notify_delivered"] == "failed", states
    assert states["install"] == "success"  # the install stands; only the message failed
    row = delivery.repo.side_effect(f"delivery:installed:nimbus:{TARGET}:1")
    assert (row.kind, row.status) == ("email", "failed") and row.attempts >= 2  # retried, each try recorded
    assert "refused qa@nimbus.example: 550" in row.result["error"]
    assert all(m["rcpt_tos"] == ["releases@nimbus.example"] for m in delivery.sim.mail())  # never silent
