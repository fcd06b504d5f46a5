"""Airflow's side of what a run acts on (``release_pipeline.run_targets``): whether this
is a manual run, the recorded releases' statuses, and a choice said in the task log
(nothing qualifying skips the run at once, with the reason)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from airflow.sdk.exceptions import AirflowSkipException

from release_pipeline.run_targets import Choice, NothingToActOn
from release_train_airflow.resources import repository

log = logging.getLogger(__name__)


def is_manual_run() -> bool:
    """Triggered by a person (UI, REST, ``dag.test()``), not by the schedule. Outside a
    task (a bench calling the steps directly) there is no run: not manual."""
    from airflow.sdk import get_current_context

    try:
        run_type = get_current_context()["dag_run"].run_type
    except RuntimeError:
        return False
    return str(getattr(run_type, "value", run_type)) == "manual"


def recorded_statuses() -> dict[str, str]:
    """``{release_id: status}`` of every release in the release database."""
    return {row.id: str(row.status) for row in repository().releases()}


def choose(rule: Callable[..., Choice], *args) -> Choice:
    """Apply a choosing rule to the recorded releases and say what it chose and why."""
    try:
        choice = rule(*args, recorded_statuses())
    except NothingToActOn as exc:
        raise AirflowSkipException(f"manual run with no parameters: {exc}") from None
    log.info("manual run with no parameters: acts on %s: %s", choice.key, choice.reason)
    return choice
