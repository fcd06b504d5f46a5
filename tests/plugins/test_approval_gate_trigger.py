"""The approval gate's trigger, driven as an async generator the way Airflow's providers
test theirs: a serialize round-trip, exactly one event, and the outage path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pendulum
import pytest

from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_train_airflow.triggers import ApprovalGateTrigger
from simulator.connections import as_environment, release_db_connection


def first_event(trigger: ApprovalGateTrigger, timeout: float = 30):
    async def take():
        events = trigger.run()
        event = await asyncio.wait_for(anext(events), timeout)
        with pytest.raises(StopAsyncIteration):  # exactly one event
            await asyncio.wait_for(anext(events), timeout)
        return event.payload

    return asyncio.run(take())


def gate(conn_id: str = "release_db", **overrides) -> ApprovalGateTrigger:
    now = pendulum.now("UTC")
    args = {
        "oem_id": "acme",
        "after_release_id": "2026.22",
        "until_release_id": "2026.24",
        "poll_interval": 0.05,
        "settle_at": now.add(hours=1).isoformat(),
        "deadline": now.add(hours=1).isoformat(),
        "release_db_conn_id": conn_id,
        **overrides,
    }
    return ApprovalGateTrigger(**args)


@pytest.fixture
def released(repo, calendar, release_db_url, monkeypatch):
    """2026.24 in production with one change asked of acme; 2026.23 rejected by QA."""
    for release_id, status in (("2026.22", ReleaseStatus.DEPLOYED), ("2026.23", ReleaseStatus.QA_REJECTED)):
        release = calendar.release_by_id(release_id)
        change = Change(f"C-{release_id}", ChangeType.FIX, "core", "x", "", False, release.at, release_id)
        repo.record_release(
            release, [change], changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
        )
        repo.set_release_status(release_id, status, actor="test")
    release = calendar.release_by_id("2026.24")
    change = Change("C-24", ChangeType.FIX, "core", "x", "", False, release.at, "2026.24")
    repo.record_release(
        release, [change], changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
    )
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals("2026.24", ["acme"])
    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    return repo


def test_serialize_round_trips():
    trigger = gate(max_outage_seconds=12.5)
    path, kwargs = trigger.serialize()
    assert path == "release_train_airflow.triggers.ApprovalGateTrigger"
    assert ApprovalGateTrigger(**kwargs).serialize() == (path, kwargs)


def test_full_approval_ends_the_wait(released):
    released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")
    # 2026.23 never reached production: its change is neither asked for nor blocking
    event = first_event(gate())
    assert event == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}


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


@pytest.fixture
def config_with_policy(tmp_path, monkeypatch):
    """The shipped config with nimbus signing off by two people, as every reader finds it."""
    import shutil

    from tests.policies import TWO_OF_TWO, with_policy

    config = tmp_path / "config"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config", config)
    with_policy(config, "nimbus", TWO_OF_TWO)
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(config))
    return config


def test_the_gate_applies_the_oems_policy_as_config_says_at_each_poll(released, config_with_policy):
    released.request_approvals("2026.24", ["nimbus"])
    released.record_decision(
        oem_id="nimbus", change_id="C-24", decision=Decision.APPROVED, actor="o", channel="portal",
        approver="Olga Berg", approver_role="qa",
    )  # fmt: skip
    now = pendulum.now("UTC")
    one_of_two = first_event(
        gate(oem_id="nimbus", settle_at=now.add(seconds=0.3).isoformat(), deadline=now.add(seconds=0.3).isoformat())
    )
    assert one_of_two["outcome"] == "deadline"
    assert one_of_two["summary"] == "C-24 (release 2026.24) waits for 1 more approval of Pat Kim (product)"
    # Pat leaves the policy: one of one, and Olga's approval suffices at the next poll
    from tests.policies import with_policy

    with_policy(config_with_policy, "nimbus", "    signoff_policy:\n      approvers: [{name: Olga Berg, role: qa}]\n")
    assert first_event(gate(oem_id="nimbus"))["summary"] == "every change up to 2026.24 approved"


def test_an_oem_whose_entry_is_broken_is_waited_on_not_judged_by_a_default(released, config_with_policy):
    from release_train_airflow.resources import signoff_policy
    from tests.policies import with_policy

    with_policy(config_with_policy, "nimbus", "    signoff_policy:\n      quorum: 2\n")
    with pytest.raises(KeyError, match="its entry is invalid"):
        signoff_policy("nimbus")
    assert signoff_policy("acme").named is False  # no such OEM (no DAG): the default
    released.record_decision(oem_id="acme", change_id="C-24", decision=Decision.APPROVED, actor="a", channel="cli")
    event = first_event(gate(oem_id="nimbus", max_outage_seconds=0.3))
    assert event["outcome"] == "outage" and "its entry is invalid" in event["summary"]
