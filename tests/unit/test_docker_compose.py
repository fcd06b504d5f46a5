"""docker-compose.yaml cannot run here (no Docker engine); these checks keep it true to
the project: its services, healthchecks, mounts, pins, exposure, secrets, and the shape the
native tests (tests/e2e/test_celery_shape.py, tests/e2e/test_portal_service.py) run."""

import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import setuptools
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
        "oem-portal",
    }


def published(name: str) -> list[str]:
    return SERVICES[name].get("ports", [])


def test_only_the_portal_faces_oems_the_api_server_is_on_loopback():
    assert published("airflow-apiserver") == ["127.0.0.1:8080:8080"]
    assert published("oem-portal") == ["127.0.0.1:${PORTAL_PORT:-8081}:8081"]  # for the TLS proxy on the host
    assert {name for name in SERVICES if published(name)} == {"airflow-apiserver", "oem-portal"}


def test_the_portal_is_the_same_app_under_uvicorn_with_its_own_healthcheck():
    portal = SERVICES["oem-portal"]
    command = portal["entrypoint"] + portal["command"]
    assert command[:4] == ["python", "-m", "uvicorn", "release_train_airflow.portal.app:app"]
    assert "--port=8081" in command and "--host=0.0.0.0" in command
    # forwarded client addresses are believed from the configured proxy only, never from anyone
    assert "--proxy-headers" in command and not [a for a in command if a.startswith("--forwarded-allow-ips")]
    assert portal["environment"]["FORWARDED_ALLOW_IPS"] == "${PORTAL_TRUSTED_PROXIES:-172.16.0.0/12,192.168.0.0/16}"
    assert portal["healthcheck"]["test"] == ["CMD", "curl", "--fail", "http://localhost:8081/healthz"]
    assert portal["image"] == AIRFLOW["airflow-apiserver"]["image"]
    env = portal["environment"]
    assert env["RELEASE_TRAIN_DB_URL"].endswith("@postgres:5432/release_train")
    assert "/opt/airflow/plugins" in env["PYTHONPATH"].split(":")
    # no Airflow secret, no connection, no key: a portal compromise forges no Airflow token
    assert not {k for k in env if k.startswith("AIRFLOW")}
    assert not [m for m in portal["volumes"] if "secrets" in m]
    assert portal["read_only"] is True
    assert portal["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_portal_module_path_is_importable_as_compose_names_it():
    from release_train_airflow.portal import app

    assert app.app.title == "OEM portal service"


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
    # one PostgreSQL driver family, psycopg (v3), as for the release database
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    for shared in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert env[shared].startswith("${")  # one value from .env for every process
    mounts = {m.split(":")[1]: m.split(":")[0] for m in AIRFLOW[name]["volumes"]}
    assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
    assert mounts[env["AIRFLOW__CORE__PLUGINS_FOLDER"]] == "./plugins"
    assert mounts[env["PYTHONPATH"]] == "./include"
    assert mounts[env["RELEASE_TRAIN_CONFIG_DIR"]] == "./config"


def test_mounted_paths_exist():
    """Secret files are git-ignored: each has an example beside it to copy."""
    for spec in SERVICES.values():
        for mount in spec.get("volumes", []):
            source = REPO / mount.split(":")[0]
            if not mount.startswith("."):
                continue
            if source.suffix == ".json" and "secrets" in source.parts:
                source = source.with_suffix(".example.json")
            assert source.exists(), source


def mounts_of(name: str) -> dict[str, str]:
    """container path -> source of every bind mount of the service."""
    return {m.split(":")[1]: m.split(":")[0] for m in SERVICES[name].get("volumes", [])}


SECRET_MOUNTS = {
    "./deploy/secrets/connections.json": {
        "airflow-init",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-dag-processor",
    },
    "./deploy/secrets/ssh": {"airflow-worker"},
    "./deploy/secrets/airflow_passwords.json": {"airflow-init", "airflow-apiserver"},
}


@pytest.mark.parametrize("source", sorted(SECRET_MOUNTS))
def test_secrets_are_mounted_read_only_and_only_where_they_are_used(source):
    users = set()
    for name, spec in SERVICES.items():
        for mount in spec.get("volumes", []):
            if mount.split(":")[0] == source:
                users.add(name)
                assert mount.endswith(":ro"), (name, mount)
    assert users == SECRET_MOUNTS[source]
    assert not [m for spec in SERVICES.values() for m in spec.get("volumes", []) if m.startswith("./deploy/secrets:")]


@pytest.mark.parametrize("name", sorted(AIRFLOW))
def test_the_connections_backend_is_set_exactly_where_the_connections_file_is(name):
    env = AIRFLOW[name]["environment"]
    has_file = "/opt/airflow/secrets/connections.json" in mounts_of(name)
    assert ("AIRFLOW__SECRETS__BACKEND" in env) == has_file
    if has_file:
        kwargs = json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"])
        assert kwargs["connections_file_path"] == "/opt/airflow/secrets/connections.json"


def test_ssh_key_files_of_the_example_connections_live_in_the_workers_key_mount():
    key_dir = {v: k for k, v in mounts_of("airflow-worker").items()}["./deploy/secrets/ssh"]
    connections = json.loads((REPO / "deploy/secrets/connections.example.json").read_text())
    key_files = [c["extra"]["key_file"] for c in connections.values() if c["conn_type"] == "ssh"]
    assert key_files and all(path.startswith(key_dir + "/") for path in key_files)


def test_no_secret_has_a_fallback_value():
    text = (REPO / "docker-compose.yaml").read_text()
    defaults = set(re.findall(r"\$\{(\w+):?-", text))
    assert defaults == {"AIRFLOW_UID", "PORTAL_PORT", "PORTAL_TRUSTED_PROXIES"}  # none is a secret
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {
        "POSTGRES_PASSWORD",
        "PORTAL_DB_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
    }
    example = (REPO / ".env.example").read_text()
    for name in required:
        assert f"\n{name}=CHANGE_ME\n" in example


def test_init_checks_every_secret_before_anything_else():
    init = SERVICES["airflow-init"]
    script = init["command"][-1]
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[0] == "set -euo pipefail"
    guard = shlex.split(lines[1])
    assert guard[:2] == ["python", "/opt/airflow/deploy/scripts/check_secrets.py"]
    mounts = mounts_of("airflow-init")
    args = dict(zip(guard[2::2], guard[3::2], strict=True))
    assert mounts[args["--users"]] == "./deploy/users.yaml"
    assert mounts[args["--passwords"]] == "./deploy/secrets/airflow_passwords.json"
    assert mounts[args["--connections"]] == "./deploy/secrets/connections.json"
    assert mounts["/opt/airflow/deploy/scripts"] == "./deploy/scripts"
    spec = importlib.util.spec_from_file_location("check_secrets", REPO / "deploy/scripts/check_secrets.py")
    check_secrets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_secrets)
    for name in check_secrets.ENV_SECRETS:  # the guard sees every .env secret under its .env name
        assert init["environment"][name] == f"${{{name}:?set it in .env}}"


