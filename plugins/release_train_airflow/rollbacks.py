"""The work of the ``oem_rollbacks`` DAG (rollbacks OEMs asked for and staff approved, run
in each OEM's maintenance window outside a freeze) and of ``regression_alerts`` (the
vendor's alert of each regression report, within a minute).

The rules are the domain's (``release_pipeline.rollbacks``); the rollback itself is a
step of the OEM's delivery process (``DeliveryProcess.roll_back_on_request``), over the
same ports as a delivery (SSH instance, outbox), so it takes the instance's lock and
checks its health like the rollback after a failed delivery.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import get_current_context, task

from release_pipeline import rollbacks
from release_pipeline.models import RollbackStatus
from release_train_airflow.delivery import _as_task_outcome, process
from release_train_airflow.outbound import alert_vendor
from release_train_airflow.resources import registry, repository

log = logging.getLogger(__name__)


@_as_task_outcome
def roll_back_if_due(oem_id: str, run_id: str) -> str:
    """Tell the OEM every staff decision not told yet; then run its approved rollback if
    its maintenance window is open outside a freeze, else say when it will run."""
    steps = process(oem_id)
    for request in reversed(rollbacks.requests_of(steps.repo, oem_id)):  # oldest first
        steps.tell_decision(request)
    row = steps.repo.open_rollback_request(oem_id)
    if row is None or row.status != RollbackStatus.APPROVED:
        said = f"OEM {oem_id}: no approved rollback to run"
        log.info(said)
        return said
    due = steps.rollback_window()
    if due > pendulum.now("UTC"):
        said = f"OEM {oem_id}: rollback #{row.id} runs at {due.isoformat()} (next window outside a freeze)"
        log.info(said)
        return said
    return steps.roll_back_on_request(row.id, run_id=run_id)


@task
def roll_back(oem_id: str) -> str:
    return roll_back_if_due(oem_id, get_current_context()["run_id"])


@task
def alert_regressions() -> list[int]:
    """The vendor alert of every regression report not alerted yet (the portal holds no channels)."""
    repo = repository()

    def alert(subject: str, lines: list[str], *, key: str) -> None:
        alert_vendor(subject, lines, key=key, repo=repo)

    oems = registry()
    return rollbacks.alert_pending(repo, alert, wave_of=lambda oem_id: oems.get(oem_id).wave)
