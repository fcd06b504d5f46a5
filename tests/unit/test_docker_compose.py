"""docker-compose.yaml cannot run here (no Docker engine); these checks keep it true to
the project: its services, healthchecks, mounts, pins, and the shape the native Celery
test (tests/e2e/test_celery_shape.py) runs."""

import json
import re

import pytest
import yaml

from release_pipeline.cli import COMMANDS
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = {name: spec for name, spec in SERVICES.items() if name.startswith("airflow-")}


def test_the_services_of_the_production_shape():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }
    assert "8080:8080" in SERVICES["airflow-apiserver"]["ports"]


@pytest.mark.parametrize("name", sorted(set(SERVICES) - {"airflow-init"}))
def test_every_long_running_service_has_a_healthcheck(name):
    check = SERVICES[name]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"]


@pytest.mark.parametrize("name", sorted(AIRFLOW))
def test_airflow_services_wait_for_their_dependencies(name):
    depends = AIRFLOW[name]["depends_on"]
    assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
    if name != "airflow-init":
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(AIRFLOW))
def test_airflow_services_run_the_celery_shape_on_postgresql(name):
    env = AIRFLOW[name]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    for shared in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert env[shared].startswith("${")  # one value from .env for every process
    mounts = {m.split(":")[1]: m.split(":")[0] for m in AIRFLOW[name]["volumes"]}
    assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
    assert mounts[env["AIRFLOW__CORE__PLUGINS_FOLDER"]] == "./plugins"
    assert mounts[env["PYTHONPATH"]] == "./include"
    assert mounts[env["RELEASE_TRAIN_CONFIG_DIR"]] == "./config"


def test_mounted_paths_exist():
    for spec in SERVICES.values():
        for mount in spec.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), source


def test_the_release_database_is_its_own_database_created_at_first_start():
    init_sql = (REPO / "deploy/postgres/init.sql").read_text()
    created = re.search(r"CREATE DATABASE (\w+)", init_sql).group(1)
    conn = json.loads(AIRFLOW["airflow-scheduler"]["environment"]["AIRFLOW_CONN_RELEASE_DB"])
    assert conn["conn_type"] == "postgres" and conn["schema"] == created
    init = "\n".join(SERVICES["airflow-init"]["command"])
    assert f"@postgres:5432/{created}" in init and "db-upgrade" in init and "db-upgrade" in COMMANDS
    assert "airflow db migrate" in init and "airflow pools set oem_installs" in init


def test_the_image_matches_the_pins():
    dockerfile = (REPO / "Dockerfile").read_text()
    image = re.search(r"^FROM apache/airflow:(\S+)-python(\S+)", dockerfile, re.M)
    assert f"apache-airflow=={image.group(1)}" in (REPO / "requirements.txt").read_text()
    assert image.group(2) == "3.11"
    assert "-r /opt/release-train/requirements.txt -c /opt/release-train/constraints.txt" in dockerfile


def test_the_example_connections_file_is_valid_json():
    connections = json.loads((REPO / "deploy/secrets/connections.example.json").read_text())
    assert {"change_feed", "qa_system", "ava_production", "ava_docs_portal", "ava_notify"} <= set(connections)
