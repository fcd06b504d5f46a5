"""``CheckThenDeferOperator`` and its waits: one check in the worker, then a deferral
to the right trigger (no worker slot while waiting), and ``execute_complete`` turning
the trigger's one event into the task's result, or into a loud failure."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
import time_machine
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_train_airflow.operators import (
    ApprovalGateOperator,
    CheckThenDeferOperator,
    WaitForHttpStatusOperator,
    WaitForReleasesSettledOperator,
)
from release_train_airflow.triggers import ApprovalGateTrigger, MomentTrigger, ReleasesSettledTrigger
from simulator.connections import as_environment, release_db_connection

NOW = pendulum.datetime(2026, 5, 14, 9, tz="UTC")


class Waiter(CheckThenDeferOperator):
    """The smallest wait: ``check`` answers what the test set, the trigger is a clock."""

    def __init__(self, *, ready=None, **kwargs):
        super().__init__(task_id="wait", **kwargs)
        self.ready = ready

    def check(self, context):
        return self.ready

    def make_trigger(self, context, deadline: str) -> MomentTrigger:
        return MomentTrigger(moment=deadline, poll_interval=self.poll_interval)

    def deadline_reason(self, event: dict) -> str:
        return f"still waiting at {event['deadline']}"


def deferral(operator: CheckThenDeferOperator, context=None, method: str = "execute_complete") -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context or {})
    assert deferred.value.method_name == method
    return deferred.value


def test_a_check_that_passes_does_not_defer():
    assert Waiter(ready={"value": 1}).execute({}) == {"value": 1}


def test_a_pending_check_defers_until_max_wait():
    with time_machine.travel(NOW, tick=False):
        deferred = deferral(Waiter(poll_interval=7, max_wait=dt.timedelta(hours=2)))
    assert isinstance(deferred.trigger, MomentTrigger)
    assert deferred.trigger.serialize()[1] == {"moment": NOW.add(hours=2).isoformat(), "poll_interval": 7}


def test_an_absolute_deadline_wins_over_max_wait():
    deadline = NOW.add(days=3).isoformat()
    deferred = deferral(Waiter(deadline=deadline, max_wait=dt.timedelta(minutes=1)))
    assert deferred.trigger.moment == deadline


def test_execute_complete_returns_the_result_of_a_done_event():
    event = {"status": "done", "at": NOW.isoformat()}
    assert Waiter().execute_complete({}, event) == event


def test_a_deadline_event_fails_the_task_with_the_reason():
    with pytest.raises(AirflowFailException, match="still waiting at 2026-05-14"):
        Waiter().execute_complete({}, {"status": "deadline", "deadline": NOW.isoformat()})


def test_an_unexpected_event_fails_loudly():
    with pytest.raises(AirflowException, match="wait: unexpected trigger event .*'error'"):
        Waiter().execute_complete({}, {"status": "error", "message": "boom"})


def test_finish_at_deadline_may_be_overridden():
    class Lenient(Waiter):
        def finish_at_deadline(self, context, event):
            return {"gave_up": event["deadline"]}

    assert Lenient().execute_complete({}, {"status": "deadline", "deadline": "x"}) == {"gave_up": "x"}


# -- the release train's waits ------------------------------------------------------------------
def test_http_status_wait_makes_its_trigger_and_reads_its_events():
    operator = WaitForHttpStatusOperator(
        task_id="qa_verdict",
        http_conn_id="qa_system",
        endpoint="releases/2026.24",
        field="status",
        terminal_values=["passed", "failed"],
        poll_interval=5,
    )
    trigger = operator.make_trigger({}, NOW.isoformat())
    assert trigger.serialize()[1] == {
        "http_conn_id": "qa_system",
        "endpoint": "releases/2026.24",
        "field": "status",
        "terminal_values": ["passed", "failed"],
        "poll_interval": 5,
        "deadline": NOW.isoformat(),
    }
    assert operator.execute_complete({}, {"status": "done", "value": "passed", "body": {}}) == "passed"
    with pytest.raises(AirflowFailException, match=r"qa_system/releases/2026.24: status still 'running' at"):
        operator.execute_complete({}, {"status": "deadline", "value": "running", "deadline": NOW.isoformat()})


@pytest.fixture
def release_db(repo, calendar, release_db_url, monkeypatch):
    """2026.24 deployed with one change asked of nimbus (an OEM of config/); 2026.23 QA-approved."""
    from release_train_airflow import resources

    for release_id, status in (("2026.23", ReleaseStatus.QA_APPROVED), ("2026.24", ReleaseStatus.DEPLOYED)):
        release = calendar.release_by_id(release_id)
        change = Change(f"C-{release_id}", ChangeType.FIX, "core", "x", "", False, release.at, release_id)
        repo.record_release(
            release, [change], changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
        )
        repo.set_release_status(release_id, status, actor="test")
    repo.request_approvals("2026.24", ["nimbus"])
    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    yield repo
    resources.reset_caches()


def test_releases_settled_wait_checks_the_release_db_then_defers(release_db):
    settled = WaitForReleasesSettledOperator(task_id="settled", release_ids=["2026.24"], poll_interval=30)
    assert settled.execute({}) == {"2026.24": "deployed"}

    waiting = WaitForReleasesSettledOperator(task_id="settled", release_ids=["2026.23", "2026.24"], poll_interval=30)
    with time_machine.travel(NOW, tick=False):
        # the trigger waits one leg of RECHECK_POLLS polls, then the worker looks again
        deferred = deferral(waiting, method="resume")
    assert isinstance(deferred.trigger, ReleasesSettledTrigger)
    assert deferred.trigger.release_ids == ["2026.23", "2026.24"]
    assert set(deferred.trigger.final_statuses) == set(WaitForReleasesSettledOperator.FINAL)
    until = deferred.kwargs["until"]
    assert pendulum.parse(deferred.trigger.deadline) == NOW.add(
        seconds=30 * WaitForReleasesSettledOperator.RECHECK_POLLS
    )
    assert pendulum.parse(until) == NOW.add(seconds=waiting.max_wait.total_seconds())
    leg_over = {"status": "deadline", "unsettled": ["2026.23"], "statuses": {}, "deadline": deferred.trigger.deadline}
    # a leg ended before the run's deadline: look again
    with (
        time_machine.travel(pendulum.parse(deferred.trigger.deadline), tick=False),
        pytest.raises(TaskDeferred) as again,
    ):
        waiting.resume({}, leg_over, until=until)
    assert again.value.method_name == "resume" and again.value.kwargs == {"until": until}
    not_settled = r"releases \['2026.23'\] not settled by"
    with time_machine.travel(pendulum.parse(until), tick=False), pytest.raises(AirflowFailException, match=not_settled):
        waiting.resume({}, {**leg_over, "deadline": until}, until=until)


def gate_operator(settle_in: dt.timedelta = -dt.timedelta(minutes=1), **overrides) -> ApprovalGateOperator:
    """The gate of an OEM that installs as soon as it approves, its install day's window
    open (``settle_in`` from now: already) and its cycle not over."""
    now = pendulum.now("UTC")
    args = {
        "task_id": "approval_gate",
        "plan": {
            "oem_id": "nimbus",
            "installed": "2026.22",
            "aim": "2026.24",
            "settle_at": (now + settle_in).isoformat(),
            "deadline": now.add(days=2).isoformat(),
        },
        "poll_interval": 30,
        "max_outage_seconds": 600,
    }
    return ApprovalGateOperator(**{**args, **overrides})


def test_approval_gate_defers_while_a_change_is_pending(release_db):
    operator = gate_operator()
    deferred = deferral(operator)
    assert isinstance(deferred.trigger, ApprovalGateTrigger)
    assert deferred.trigger.serialize()[1] == {
        "oem_id": "nimbus",
        "after_release_id": "2026.22",
        "until_release_id": "2026.24",
        "poll_interval": 30.0,
        "settle_at": operator.plan["settle_at"],
        "deadline": operator.plan["deadline"],
        "max_outage_seconds": 600.0,
        "release_db_conn_id": "release_db",
    }
    event = {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}
    assert operator.execute_complete({}, event) == {"outcome": "settled", "summary": event["summary"]}


def test_approval_gate_does_not_defer_once_signed_off(release_db):
    # 2026.24 was built after 2026.23 was cut: an instance getting it runs both changes
    for change_id in ("C-2026.23", "C-2026.24"):
        release_db.record_decision(
            oem_id="nimbus", change_id=change_id, decision=Decision.APPROVED, actor="a", channel="cli"
        )
    assert gate_operator().execute({}) == {"outcome": "settled", "summary": "every change up to 2026.24 approved"}
    # before install day's window opens the OEM may still change its mind: the gate waits
    assert isinstance(deferral(gate_operator(settle_in=dt.timedelta(hours=1))).trigger, ApprovalGateTrigger)


def test_approval_gate_defers_through_a_release_db_outage(monkeypatch):
    """The worker's check cannot reach the database: the trigger waits it out."""
    from release_train_airflow import resources

    monkeypatch.setenv("AIRFLOW_CONN_RELEASE_DB", '{"conn_type": "postgres", "host": "127.0.0.1", "port": 1}')
    resources.reset_caches()
    try:
        assert isinstance(deferral(gate_operator()).trigger, ApprovalGateTrigger)
    finally:
        resources.reset_caches()


