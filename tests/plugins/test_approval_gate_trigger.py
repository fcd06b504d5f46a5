"""The approval gate's trigger, driven as an async generator the way Airflow's providers
test theirs: a serialize round-trip, exactly one event, and the outage path."""

from __future__ import annotations

import asyncio

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
