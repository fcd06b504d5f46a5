"""Failures reach people: one message to the vendor's release channel per failed DAG run.

Every release-train DAG carries :class:`RunFailureNotifier` as its DAG-level
``on_failure_callback`` (``dag_defaults.watch_for_failures`` attaches it). Airflow runs
DAG callbacks in the DAG processor once a run is marked failed; the notice says which
DAG, which task(s) failed, which OEM and release (where the run knows them) and links
to the run in the Airflow UI (``[api] base_url``).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from release_pipeline.errors import error_detail

log = logging.getLogger(__name__)

VENDOR_CHANNEL = "ava_notify"
# the run's own failure watcher fails because others did: it is never "the" failed task
WATCHER_TASK_ID = "watcher"
OEM_TAG = re.compile(r"^oem:(?P<oem>[a-z][a-z0-9_]+)$")
# where a run names its release: trigger params first, then what its first task returned
RELEASE_PARAMS = ("release_id", "target_release")
RELEASE_XCOMS = (("cut_release", "release_id"), ("plan_delivery", "target"), ("plan_delivery", "target_release"))


class RunFailureNotifier(BaseNotifier):
    """Posts a failed run's notice to the vendor's release channel, once per run (and
    once more per clearing of the run: a cleared run that fails again is news)."""

    def __init__(self, conn_id: str = VENDOR_CHANNEL):
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context) -> None:
        notice = failure_notice(context)
        send_notice(self.conn_id, notice)
        self.log.info("failure of %s %s told to %s", notice["dag_id"], notice["run_id"], self.conn_id)


def failure_notice(context) -> dict[str, Any]:
    """What a failed run's message says, from the callback's context."""
    dag = context.get("dag")
    dag_id = getattr(dag, "dag_id", None) or getattr(context.get("dag_run"), "dag_id", None) or "?"
    dag_run = context.get("dag_run")
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None) or "?"
    failed = _failed_tasks(context, dag_id, run_id)
    params = context.get("params") or {}
    oem_id = params.get("oem_id") or next(
        (m["oem"] for t in sorted(getattr(dag, "tags", None) or ()) if (m := OEM_TAG.match(t))), None
    )
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "attempt": getattr(dag_run, "clear_number", 0) or 0,
        "failed_tasks": failed,
        "oem_id": oem_id,
        "release_id": _release_of(context, params),
        "reason": context.get("reason"),
        "url": run_url(dag_id, run_id),
    }


def _failed_tasks(context, dag_id: str, run_id: str) -> list[str]:
    """The run's failed tasks (``task[i]`` for a mapped one), the watcher left out.

    Asked of Airflow (the DAG processor answers a callback's task-state query); when
    that is not possible, the task Airflow blamed for the run's failure."""
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        states = RuntimeTaskInstance.get_task_states(dag_id=dag_id, run_ids=[run_id]).get(run_id, {})
        failed = sorted(task for task, state in states.items() if str(state) == "failed")
    except Exception:
        ti = context.get("ti") or context.get("task_instance")
        failed = [ti.task_id] if ti is not None else []
    named = [_mapped_name(t, context.get("dag")) for t in failed if t != WATCHER_TASK_ID] or failed
    return sorted(named, key=_upstream_first(context.get("dag")))


def _upstream_first(dag):
    """Tasks in the order the DAG defines them (upstream first): the cause before a
    recovery task that failed after it."""
    order = {task_id: n for n, task_id in enumerate(getattr(dag, "task_ids", None) or ())}
    return lambda name: (order.get(name.split("[")[0], len(order)), name)


def _mapped_name(key: str, dag) -> str:
    """``notify_oem_2`` (Airflow's key for a mapped task instance) -> ``notify_oem[2]``."""
    task_ids = getattr(dag, "task_ids", None) or ()
    if key in task_ids:
        return key
    head, _, index = key.rpartition("_")
    return f"{head}[{index}]" if head in task_ids and index.isdigit() else key


def _release_of(context, params) -> str | None:
    for name in RELEASE_PARAMS:
        if params.get(name):
            return str(params[name])
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return None
    for task_id, key in RELEASE_XCOMS:
        try:
            value = ti.xcom_pull(task_ids=task_id)
        except Exception:  # the task is not in this DAG, or XCom cannot be read here
            continue
        if isinstance(value, dict) and value.get(key):
            return str(value[key])
    return None


def run_url(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "http://localhost:8080").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def notice_key(notice: dict[str, Any]) -> str:
    return f"run_failed:{notice['dag_id']}:{notice['run_id']}:{notice['attempt']}"


def render_notice(notice: dict[str, Any]) -> dict[str, Any]:
    from release_pipeline.notes import Audience, render
    from release_pipeline.vendor import load_vendor

    failed = ", ".join(notice["failed_tasks"]) or "unknown (see the run)"
    subject = f"Run of {notice['dag_id']} failed: {failed}"
    lines = [
        f"DAG: {notice['dag_id']}",
        f"Run: {notice['run_id']}",
        f"Failed task(s): {failed}",
        f"OEM: {notice['oem_id'] or 'all (not OEM-specific)'}",
        f"Release: {notice['release_id'] or 'not known to the run'}",
    ]
    rendered = render("vendor_alert", Audience.vendor(load_vendor()), subject, lines=lines, link=notice["url"])
    return rendered.as_message(kind="run_failed", **notice)


def send_notice(conn_id: str, notice: dict[str, Any]) -> bool:
    """Send once per run: keyed in the release DB's idempotency ledger. When the ledger
    cannot be reached (the failure may be the release DB itself), send anyway with the
    same ``Idempotency-Key`` header: a failure notice must not be lost to the outage it
    reports. Returns False when it had been sent before."""
    from release_train_airflow import outbound
    from release_train_airflow.resources import repository

    message, key = render_notice(notice), notice_key(notice)
    try:
        repo = repository()
        with repo.engine.connect():
            pass
    except Exception as exc:
        from airflow.providers.http.hooks.http import HttpHook

        log.warning("release DB not reachable (%s); sending the failure notice unledgered", error_detail(exc))
        HttpHook("POST", http_conn_id=conn_id).run(
            "", json=message, headers={"Idempotency-Key": key}, extra_options=outbound.HTTP_TIMEOUT
        )
        return True
    return outbound.send_message(repo, conn_id, message, key=key)
