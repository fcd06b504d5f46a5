"""The config-check DAG, run for real: every connection of the registry resolves, and
every OEM's SSH connection pins the instance's host key."""

import json
import os

import pytest

from release_pipeline.registry import load_registry
from release_train_airflow.checks import missing_connections, unpinned_ssh_connections

pytestmark = pytest.mark.e2e


def test_config_check_passes_with_every_connection_in_place(pipeline):
    run = pipeline.run("release_train_config_check")
    assert pipeline.task_states(run) == {
        "check_connections": "success",
        "check_ssh_host_keys": "success",
        "check_release_db": "success",
    }
    assert run.state == "success"


def test_config_check_names_a_missing_connection(pipeline, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_OEM_ORBITEL_DOCS")
    assert missing_connections(load_registry()) == ["oem_orbitel_docs (needed by OEM 'orbitel' (docs))"]
    run = pipeline.run("release_train_config_check")
    assert pipeline.task_states(run)["check_connections"] == "failed"
    assert run.state == "failed"


def test_config_check_names_an_oem_ssh_connection_without_a_pinned_host_key(pipeline, monkeypatch):
    conn = json.loads(os.environ["AIRFLOW_CONN_OEM_NIMBUS_SSH"])
    assert conn["extra"]["host_key"].startswith("ssh-ed25519 ")  # the simulator's stable key
    del conn["extra"]["host_key"]
    monkeypatch.setenv("AIRFLOW_CONN_OEM_NIMBUS_SSH", json.dumps(conn))
    [problem] = unpinned_ssh_connections(load_registry())
    assert problem.startswith("OEM 'nimbus': connection 'oem_nimbus_ssh': pins no host key")
    run = pipeline.run("release_train_config_check")
    states = pipeline.task_states(run)
    assert states["check_ssh_host_keys"] == "failed" and states["check_connections"] == "success", states
    assert run.state == "failed"
