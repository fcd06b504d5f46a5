"""A rollback an OEM asked for, end to end: a real oem_delivery__nimbus run upgrades the
simulator's instance over SSH; nimbus reports a regression and asks to go back in the
portal; staff approve with the CLI; a real oem_rollbacks run puts the instance back over
SSH, records it, republishes its docs page and tells nimbus (white-labelled) and the
vendor. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import warnings

import pendulum
import pytest
import time_machine

from release_pipeline import waves
from release_pipeline.cli import main
from release_pipeline.delivery_process import signoff_of
from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_pipeline.release_calendar import load_calendar
from release_pipeline.tokens import issue_token
from release_train_airflow.portal import create_app

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.e2e

INSTALLED, TARGET = "2026.20", "2026.22"
NOW = pendulum.datetime(2026, 11, 10, 12, tz="UTC")  # after TARGET's install day; nimbus's window is always open


@pytest.fixture(autouse=True)
def pinned_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
def delivered(pipeline):
    """nimbus upgraded from 2026.20 to 2026.22 (two changes, approved) by a real run."""
    repo, train = pipeline.repo, load_calendar()
    repo.record_baseline_release(train.release_by_id(INSTALLED), actor="test", reason="the instance starts here")
    release = train.release_by_id(TARGET)
    changes = [
        Change(
            f"CHG-22{n}", ChangeType.FEATURE, "connectors", f"Feature {n}", "Does things.", False, release.at, TARGET
        )
        for n in range(2)
    ]
    repo.record_release(
        release, changes, changes_since=train.previous(release).at, changes_until=release.at, actor="test"
    )
    repo.set_release_status(TARGET, ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals(TARGET, ["nimbus"])
    for change in changes:
        repo.record_decision(
            oem_id="nimbus", change_id=change.id, decision=Decision.APPROVED, actor="ann", channel="portal"
        )
    repo.set_installed_version("nimbus", INSTALLED)
    pipeline.sim.oem("nimbus", version=INSTALLED)
    conf = {
        "target_release": TARGET,
        "approval_deadline": pendulum.now("UTC").add(minutes=10).isoformat(),
        "gate_poll_seconds": 0.2,
        "verify_grace_seconds": 2,
        "dry_run": False,
    }
    run = pipeline.run("oem_delivery__nimbus", conf=conf)
    assert run.state == "success", pipeline.task_states(run)
    assert pipeline.sim.state()["oems"]["nimbus"]["version"] == TARGET
    return pipeline


def test_a_regression_reported_in_the_portal_is_rolled_back_after_staff_approve(delivered, capsys):
    repo, sim = delivered.repo, delivered.sim
    # the portal, as nimbus (as deployed: no channel secrets; regression_alerts tells the vendor)
    portal = TestClient(create_app(repo), follow_redirects=False)
    portal.post("/login", data={"token": issue_token(repo, oem_id="nimbus", label="ann@nimbus", created_by="t").token})
    page = portal.get("/rollbacks")
    assert f"Ask to go back to {INSTALLED}" in page.text
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)
    form = {"csrf": csrf, "release_id": TARGET}
    assert portal.post("/rollbacks/regressions", data={**form, "description": "Exports fail"}).status_code == 303
    [report] = repo.regression_reports("nimbus")
    assert report.vendor_alerted_at is None and sim.notifications("ava_release_managers") == []
    alerting = delivered.run("regression_alerts")
    assert alerting.state == "success", delivered.task_states(alerting)
    assert repo.regression_report(report.id).vendor_alerted_at is not None
    # the report halts the release for any later wave first (docs/waves.md), then the report itself
    halted = waves.halt_of(repo, TARGET)
    assert (halted.cause, halted.oem_id) == ("regression", "nimbus")
    assert [n["message"]["subject"] for n in sim.notifications("ava_release_managers")] == [
        f"Release {TARGET} halted for waves after 1",
        f"OEM nimbus: regression reported on {TARGET} (report #{report.id})",
    ]
    reply = portal.post("/rollbacks/requests", data={**form, "reason": "Exports fail", "regression_id": report.id})
    assert reply.status_code == 303
    [request] = repo.rollback_requests("nimbus")

    # staff approve with the CLI
    code = main(
        ["--db-url", delivered.db_url, "rollback", "approve", str(request.id), "--reason", "confirmed", "--by", "rita"]
    )
    assert code == 0, capsys.readouterr().err

    # the rollback runs for real, over SSH, in nimbus's (always open) window
    run = delivered.run("oem_rollbacks")
    assert run.state == "success", delivered.task_states(run)
    instance = sim.state()["oems"]["nimbus"]
    assert (instance["version"], instance["healthy"]) == (INSTALLED, True)
    assert [h["action"] for h in instance["history"] if h["action"] != "version"] == ["install", "rollback"]
    row = repo.delivery("nimbus", TARGET)
    assert row.status == "rolled_back" and "rollback requested by the OEM" in row.detail
    assert repo.installed_version("nimbus").release_id == INSTALLED
    assert repo.rollback_request(request.id).status == "done"

    # docs follow the instance back; nimbus told of the decision, then of the rollback
    page = sim.docs("nimbus")[f"releases/{TARGET}"]
    assert page["title"] == f"Nimbus Connect {TARGET}: rolled back, your instance runs {INSTALLED}"
    assert "Feature 0" in page["markdown"]
    told = [n["message"] for n in sim.notifications("nimbus")]
    assert [m["subject"] for m in told[-2:]] == [
        f"Nimbus Connect {TARGET}: your rollback request was approved",
        f"Your Nimbus Connect instance runs {INSTALLED} again",
    ]
    assert not any("AVA" in m["markdown"] + m["html"] + m["subject"] for m in told) and "AVA" not in str(page)
    vendor = [n["message"]["subject"] for n in sim.notifications("ava_release_managers")]
    assert vendor[-1] == f"OEM nimbus: rolled back from {TARGET} to {INSTALLED} (request #{request.id})"

    # the portal shows it done; the next cycle asks again for exactly what the instance no longer runs
    assert "done: your instance runs the earlier version again" in portal.get("/rollbacks").text
    pending = signoff_of(repo, "nimbus", INSTALLED, TARGET)
    assert not pending.complete and [r.pending for r in pending.releases] == [("CHG-220", "CHG-221")]
    again = delivered.run("oem_rollbacks")  # nothing more to do, nothing sent twice
    assert again.state == "success" and len(sim.notifications("nimbus")) == len(told)
