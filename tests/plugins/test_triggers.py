"""The release train's triggers, driven as async generators the way Airflow's providers
test theirs: a serialize round-trip, exactly one event, error events, the deadline and
the outage path, on real SQLite and PostgreSQL release databases."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
import time_machine
from airflow.sdk.module_loading import import_string
from sqlalchemy import create_engine, text

from release_pipeline.models import Decision
from release_train_airflow.triggers import (
    ApprovalGateTrigger,
    HitlAnswerTrigger,
    HttpStatusTrigger,
    MomentTrigger,
    ReleasesSettledTrigger,
)
from tests.builders import TWO_OF_TWO, with_policy

NOW = pendulum.datetime(2026, 5, 14, 9, tz="UTC")


def first_event(trigger, timeout: float = 30):
    """The trigger's one event; fails when it yields a second one."""

    async def take():
        events = trigger.run()
        event = await asyncio.wait_for(anext(events), timeout)
        with pytest.raises(StopAsyncIteration):  # exactly one event
            await asyncio.wait_for(anext(events), timeout)
        return event.payload

    return asyncio.run(take())


def gate(conn_id: str = "release_db", **overrides) -> ApprovalGateTrigger:
    """A gate after install day's window opened, of an OEM that installs as soon as it
    approves (the gate still waits, until ``deadline``): a decision settles it at once."""
    now = pendulum.now("UTC")
    args = {
        "oem_id": "acme",
        "after_release_id": "2026.22",
        "until_release_id": "2026.24",
        "poll_interval": 0.05,
        "settle_at": now.subtract(minutes=1).isoformat(),
        "deadline": now.add(hours=1).isoformat(),
        "release_db_conn_id": conn_id,
        **overrides,
    }
    return ApprovalGateTrigger(**args)


# -- serialize: the triggerer re-creates the very trigger the task deferred to ----------------
EVERY_TRIGGER = [
    HttpStatusTrigger(
        http_conn_id="qa_system",
        endpoint="/releases/2026.24",
        field="status",
        terminal_values=["passed", "failed"],
        poll_interval=5.0,
        deadline=NOW.isoformat(),
    ),
    ReleasesSettledTrigger(
        release_ids=["2026.23", "2026.24"], final_statuses=["deployed"], poll_interval=30.0, release_db_conn_id="db"
    ),
    gate(max_outage_seconds=12.5),
    MomentTrigger(moment=NOW.isoformat(), poll_interval=60.0),
    HitlAnswerTrigger(ti_id="0190b1a2-0000-7000-8000-000000000000"),
]


@pytest.mark.parametrize("trigger", EVERY_TRIGGER, ids=lambda t: type(t).__name__)
def test_serialize_round_trips(trigger):
    path, kwargs = trigger.serialize()
    assert import_string(path) is type(trigger)
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain JSON: nothing but ids, endpoints and times
    again = import_string(path)(**kwargs)
    assert again.serialize() == (path, kwargs)


def test_serialize_holds_every_argument_and_nothing_else():
    path, kwargs = gate(max_outage_seconds=12.5).serialize()
    assert path == "release_train_airflow.triggers.ApprovalGateTrigger"
    assert set(kwargs) == {
        "oem_id",
        "after_release_id",
        "until_release_id",
        "poll_interval",
        "settle_at",
        "deadline",
        "max_outage_seconds",
        "release_db_conn_id",
    }
    assert kwargs["max_outage_seconds"] == 12.5


# -- ApprovalGateTrigger ----------------------------------------------------------------------
def test_full_approval_ends_the_wait(released):
    released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")
    event = first_event(gate())
    assert event == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}


def test_a_change_carried_from_a_release_rejected_in_qa_holds_the_gate_until_approved(released):
    """2026.23 never reached production, but 2026.24 was built after it: its change is in
    what the instance would run, so the gate waits for it and a rejection of it settles."""
    released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")
    released.record_decision(
        oem_id="acme", change_id="C-2026.23", decision=Decision.REJECTED, actor="a", channel="cli", comment="no"
    )
    event = first_event(gate(), timeout=5)
    assert event["outcome"] == "settled" and "C-2026.23 (release 2026.23) rejected" in event["summary"]


