"""The failure notice: what a failed run's message says (no Airflow run needed here;
tests/e2e/test_scheduler_runs.py sends one through the real scheduler)."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from release_train_airflow.notifiers import failure_notice, notice_key, render_notice, run_url


def a_dag(**kwargs) -> DAG:
    with DAG("oem_delivery__nimbus", schedule=None, start_date=pendulum.datetime(2026, 1, 1), **kwargs) as dag:
        EmptyOperator(task_id="install")
        EmptyOperator(task_id="notify_oem")
    return dag


class FailedTi:
    task_id = "install"

    def xcom_pull(self, task_ids):
        return {"target": "2026.24"} if task_ids == "plan_delivery" else None


def test_a_notice_names_dag_task_oem_release_and_links_the_run(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example/")
    dag = a_dag(tags=["release-train", "oem:nimbus"])
    run_id = "manual__2026-12-03T09:00:00+00:00"
    notice = failure_notice({"dag": dag, "run_id": run_id, "ti": FailedTi(), "params": {}, "reason": "task_failure"})
    assert notice == {
        "dag_id": "oem_delivery__nimbus",
        "run_id": run_id,
        "attempt": 0,
        "failed_tasks": ["install"],  # no task-state query outside Airflow: the task Airflow blamed
        "oem_id": "nimbus",
        "release_id": "2026.24",
        "reason": "task_failure",
        "url": "https://airflow.example/dags/oem_delivery__nimbus/runs/manual__2026-12-03T09%3A00%3A00%2B00%3A00",
    }
    assert notice_key(notice) == f"run_failed:oem_delivery__nimbus:{run_id}:0"
    message = render_notice(notice)
    assert message["subject"] == "Run of oem_delivery__nimbus failed: install"
    assert message["kind"] == "run_failed" and message["oem_id"] == "nimbus"
    for line in ("Failed task(s): install", "OEM: nimbus", "Release: 2026.24", notice["url"]):
        assert line in message["markdown"]


def test_params_name_the_release_before_xcom_and_a_run_without_oem_says_so():
    notice = failure_notice({"dag": a_dag(tags=["release-train"]), "run_id": "r1", "params": {"release_id": "2026.26"}})
    assert (notice["oem_id"], notice["release_id"], notice["failed_tasks"]) == (None, "2026.26", [])
    markdown = render_notice(notice)["markdown"]
    assert "OEM: all (not OEM-specific)" in markdown and "Failed task(s): unknown (see the run)" in markdown


def test_run_url_quotes_the_run_id(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://localhost:8080")
    assert run_url("d", "scheduled__2026-01-01T00:00:00+00:00") == (
        "http://localhost:8080/dags/d/runs/scheduled__2026-01-01T00%3A00%3A00%2B00%3A00"
    )