def test_the_install_waits_for_the_oems_maintenance_window_without_a_worker_slot():
    """Settled outside orbitel's window (Tue, Thu, Sat 22:00-04:00 New York): the install
    task defers to a clock trigger at the window's opening, and comes back to
    ``in_window`` with its plan; nothing reaches the instance before."""
    from release_train_airflow.delivery import InstallWhenSignedOffOperator

    operator = InstallWhenSignedOffOperator(task_id="install", plan={"oem_id": "orbitel"})
    plan = {"oem_id": "orbitel", "target": "2026.24"}
    thursday_morning = pendulum.datetime(2026, 12, 3, 10, tz="America/New_York")
    with time_machine.travel(thursday_morning, tick=False), pytest.raises(TaskDeferred) as deferred:
        operator.in_window({}, plan=plan)
    assert deferred.value.method_name == "in_window" and deferred.value.kwargs == {"plan": plan}
    assert isinstance(deferred.value.trigger, MomentTrigger)
    assert pendulum.parse(deferred.value.trigger.moment) == pendulum.datetime(2026, 12, 3, 22, tz="America/New_York")


def test_upstream_results_are_pulled_wherever_an_argument_holds_them():
    """takes_upstream_results: the edges a templated XCom reference would draw, and the
    values pulled when the task's templates are rendered, inside lists and dicts too."""
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    from release_train_airflow.delivery import DeliveryStep

    def step(*args, context):
        return args

    with DAG("upstream_results", schedule=None, start_date=NOW):
        first, second = EmptyOperator(task_id="first"), EmptyOperator(task_id="second")
        task = DeliveryStep.of(step, "nimbus", first.output, {"plan": second.output["plan"], "n": 2})
    assert task.upstream_task_ids == {"first", "second"}
    assert task.template_fields == ()

    class PulledXComs:
        def xcom_pull(self, *, task_ids, key, **_):
            return f"{task_ids}:{key}"

    task.render_template_fields({"ti": PulledXComs()})
    assert task.execute({}) == ("nimbus", "first:return_value", {"plan": "second:plan", "n": 2})