def test_an_approval_given_while_waiting_ends_the_wait(released):
    def approve_soon():
        released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")

    timer = threading.Timer(0.3, approve_soon)
    timer.start()
    try:
        event = first_event(gate())
    finally:
        timer.join()
    assert event["outcome"] == "settled"


def test_a_rejection_settles_at_once(released):
    released.record_decision(
        oem_id="acme", change_id="C-24", decision=Decision.REJECTED, actor="a", channel="cli", comment="breaks us"
    )
    event = first_event(gate(), timeout=5)  # long before the deadline
    assert event["outcome"] == "settled" and "rejected" in event["summary"]


@pytest.mark.parametrize("decision", [Decision.APPROVED, Decision.REJECTED])
def test_before_install_days_window_opens_a_decision_does_not_settle_the_gate(released, decision):
    """Until the window opens the OEM may still change its mind: the gate settles at the
    opening on what is decided then, not at the first full sign-off or rejection."""
    released.record_decision(oem_id="acme", change_id="C-24", decision=decision, actor="a", channel="cli", comment="no")
    opens = pendulum.now("UTC").add(seconds=0.5)
    event = first_event(gate(settle_at=opens.isoformat(), deadline=opens.isoformat()), timeout=10)
    assert pendulum.now("UTC") >= opens
    assert event["outcome"] == "settled"


def test_install_days_window_opening_ends_the_wait(released):
    now = pendulum.now("UTC")
    event = first_event(gate(settle_at=now.add(seconds=0.3).isoformat(), deadline=now.add(seconds=0.3).isoformat()))
    assert event["outcome"] == "deadline" and "C-24 (release 2026.24) not signed off" in event["summary"]


def test_a_release_database_outage_is_polled_through_then_reported(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", '{"conn_type": "postgres", "host": "127.0.0.1", "port": 1}')
    started = pendulum.now("UTC")
    event = first_event(gate("down_db", max_outage_seconds=0.5))
    assert event["outcome"] == "outage" and "unreachable" in event["summary"]
    assert (pendulum.now("UTC") - started).total_seconds() >= 0.5


def test_a_short_outage_does_not_end_a_gate_at_the_default_limit(monkeypatch):
    """A gate built as the DAG builds it (the default limit) waits through a second of
    outage: an outage limit near 0 s would give the cycle up at the first failed read."""
    from release_train_airflow.triggers import GATE_MAX_OUTAGE_SECONDS

    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", '{"conn_type": "postgres", "host": "127.0.0.1", "port": 1}')
    trigger = gate("down_db")  # the trigger's own default limit
    assert trigger.max_outage_seconds == GATE_MAX_OUTAGE_SECONDS

    async def one_second():
        events = trigger.run()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(events), 1.0)

    asyncio.run(one_second())
    assert GATE_MAX_OUTAGE_SECONDS >= 600


# -- ReleasesSettledTrigger ---------------------------------------------------------------------
# -- the OEM's sign-off policy, read from config/ ---------------------------------------------
@pytest.fixture
def config_with_policy(tmp_path, monkeypatch):
    """The shipped config with nimbus signing off by two people, as every reader finds it."""

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", config)
    with_policy(config, "nimbus", TWO_OF_TWO)
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(config))
    return config


def test_the_gate_applies_the_oems_policy_as_config_says_at_each_poll(released, config_with_policy):
    released.request_approvals("2026.24", ["nimbus"])
    for change_id in ("C-2026.23", "C-24"):  # 2026.24's own change and the one it carries
        released.record_decision(
            oem_id="nimbus", change_id=change_id, decision=Decision.APPROVED, actor="o", channel="portal",
            approver="Olga Berg", approver_role="qa",
        )  # fmt: skip
    now = pendulum.now("UTC")
    one_of_two = first_event(
        gate(oem_id="nimbus", settle_at=now.add(seconds=0.3).isoformat(), deadline=now.add(seconds=0.3).isoformat())
    )
    assert one_of_two["outcome"] == "deadline"
    assert one_of_two["summary"] == (
        "C-2026.23 (release 2026.24) waits for 1 more approval of Pat Kim (product); "
        "C-24 (release 2026.24) waits for 1 more approval of Pat Kim (product)"
    )
    # Pat leaves the policy: one of one, and Olga's approval suffices at the next poll
    with_policy(config_with_policy, "nimbus", "    signoff_policy:\n      approvers: [{name: Olga Berg, role: qa}]\n")
    assert first_event(gate(oem_id="nimbus"))["summary"] == "every change up to 2026.24 approved"


