"""The install task under a wave halt: it waits deferred (no worker, no pool slot) and
looks again, before the preflight touches the instance; once the release is resumed, the
wait for the window opening starts the install."""

from __future__ import annotations

import pendulum
import pytest
import time_machine
from airflow.sdk.exceptions import TaskDeferred

from release_pipeline.delivery_process import DeliveryHalted
from release_pipeline.waves import Halt
from release_train_airflow import delivery
from release_train_airflow.triggers import MomentTrigger

SATURDAY_NIGHT = pendulum.datetime(2026, 12, 5, 23, tz="America/New_York")  # inside orbitel's window
HALT = Halt(7, "2026.24", "rolled_back", "rolled back", "delivery:nimbus", SATURDAY_NIGHT, 1, "nimbus")


def test_a_halted_install_defers_and_looks_again_without_touching_the_instance(monkeypatch):
    looked, touched = [], []

    def halted(plan):
        looked.append(plan["target"])
        raise DeliveryHalted("2026.24 postponed", HALT)

    monkeypatch.setattr(delivery, "postpone_if_halted", halted)
    monkeypatch.setattr(delivery, "preflight", lambda plan: touched.append("preflight"))
    monkeypatch.setattr(delivery, "install", lambda plan: touched.append("install"))
    operator = delivery.InstallWhenSignedOffOperator(task_id="install", plan={"oem_id": "orbitel"})
    plan = {"oem_id": "orbitel", "target": "2026.24"}
    with time_machine.travel(SATURDAY_NIGHT, tick=False), pytest.raises(TaskDeferred) as deferred:
        operator.in_window({}, plan=plan)
    assert (looked, touched) == (["2026.24"], [])
    assert deferred.value.method_name == "in_window" and deferred.value.kwargs == {"plan": plan}
    assert isinstance(deferred.value.trigger, MomentTrigger)
    again = SATURDAY_NIGHT.add(seconds=delivery.HALT_POLL_SECONDS)
    assert pendulum.parse(deferred.value.trigger.moment) == again


def test_once_resumed_the_install_goes_on(monkeypatch):
    steps = []
    monkeypatch.setattr(delivery, "postpone_if_halted", lambda plan: steps.append("looked"))
    monkeypatch.setattr(delivery, "preflight", lambda plan: steps.append("preflight"))
    monkeypatch.setattr(delivery, "install", lambda plan: steps.append("install") or "log")
    operator = delivery.InstallWhenSignedOffOperator(task_id="install", plan={"oem_id": "orbitel"})
    with time_machine.travel(SATURDAY_NIGHT, tick=False):
        assert operator.in_window({}, plan={"oem_id": "orbitel", "target": "2026.24"}) == "log"
    assert steps == ["looked", "preflight", "install"]