def test_airflow_users_are_the_named_people_of_users_yaml_with_their_own_passwords():
    for spec in AIRFLOW.values():
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" not in spec["environment"]  # no shared admin
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in spec["environment"]
    api = SERVICES["airflow-apiserver"]
    script = api["command"][-1]
    assert api["command"][:2] == ["bash", "-c"]
    assert "python /opt/airflow/deploy/scripts/airflow_users.py /opt/airflow/deploy/users.yaml" in script
    assert "export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" in script
    assert script.strip().splitlines()[-1] == "exec airflow api-server"
    # SimpleAuthManager opens the file for writing: it works on a private tmpfs copy
    copy = api["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert f"cp /opt/airflow/secrets/airflow_passwords.json {copy}" in script
    assert str(Path(copy).parent) in api["tmpfs"]
    assert mounts_of("airflow-apiserver")["/opt/airflow/deploy/users.yaml"] == "./deploy/users.yaml"


def longest_task_on_an_instance_seconds() -> float:
    """The longest a task works on an OEM instance over SSH: an install (version check,
    then the install command) or a verify that ends in a rollback (polls for the verify
    grace, then the rollback and a last version and health check), each SSH call with its
    connect timeout."""
    from release_pipeline.delivery_process import INSTALL_TIMEOUT_SECONDS, VERIFY_GRACE, VERSION_TIMEOUT_SECONDS
    from release_train_airflow.instance import CONNECT_TIMEOUT_SECONDS

    ssh_call = CONNECT_TIMEOUT_SECONDS
    health_call = 30
    install = (ssh_call + VERSION_TIMEOUT_SECONDS) + (ssh_call + INSTALL_TIMEOUT_SECONDS)
    last_poll = ssh_call + VERSION_TIMEOUT_SECONDS + health_call
    verify_then_roll_back = VERIFY_GRACE.total_seconds() + last_poll + (ssh_call + INSTALL_TIMEOUT_SECONDS) + last_poll
    return max(install, verify_then_roll_back)


def duration_seconds(text: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", text)
    assert "".join(f"{n}{u}" for n, u in parts) == text, f"unparsed duration {text!r}"
    return sum(int(n) * units[u] for n, u in parts)


def test_workers_stop_gracefully_after_the_longest_install():
    grace = duration_seconds(SERVICES["airflow-worker"]["stop_grace_period"])
    assert grace > longest_task_on_an_instance_seconds() > 1800
    assert SERVICES["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"  # Celery warm shutdown


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


def test_the_image_has_the_git_binary_and_runs_as_airflow():
    """The git change source runs git (GitPython, the git provider); the official image has
    none. Installing it needs root; the image must still run as the airflow user."""
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    installs = [line for line in instructions if "apt-get install" in line]
    assert installs and all(" git" in line.split("apt-get install", 1)[1] for line in installs)
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] == "airflow", users


DEV_ONLY = {"devstack", "simulator"}  # dev/: make up's local stack and the platform simulator


def test_the_production_shape_ships_neither_the_local_stack_nor_the_simulator():
    """They are tools for development: no mount of the compose file, no COPY of the image and no
    package of the product's pyproject.toml carries them beside the product."""
    for name, spec in SERVICES.items():
        for mount in spec.get("volumes", []):
            source = REPO / mount.split(":")[0]
            if not mount.startswith(".") or not source.exists():
                continue
            assert source.resolve() != (REPO / "dev").resolve(), f"{name} mounts dev/"
            folders = {path.name for path in source.rglob("*") if path.is_dir()} if source.is_dir() else set()
            assert not folders & DEV_ONLY, f"{name} mounts {mount}, which holds {sorted(folders & DEV_ONLY)}"
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith(("COPY", "ADD")):
            sources = [word for word in line.split()[1:-1] if not word.startswith("--")]
            assert all((REPO / source).is_file() and source.endswith(".txt") for source in sources), line
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    packaged = {
        package.split(".")[0]
        for where in find["where"]
        for package in setuptools.find_namespace_packages(REPO / where, include=find.get("include", ["*"]))
    }
    assert packaged == {"release_pipeline"}
    assert not DEV_ONLY & {path.name for path in (REPO / "include").iterdir()}


def test_the_example_connections_file_is_valid_json():
    connections = json.loads((REPO / "deploy/secrets/connections.example.json").read_text())
    assert {"change_feed", "qa_system", "ava_production", "ava_docs_portal", "ava_notify"} <= set(connections)


def test_every_example_ssh_connection_pins_a_host_key():
    connections = json.loads((REPO / "deploy/secrets/connections.example.json").read_text())
    for conn_id, conn in connections.items():
        if conn["conn_type"] == "ssh":
            assert conn["extra"]["host_key"] and conn["extra"].get("no_host_key_check") is False, conn_id


def init_config_check_lines() -> list[str]:
    """airflow-init's config check, as bash runs it (compose turns ``$$`` into ``$``)."""
    lines = [line.strip() for line in SERVICES["airflow-init"]["command"][-1].splitlines()]
    start = lines.index("status=0")
    return [line.replace("$$", "$") for line in lines[start : start + 3]]


@pytest.mark.parametrize(
    ("portal_url", "pinned", "exit_status", "said"),
    [
        ("http://localhost:8080/oem-portal/", True, 3, "field 'portal_url'"),  # the shipped dev default
        ("https://portal.example.com/oem-portal/", False, 0, "config errors above: those OEMs are left out"),
        ("https://portal.example.com/oem-portal/", True, 0, "SSH host keys: 3 of 3 enabled OEMs pinned"),
    ],
)
def test_init_stops_the_deployment_on_a_portal_url_oems_cannot_use_safely(
    tmp_path, portal_url, pinned, exit_status, said
):
    """The very lines of airflow-init's script, run by bash here against a copy of config/:
    a plain-http or local portal_url stops airflow-init (and so every service after it); an
    OEM connection without a pinned key only leaves that OEM out."""
    import os
    import shutil
    import subprocess
    import sys

    lines = init_config_check_lines()
    assert "check-config --production --connections /opt/airflow/secrets/connections.json" in lines[1]
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    vendor = config / "vendor.yaml"
    vendor.write_text(vendor.read_text().replace("http://localhost:8080/oem-portal/", portal_url))
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"
    connections = {
        f"oem_{oem}_ssh": {"conn_type": "ssh", "host": f"{oem}.example", "extra": {"host_key": key}}
        for oem in ("kestrel", "nimbus", "orbitel")
        if pinned or oem != "nimbus"
    }
    (tmp_path / "connections.json").write_text(json.dumps(connections))
    script = "\n".join(["set -euo pipefail", *lines]).replace(
        "/opt/airflow/secrets/connections.json", str(tmp_path / "connections.json")
    )
    script = script.replace("python -m", f"{shlex.quote(sys.executable)} -m")
    env = {**os.environ, "RELEASE_TRAIN_CONFIG_DIR": str(config)}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == exit_status, result.stderr
    assert said in result.stdout + result.stderr