def test_a_waiting_gate_judges_again_when_the_oems_policy_is_edited(released, config_with_policy):
    """Nothing in the database changes: the poller sees config/oems.yaml change at a poll
    and wakes the gate, which applies the edited policy (one of one: Olga suffices)."""
    released.request_approvals("2026.24", ["nimbus"])
    for change_id in ("C-2026.23", "C-24"):  # 2026.24's own change and the one it carries
        released.record_decision(
            oem_id="nimbus", change_id=change_id, decision=Decision.APPROVED, actor="o", channel="portal",
            approver="Olga Berg", approver_role="qa",
        )  # fmt: skip
    edit = threading.Timer(
        0.5,
        with_policy,
        (config_with_policy, "nimbus", "    signoff_policy:\n      approvers: [{name: Olga Berg, role: qa}]\n"),
    )
    edit.start()
    try:
        event = first_event(gate(oem_id="nimbus"), timeout=10)
    finally:
        edit.cancel()
    assert event == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}


def test_an_oem_whose_entry_is_broken_is_waited_on_not_judged_by_a_default(released, config_with_policy):
    from release_train_airflow.resources import signoff_policy

    with_policy(config_with_policy, "nimbus", "    signoff_policy:\n      quorum: 2\n")
    with pytest.raises(KeyError, match="its entry is invalid"):
        signoff_policy("nimbus")
    assert signoff_policy("acme").named is False  # no such OEM (no DAG): the default
    released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")
    event = first_event(gate(oem_id="nimbus", max_outage_seconds=0.3))
    assert event["outcome"] == "outage" and "its entry is invalid" in event["summary"]


def settled(**overrides) -> ReleasesSettledTrigger:
    args = {"release_ids": ["2026.22", "2026.24"], "final_statuses": ["deployed"], "poll_interval": 0.05}
    return ReleasesSettledTrigger(**{**args, **overrides})


def test_releases_settled_when_all_are_final(released):
    event = first_event(settled())
    assert event == {"status": "done", "statuses": {"2026.22": "deployed", "2026.24": "deployed"}}


def test_releases_settled_reports_the_unsettled_at_the_deadline(released):
    deadline = pendulum.now("UTC").add(seconds=0.3).isoformat()
    event = first_event(settled(release_ids=["2026.23", "2026.24", "2026.25"], deadline=deadline))
    assert event == {
        "status": "deadline",
        "unsettled": ["2026.23", "2026.25"],
        "statuses": {"2026.23": "qa_rejected", "2026.24": "deployed"},
    }


@pytest.mark.parametrize("release_db_url", ["postgresql"], indirect=True)  # only a server drops connections
def test_releases_settled_reads_over_a_new_connection_once_its_own_was_dropped(released, release_db_url):
    """No pre-ping per poll: a pooled connection the server dropped is replaced on use."""
    trigger = settled()
    done = {"status": "done", "statuses": {"2026.22": "deployed", "2026.24": "deployed"}}

    async def poll_drop_poll():
        first = await trigger.poll()  # its connection goes back to the pool
        engine = create_engine(release_db_url)
        with engine.begin() as conn:
            dropped = conn.execute(
                text(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                )
            ).scalar_one()
        engine.dispose()
        return first, dropped, await trigger.poll()

    first, dropped, second = asyncio.run(poll_drop_poll())
    assert dropped >= 1
    assert first == second == done


def test_releases_settled_fails_loudly_on_a_database_error(monkeypatch):
    """No outage tolerance here: the error ends the trigger, and Airflow fails the task."""
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_DB", '{"conn_type": "postgres", "host": "127.0.0.1", "port": 1}')
    with pytest.raises(Exception, match="(?i)connect"):
        first_event(settled(release_db_conn_id="down_db"))


