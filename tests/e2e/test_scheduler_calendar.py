"""Delivery on the calendar, through the real scheduler and triggerer (`make up`'s shape).

The test owns its calendar: a weekly train whose next cycle's release is cut a few
minutes after the stack starts, with install day that same moment
(``delivery_offset_days: 0``), so the scheduler's own run of the cycle (a DAG turned on
mid-cycle starts with the next one), with no params, is the run under test. Nothing
depends on the date the suite runs on.

- nimbus approved everything: the scheduled run installs the cycle's release (R1).
- orbitel approved everything, then rejects a change while its run waits, deferred, for
  the maintenance window: the install's last look stops the delivery (R3).
"""

from __future__ import annotations

import shutil

import httpx
import pendulum
import pytest

from devstack.stack import Stack, StackConfig, free_port, wait_until
from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_pipeline.release_calendar import load_calendar
from release_pipeline.tokens import issue_token
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

TZ = "Europe/Amsterdam"
CUT_IN_MINUTES = 5  # the stack is up and the DAGs are on by then (asserted)
WINDOW_OPENS_AFTER_CUT_MINUTES = 2


@pytest.fixture(scope="module")
def now():
    return pendulum.now(TZ)


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory, now):
    config = tmp_path_factory.mktemp("config")
    shutil.copytree(REPO / "config", config, dirs_exist_ok=True)
    cut = now.add(minutes=CUT_IN_MINUTES).start_of("minute")
    (config / "calendar.yaml").write_text(
        f'timezone: {TZ}\nanchor: {cut.date()}\nrelease_time: "{cut:%H:%M}"\ncadence_weeks: 1\n'
        "releases_per_cycle: 1\ndelivery_offset_days: 0\nfreeze_windows: []\n"
    )
    opens = cut.in_timezone("America/New_York").add(minutes=WINDOW_OPENS_AFTER_CUT_MINUTES)
    oems = config / "oems.yaml"
    text = oems.read_text()
    start = text.index("maintenance_window:", text.index("id: orbitel"))
    end = text.index("\n", start)
    window = f'maintenance_window: {{start: "{opens:%H:%M}", end: "{opens.add(hours=2):%H:%M}"}}'
    oems.write_text(text[:start] + window + text[end:])
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory, config_dir):
    train = load_calendar(config_dir / "calendar.yaml")
    config = StackConfig(
        home=tmp_path_factory.mktemp("stack"),
        api_port=free_port(),
        baseline_release=train.release(-1).id,
        config_dir=config_dir,
        demo_changes=False,
        log_server_ports=None,
        parallelism=4,
    )
    with Stack(config) as running:
        yield running


def test_scheduled_runs_install_on_install_day_and_a_rejection_before_the_window_stops_the_install(stack, config_dir):
    train = load_calendar(config_dir / "calendar.yaml")
    release = train.release(0)  # the coming cycle's release; in production already, approved by both
    repo = stack.repository()
    changes = [
        Change(f"CHG-{n}", ChangeType.FEATURE, "core", f"Feature {n}", "", False, release.at.subtract(hours=n + 1))
        for n in range(2)
    ]
    repo.record_release(release, changes, changes_since=train.release(-1).at, changes_until=release.at, actor="t")
    repo.set_release_status(release.id, ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals(release.id, ["nimbus", "orbitel"])
    for oem in ("nimbus", "orbitel"):
        for change in changes:
            repo.record_decision(oem_id=oem, change_id=change.id, decision=Decision.APPROVED, actor="qa", channel="cli")

    for dag_id in ("oem_delivery__nimbus", "oem_delivery__orbitel"):
        stack.wait_for_dag(dag_id)  # unpaused: the scheduler creates the cycle's run itself
    assert pendulum.now("UTC") < release.at, "the stack came up after the cycle's release: raise CUT_IN_MINUTES"
    runs = {oem: scheduled_run(stack, f"oem_delivery__{oem}") for oem in ("nimbus", "orbitel")}
    for run in runs.values():
        assert run["run_type"] == "scheduled" and run["conf"] in ({}, None), run

    # R1: nimbus, approved in full, gets the cycle's release on install day, unasked
    assert stack.wait_for_run("oem_delivery__nimbus", runs["nimbus"]["dag_run_id"], 300) == "success"
    assert stack.sim.state()["oems"]["nimbus"]["version"] == release.id
    assert repo.delivery("nimbus", release.id).status == "installed"

    # orbitel's run waits, deferred at its gate, until its maintenance window opens (sign-off is
    # taken until then, though it approved in full); a rejection arrives, and counts
    orbitel_run = runs["orbitel"]["dag_run_id"]
    wait_until(
        lambda: (
            (ti := stack.task_instance("oem_delivery__orbitel", orbitel_run, "install"))["state"] == "deferred"
            and (ti["trigger"] or {}).get("classpath") == "release_train_airflow.triggers.ApprovalGateTrigger"
        ),
        240,
        "orbitel's run to wait at its gate for its maintenance window",
    )
    token = issue_token(repo, oem_id="orbitel", label="e2e", created_by="test").token
    rejected = httpx.post(
        f"{stack.api.base_url}/oem-portal/api/v1/releases/{release.id}/decisions",
        json={"decision": "rejected", "changes": ["CHG-1"], "comment": "breaks our billing export"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rejected.status_code == 201, rejected.text
    assert stack.wait_for_run("oem_delivery__orbitel", orbitel_run, 600) == "success"
    states = stack.task_states("oem_delivery__orbitel", orbitel_run)
    assert states["install"] == "skipped", states
    history = stack.sim.state()["oems"]["orbitel"]["history"]
    assert [h for h in history if h["action"] == "install"] == []
    row = repo.delivery("orbitel", release.id)
    assert row.status == "rejected" and "breaks our billing export" in row.detail
    told = [n["message"]["subject"] for n in stack.sim.notifications("orbitel")]
    assert f"OrbitLink Integrate {release.id} will not be installed" in told
    alerts = [n["message"]["markdown"] for n in stack.sim.notifications("ava_release_managers")]
    assert any("breaks our billing export" in a for a in alerts)
    repo.engine.dispose()


def scheduled_run(stack: Stack, dag_id: str) -> dict:
    def first_run():
        try:
            return next(iter(http.get(f"/dags/{dag_id}/dagRuns").json()["dag_runs"]), None)
        except httpx.TimeoutException:  # a busy api-server: ask again
            return None

    with stack.api.client() as http:
        return wait_until(first_run, 60 * (CUT_IN_MINUTES + 3), f"the scheduler to create {dag_id}'s run of the cycle")
