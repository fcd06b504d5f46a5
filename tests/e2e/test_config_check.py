"""The config-check DAG, run for real: every connection of the registry resolves."""

import pytest

from release_pipeline.registry import load_registry
from release_train_airflow.checks import missing_connections

pytestmark = pytest.mark.e2e


def test_config_check_passes_with_every_connection_in_place(pipeline):
    run = pipeline.run("release_train_config_check")
    assert pipeline.task_states(run) == {"check_connections": "success", "check_release_db": "success"}
    assert run.state == "success"


def test_config_check_names_a_missing_connection(pipeline, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_OEM_ORBITEL_DOCS")
    assert missing_connections(load_registry()) == ["oem_orbitel_docs (needed by OEM 'orbitel' (docs))"]
    run = pipeline.run("release_train_config_check")
    assert pipeline.task_states(run)["check_connections"] == "failed"
    assert run.state == "failed"
