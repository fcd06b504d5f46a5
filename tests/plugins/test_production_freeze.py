"""No production deploy inside a freeze of the calendar (config/calendar.yaml: the
year-end freeze, 21 December to 4 January): the deploy task's wait holds the release
until the freeze ends, and the deploy itself refuses once more right before its call."""

from __future__ import annotations

import pendulum
import pytest
import time_machine
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from release_train_airflow import production_release, resources
from release_train_airflow.operators import WaitForDeployMomentOperator
from release_train_airflow.triggers import MomentTrigger
from simulator.connections import as_environment, release_db_connection
from tests.builders import cut

IN_FREEZE = pendulum.datetime(2026, 12, 22, 10, tz="Europe/Amsterdam")
AFTER_FREEZE = pendulum.datetime(2027, 1, 5, tz="Europe/Amsterdam")  # the first moment after it
BEFORE_FREEZE = pendulum.datetime(2026, 12, 10, 10, tz="Europe/Amsterdam")


@pytest.fixture
def alerts(repo, calendar, release_db_url, monkeypatch):
    """2026.25 cut, on the ``release_db`` connection; the vendor alerts it sends."""
    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    cut(repo, calendar, "2026.25", "CHG-1")
    sent = []
    monkeypatch.setattr(production_release, "alert_vendor", lambda subject, lines, *, key: sent.append(key))
    yield sent
    resources.reset_caches()


def test_the_deploy_waits_for_the_end_of_a_freeze(alerts, repo):
    operator = WaitForDeployMomentOperator(task_id="wait_for_freeze", release_id="2026.25")
    with time_machine.travel(IN_FREEZE, tick=False), pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert isinstance(deferred.value.trigger, MomentTrigger)
    assert pendulum.parse(deferred.value.trigger.moment) == AFTER_FREEZE
    assert [e.event for e in repo.release_events("2026.25")][-1] == production_release.DEPLOY_POSTPONED
    assert len(alerts) == 1


def test_outside_a_freeze_the_deploy_goes_at_once(alerts):
    operator = WaitForDeployMomentOperator(task_id="wait_for_freeze", release_id="2026.25")
    with time_machine.travel(BEFORE_FREEZE, tick=False):
        assert operator.execute({})["release_id"] == "2026.25"
        production_release.refuse_frozen_deploy("2026.25")  # no exception
    assert alerts == []


def test_the_deploy_call_refuses_inside_a_freeze(alerts):
    """The last look right before the deploy: the calendar may have changed meanwhile."""
    with time_machine.travel(IN_FREEZE, tick=False), pytest.raises(AirflowFailException, match="not deployed"):
        production_release.refuse_frozen_deploy("2026.25")
