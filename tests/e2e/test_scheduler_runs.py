"""The release train through the real scheduler, in `make up`'s shape (SQLite metadata
and release databases, LocalExecutor, a triggerer): a biweekly release, then an OEM
delivery whose approval gate waits in the triggerer, holding no worker slot, until
the OEM signs off through the portal API."""

from __future__ import annotations

import shutil

import httpx
import pendulum
import pytest

from devstack.stack import Stack, StackConfig, free_port, wait_until
from release_pipeline.models import ReleaseStatus
from release_pipeline.tokens import issue_token
from tests.conftest import REPO
from tests.e2e.conftest import TEST_CALENDAR, HitlAnswer
from tests.e2e.test_production_release import feed_changes

pytestmark = pytest.mark.e2e

BASELINE, TARGET = "2026.20", "2026.22"  # TARGET's install date has passed


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config_dir = tmp_path_factory.mktemp("config")  # the shipped config without its real freeze windows
    shutil.copytree(REPO / "config", config_dir, dirs_exist_ok=True)
    (config_dir / "calendar.yaml").write_text(TEST_CALENDAR)
    config = StackConfig(
        home=tmp_path_factory.mktemp("stack"),
        config_dir=config_dir,
        api_port=free_port(),
        baseline_release=BASELINE,
        demo_changes=False,
        log_server_ports=None,
        parallelism=4,
    )
    with Stack(config) as running:
        yield running


def test_release_and_delivery_through_the_scheduler_and_triggerer(stack):
    stack.sim.add_changes(feed_changes(TARGET, count=2))
    stack.sim.production(deploy_seconds=0)
    for dag_id in ("production_release", "oem_delivery__nimbus"):
        stack.wait_for_dag(dag_id)

    qa = HitlAnswer(stack.api, "production_release", "qa_signoff", "Approve", {"reason": "QA green"})
    qa.start()
    release_run = stack.trigger("production_release", {"release_id": TARGET})
    assert stack.wait_for_run("production_release", release_run) == "success", stack.task_states(
        "production_release", release_run
    )
    assert qa.error is None and qa.answered is not None
    repo = stack.repository()
    assert repo.release(TARGET).status == ReleaseStatus.DEPLOYED
    assert len(repo.approval_requests("nimbus", TARGET)) == 2
    assert [n["message"]["kind"] for n in stack.sim.notifications("nimbus")] == ["signoff_request"]

    delivery_run = stack.trigger(
        "oem_delivery__nimbus",
        {
            "target_release": TARGET,
            "approval_deadline": pendulum.now("UTC").add(minutes=15).isoformat(),
            "gate_poll_seconds": 1,
        },
    )
    gate = wait_until(
        lambda: (
            (ti := stack.task_instance("oem_delivery__nimbus", delivery_run, "approval_gate"))["state"] == "deferred"
            and ti["triggerer_job"]
            and ti
        ),
        240,
        "the approval gate to defer and a triggerer to run its trigger",
    )
    # deferred: the trigger runs in the triggerer, and no task of the run holds a worker slot
    assert gate["trigger"]["classpath"] == "release_train_airflow.triggers.ApprovalGateTrigger"
    states = stack.task_states("oem_delivery__nimbus", delivery_run)
    assert "running" not in states.values(), states
    assert states["install"] is None  # nothing installed while waiting

    token = issue_token(repo, oem_id="nimbus", label="e2e", created_by="test").token
    signed = httpx.post(
        f"{stack.api.base_url}/oem-portal/api/v1/releases/{TARGET}/decisions",
        json={"decision": "approved"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert signed.status_code == 201, signed.text
    assert stack.wait_for_run("oem_delivery__nimbus", delivery_run) == "success", stack.task_states(
        "oem_delivery__nimbus", delivery_run
    )
    assert stack.sim.state()["oems"]["nimbus"]["version"] == TARGET
    assert repo.delivery("nimbus", TARGET).status == "installed"
    assert repo.installed_version("nimbus").release_id == TARGET
    repo.engine.dispose()


def test_an_instant_qa_answer_through_the_scheduler_still_releases(stack):
    """A QA bot answers over REST the moment the sign-off request appears. Airflow 3.3.2
    can then mark the parking try failed (executor reports success, the TI is already
    queued for the resume); the retry goes on with the answer recorded, asks no one
    again, and the release reaches production."""
    release = "2026.23"
    stack.sim.add_changes(feed_changes(release, count=1))
    stack.sim.production(deploy_seconds=0)
    stack.wait_for_dag("production_release")

    bot = HitlAnswer(
        stack.api, "production_release", "qa_signoff", "Approve", {"reason": "QA bot: all green"}, min_age_seconds=0
    )
    bot.start()
    run = stack.trigger("production_release", {"release_id": release})
    state = stack.wait_for_run("production_release", run)
    signoff = stack.task_instance("production_release", run, "qa_signoff")
    assert state == "success", (stack.task_states("production_release", run), signoff)
    assert bot.error is None and bot.answered is not None
    answered_after = pendulum.parse(bot.answered["responded_at"]) - pendulum.parse(bot.asked_at)
    assert answered_after.total_seconds() < 2, answered_after  # really at once
    print(f"answered {answered_after.total_seconds():.2f} s after the request; qa_signoff try {signoff['try_number']}")

    repo = stack.repository()
    assert repo.release(release).status == ReleaseStatus.DEPLOYED
    approvals = [(e.actor, e.detail) for e in repo.release_events(release) if e.event == ReleaseStatus.QA_APPROVED]
    assert approvals == [("admin", "QA bot: all green")]  # the bot's answer, recorded once
    assert [d["release_id"] for d in stack.sim.state()["deployments"].values()].count(release) == 1
    repo.engine.dispose()
