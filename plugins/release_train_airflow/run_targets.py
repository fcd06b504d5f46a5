"""Airflow's side of what a run acts on (``release_pipeline.run_targets``): whether this
is a manual run, the recorded releases' statuses, a choice said in the task log
(nothing qualifying skips the run at once, with the reason), and the release a run of
``production_release`` or ``general_release_notes`` is for."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pendulum
from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from release_pipeline.release_calendar import Release, UnknownRelease
from release_pipeline.run_targets import Choice, NothingToActOn, release_due
from release_train_airflow.resources import calendar, registry, repository

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


def run_moment() -> tuple[pendulum.DateTime, str]:
    """The moment this run computes for (its logical date, else when it was due to run:
    a manual run in Airflow 3 may have no logical date) and its run id."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    moment = context.get("logical_date") or context["dag_run"].run_after
    return pendulum.instance(moment).in_timezone("UTC"), context["run_id"]


@task
def enabled_oems() -> list[str]:
    """The OEMs a per-OEM fan-out of this run covers."""
    return [oem.id for oem in registry().enabled]


def recorded_statuses() -> dict[str, str]:
    """``{release_id: status}`` of every release in the release database."""
    return {row.id: str(row.status) for row in repository().releases()}


def choose(rule: Callable[..., Choice], *args, **kwargs) -> Choice:
    """Apply a choosing rule to the recorded releases and say what it chose and why."""
    try:
        choice = rule(*args, statuses=recorded_statuses(), **kwargs)
    except NothingToActOn as exc:
        raise AirflowSkipException(f"manual run with no parameters: {exc}") from None
    log.info("manual run with no parameters: acts on %s: %s", choice.key, choice.reason)
    return choice


def target_release(data_interval_end: dt.datetime, override: str | None) -> Release:
    """The release a run is for: the one named in the run's params, else for a manual
    run the release due now (``release_pipeline.run_targets.release_due``), else the one
    the run's data interval ends with. The task log says which, and why."""
    train = calendar()
    if override:
        try:
            release = train.release_by_id(override)
        except UnknownRelease as exc:
            raise AirflowFailException(f"param release_id: {exc}") from None
        log.info("acts on %s: given as param release_id", release.id)
        return release
    if is_manual_run():
        due = choose(release_due, train, pendulum.now("UTC"), baselines=repository().baseline_ids())
        return train.release_by_id(due.key)
    release = train.release_at(data_interval_end)
    log.info("acts on %s: the release this scheduled run's data interval ends with", release.id)
    return release
