"""The release train through the real scheduler, in `make up`'s shape (SQLite metadata
and release databases, LocalExecutor, a triggerer): a biweekly release, then an OEM
delivery whose approval gate waits in the triggerer, holding no worker slot, until
the OEM signs off through the portal API."""

from __future__ import annotations

import shutil
import time
from urllib.parse import quote

import httpx
import pendulum
import pytest

from devstack.stack import Stack, StackConfig, free_port, wait_until
from release_pipeline.models import ReleaseStatus
from release_pipeline.tokens import issue_token
from release_train_airflow.dag_defaults import WATCHER_TASK_ID
from tests.builders import feed_changes
from tests.conftest import REPO
from tests.e2e.conftest import TEST_CALENDAR, HitlAnswer

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
            (ti := stack.task_instance("oem_delivery__nimbus", delivery_run, "install"))["state"] == "deferred"
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
    assert [h for h in stack.sim.state()["oems"]["nimbus"]["history"] if h["action"] == "install"] == []

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


def failure_notices(stack, run_id: str) -> list[dict]:
    return [
        n
        for n in stack.sim.notifications("ava_release_managers")
        if n["message"].get("kind") == "run_failed" and n["message"].get("run_id") == run_id
    ]


def test_a_failed_run_tells_the_release_channel_exactly_once(stack):
    """The change feed answers garbage: production_release fails at cut_release, and the
    DAG processor runs the DAG-level failure notifier: one message in the vendor's release
    channel naming the DAG, the task, the release, and linking the run. The same for an
    OEM delivery run, which names its OEM too."""
    stack.wait_for_dag("production_release")
    stack.wait_for_dag("oem_delivery__nimbus")
    stack.sim.set_feed_raw('{"changes": [{"id": "CHG-1", "type": "feature", "component": "x"}]}')
    try:
        # newer than every release the shared stack records: a cut behind the train is never made
        release_run = stack.trigger("production_release", {"release_id": "2027.10"})
        assert stack.wait_for_run("production_release", release_run) == "failed"
    finally:
        stack.sim.set_feed_raw(None)
    delivery_run = stack.trigger("oem_delivery__nimbus", {"target_release": "2026.99"})  # names no release
    assert stack.wait_for_run("oem_delivery__nimbus", delivery_run) == "failed"

    expected = {
        release_run: ("production_release", "cut_release", None, "2027.10"),
        # recover (ONE_FAILED) may run after the failed plan and fail too: then named after the cause
        delivery_run: ("oem_delivery__nimbus", "plan_delivery", "nimbus", "2026.99"),
    }
    for run_id in expected:
        wait_until(lambda run_id=run_id: failure_notices(stack, run_id), 120, f"the failure notice of {run_id}")
    time.sleep(5)  # a second message would have arrived by now
    for run_id, (dag_id, task_id, oem_id, release_id) in expected.items():
        [notice] = failure_notices(stack, run_id)
        message = notice["message"]
        url = f"{stack.api.base_url.replace('127.0.0.1', 'localhost')}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
        assert (message["dag_id"], message["failed_tasks"][0], message["oem_id"], message["release_id"]) == (
            dag_id,
            task_id,
            oem_id,
            release_id,
        ), message
        assert message["url"] == url
        assert message["subject"] == f"Run of {dag_id} failed: {', '.join(message['failed_tasks'])}"
        assert WATCHER_TASK_ID not in message["failed_tasks"]
        assert url in message["markdown"] and f"Release: {release_id}" in message["markdown"]
        assert notice["idempotency_key"] == f"run_failed:{dag_id}:{run_id}:0"