# -- HttpStatusTrigger --------------------------------------------------------------------------
@pytest.fixture
def status_server(monkeypatch):
    """A JSON endpoint answering the statuses queued in ``answers`` (an int: that HTTP error)."""
    answers: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if isinstance(answer, int):
                self.send_error(answer)
                return
            body = json.dumps({"status": answer, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_QA_SYSTEM",
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": server.server_port, "schema": "http"}),
    )
    yield answers
    server.shutdown()


def http_status(**overrides) -> HttpStatusTrigger:
    args = {
        "http_conn_id": "qa_system",
        "endpoint": "releases/2026.24",
        "field": "status",
        "terminal_values": ["passed", "failed"],
        "poll_interval": 0.05,
    }
    return HttpStatusTrigger(**{**args, **overrides})


def test_http_status_waits_through_errors_for_a_terminal_value(status_server):
    status_server.extend(["running", 503, "running", "passed"])
    event = first_event(http_status())
    assert event == {"status": "done", "value": "passed", "body": {"status": "passed", "path": "/releases/2026.24"}}
    assert status_server == ["passed"]  # every answer before it was polled


def test_http_status_reports_the_last_value_at_the_deadline(status_server):
    status_server.append("running")
    deadline = pendulum.now("UTC").add(seconds=0.3).isoformat()
    assert first_event(http_status(deadline=deadline)) == {
        "status": "deadline",
        "value": "running",
        "deadline": deadline,
    }


def test_http_status_at_the_deadline_while_the_system_is_down(status_server):
    status_server.append(500)
    deadline = pendulum.now("UTC").isoformat()
    assert first_event(http_status(deadline=deadline)) == {"status": "deadline", "value": None, "deadline": deadline}


# -- MomentTrigger ------------------------------------------------------------------------------
def test_a_moment_in_the_past_fires_at_once():
    with time_machine.travel(NOW, tick=False):
        event = first_event(MomentTrigger(moment=NOW.subtract(minutes=1).isoformat(), poll_interval=60), timeout=1)
    assert event == {"status": "done", "moment": NOW.subtract(minutes=1).isoformat(), "at": NOW.isoformat()}


def test_a_moved_clock_is_seen_within_one_poll_interval():
    """Not one long sleep: a clock moved past the moment (NTP, a test's pinned clock)
    ends the wait at the next poll."""
    moment = NOW.add(days=2)

    async def wait_then_move(traveller):
        events = MomentTrigger(moment=moment.isoformat(), poll_interval=0.1).run()
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        traveller.move_to(moment.add(seconds=5))
        return (await asyncio.wait_for(waiting, 2)).payload

    with time_machine.travel(NOW, tick=True) as traveller:
        event = asyncio.run(wait_then_move(traveller))
    assert event["moment"] == moment.isoformat() and pendulum.parse(event["at"]) >= moment


# -- HitlAnswerTrigger --------------------------------------------------------------------------
TI_ID = "0190b1a2-0000-7000-8000-000000000000"


def hitl_detail(**fields):
    detail = {
        "response_received": True,
        "chosen_options": ["Approve"],
        "params_input": {"reason": "green"},
        "responded_at": NOW,
        "responded_by_user": SimpleNamespace(id="priya.nair", name="Priya Nair"),
        **fields,
    }
    return SimpleNamespace(**detail)


@pytest.fixture
def hitl_details(monkeypatch):
    """The HITL details the triggerer would read, by task instance id."""
    import airflow.sdk.execution_time.hitl as hitl

    known: dict = {}

    def read(ti_id):
        if str(ti_id) not in known:
            raise LookupError(f"no HITL detail for {ti_id}")
        return known[str(ti_id)]

    monkeypatch.setattr(hitl, "get_hitl_detail_content_detail", read)
    return known


def test_hitl_answer_recorded(hitl_details):
    hitl_details[TI_ID] = hitl_detail()
    assert first_event(HitlAnswerTrigger(ti_id=TI_ID)) == {
        "answered": True,
        "chosen_options": ["Approve"],
        "params_input": {"reason": "green"},
        "responded_at": NOW.isoformat(),
        "responded_by_user": {"id": "priya.nair", "name": "Priya Nair"},
    }


def test_hitl_request_still_open(hitl_details):
    hitl_details[TI_ID] = hitl_detail(response_received=False, chosen_options=None, responded_by_user=None)
    assert first_event(HitlAnswerTrigger(ti_id=TI_ID)) == {"answered": False, "reason": "the request is still open"}


def test_hitl_no_request_is_an_answered_false_event(hitl_details):
    event = first_event(HitlAnswerTrigger(ti_id=TI_ID))
    assert event["answered"] is False and event["reason"].startswith("LookupError: no HITL detail")
