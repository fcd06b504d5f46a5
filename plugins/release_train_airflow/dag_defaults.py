"""House rules every release-train DAG follows: owner, retries, the tag vocabulary,
and failures that reach people (the failure watcher and notifier).
``tests/dags/test_dag_integrity.py`` checks each DAG against them."""

from __future__ import annotations

import copy
import datetime as dt
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG, Param

OWNER = "release-engineering"

TAGS = frozenset({"release-train", "acceptance", "delivery", "roadmap", "ops", "oem"})
# tags that carry a value: the OEM a DAG serves and its tier
TAG_PATTERNS = (re.compile(r"^oem:[a-z][a-z0-9_]+$"), re.compile(r"^tier:(gold|silver|bronze)$"))


# seconds before the first retry; the end-to-end tests shorten it
RETRY_DELAY_ENV = "RELEASE_TRAIN_RETRY_DELAY_SECONDS"


def default_args(**overrides) -> dict:
    """Retries with backoff for the transient failures of remote systems; a task that
    must not be retried says so itself (``retries=0``)."""
    return {
        "owner": OWNER,
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=float(os.environ.get(RETRY_DELAY_ENV, "30"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=10),
        **overrides,
    }


def dag_args(**overrides) -> dict:
    """The ``@dag`` arguments every scheduled release-train DAG shares: one run at a time,
    no catch-up of runs missed while paused, and the house :func:`default_args`. A DAG
    adds its own schedule, tags, doc and params."""
    import pendulum

    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": default_args(),
        **overrides,
    }


def is_known_tag(tag: str) -> bool:
    return tag in TAGS or any(p.match(tag) for p in TAG_PATTERNS)


WATCHER_TASK_ID = "watcher"


class RunWatcher(BaseOperator):
    """Runs only when a task of the run failed, and fails the run with it. An operator,
    not a ``@task``: one per DAG of the fleet, and an operator parses at half the cost."""

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this run failed (see it above); the run fails with it")


def watch_for_failures(any_task) -> None:
    """Fail the run when any of its tasks failed, and tell people (:func:`notify_failed_runs`).

    Airflow judges a run by its leaf tasks. Our per-OEM reports run on ALL_DONE and
    skip when there is nothing to report, so without this a failed deploy upstream of
    a skipped report would end as a green run, and no failure callback would fire.
    The watcher (Airflow's own pattern) sits downstream of every task and fails on
    ONE_FAILED.
    """
    from airflow.sdk import TriggerRule

    dag = getattr(any_task, "operator", any_task).dag
    watch = RunWatcher(task_id=WATCHER_TASK_ID, trigger_rule=TriggerRule.ONE_FAILED, retries=0, dag=dag)
    watch.set_upstream([member for member in dag.tasks if member is not watch])
    notify_failed_runs(dag)


def notify_failed_runs(dag: DAG) -> DAG:
    """The house failure rule: a failed run of ``dag`` posts one message to the vendor's
    release channel (``ava_notify``), through the DAG-level ``on_failure_callback``.
    Keeps callbacks the DAG already has; attaching twice adds nothing."""
    from release_train_airflow.notifiers import RunFailureNotifier

    callbacks = dag.on_failure_callback
    callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks] if callbacks else []
    if not any(isinstance(c, RunFailureNotifier) for c in callbacks):
        callbacks.append(RunFailureNotifier())
    dag.on_failure_callback = callbacks
    dag.has_on_failure_callback = True  # set by Airflow at DAG creation only; the scheduler reads it
    return dag


def release_id_param(description: str) -> Param:
    """An optional release id (YYYY.NN) in a DAG's trigger form."""
    from airflow.sdk import Param

    from release_pipeline.release_calendar import RELEASE_ID_PATTERN

    return Param(None, type=["null", "string"], pattern=RELEASE_ID_PATTERN.pattern, description=description)


def validated_params(params: Mapping[str, Param]) -> Mapping[str, Param]:
    """``params`` once their defaults passed their schemas, as ``@dag`` checks for a
    scheduled DAG; for :func:`attach_params`."""
    from airflow.sdk.definitions.param import ParamsDict

    ParamsDict(dict(params)).validate()
    return params


def attach_params(dag: DAG, params: Mapping[str, Param]) -> DAG:
    """Give a generated DAG its trigger-form params once its tasks exist.

    Params passed to ``@dag`` are deep-copied into every task, and serializing the DAG
    validates each copy against its JSON schema: over a hundred jsonschema checks per
    OEM delivery DAG, most of the DAG processor's time for a fleet (bench/dag_parse.py).
    At run time Airflow merges the DAG's params, the task's own and the run's conf
    (``process_params``), so the copies add nothing. Each DAG gets its own Params
    (a Param keeps the value it resolved last); their schemas, which nothing changes,
    are shared (a deep copy cost about 2 % of the fleet's parse time).
    """
    dag.params.update({name: copy.copy(param) for name, param in params.items()})
    return dag
