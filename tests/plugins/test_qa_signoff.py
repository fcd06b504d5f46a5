"""The QA sign-off records the named person who answered it: the ``responded_by_user``
of Airflow's HITL answer (in the production shape, one of deploy/users.yaml's people)
becomes the actor of the release event. Run on a real release database, with the event
as Airflow's HITL trigger hands it to the operator."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import Param

from release_pipeline.models import Change, ChangeType, ReleaseStatus
from release_pipeline.release_calendar import load_calendar
from simulator.connections import as_environment, release_db_connection


@pytest.fixture
def release_db(repo, release_db_url, monkeypatch):
    from release_train_airflow import resources

    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    release = load_calendar().release_by_id("2026.20")
    change = Change("CHG-1", ChangeType.FEATURE, "connectors", "A connector", "For flows", False, release.at)
    repo.record_release(release, [change], changes_since=None, changes_until=None, actor="production_release")
    yield repo
    resources.reset_caches()


def signoff():
    from release_train_airflow.operators import QaSignoffOperator

    return QaSignoffOperator(
        task_id="qa_signoff",
        release_id="2026.20",
        subject="QA sign-off: release 2026.20",
        params={"reason": Param("", type="string")},
        defaults="Reject",
    )


def answer(user: dict | None, option: str = "Approve", reason: str = "regression suite green") -> dict:
    return {
        "chosen_options": [option],
        "params_input": {"reason": reason},
        "responded_at": pendulum.datetime(2026, 5, 14, 12, tz="UTC"),
        "responded_by_user": user,
        "timedout": user is None,
    }


def test_the_named_person_who_approved_is_recorded(release_db):
    signoff().execute_complete({}, answer({"id": "priya.nair", "name": "priya.nair"}))
    assert release_db.release("2026.20").status == ReleaseStatus.QA_APPROVED
    last = release_db.release_events("2026.20")[-1]
    assert (last.event, last.actor, last.detail) == ("qa_approved", "priya.nair", "regression suite green")


def test_an_auth_manager_without_display_names_records_the_user_id(release_db):
    signoff().execute_complete({}, answer({"id": "jonas.berg", "name": ""}))
    assert release_db.release_events("2026.20")[-1].actor == "jonas.berg"
