"""deploy/scripts/check_secrets.py, run as airflow-init runs it: the .env.example values
and the example secret files are refused, naming each variable; real-looking secrets
pass. deploy/scripts/airflow_users.py turns deploy/users.yaml into Airflow's users."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SCRIPTS = REPO / "deploy/scripts"
ENV_NAMES = (
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "PORTAL_DB_PASSWORD",
)
USERS = [u["name"] for u in yaml.safe_load((REPO / "deploy/users.yaml").read_text())["users"]]


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def real_env() -> dict[str, str]:
    return {
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "PORTAL_DB_PASSWORD": secrets.token_urlsafe(18),
    }


def real_files(tmp_path: Path) -> dict[str, Path]:
    passwords = tmp_path / "airflow_passwords.json"
    passwords.write_text(json.dumps({name: secrets.token_urlsafe(16) for name in USERS}))
    connections = json.loads((REPO / "deploy/secrets/connections.example.json").read_text())
    connections["ava_production"]["extra"]["Authorization"] = f"Bearer {secrets.token_urlsafe(24)}"
    connections["oem_nimbus_ssh"]["extra"]["host_key"] = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqGMfDlPI2wjrGfvbp"
    )
    (tmp_path / "connections.json").write_text(json.dumps(connections))
    return {"users": REPO / "deploy/users.yaml", "passwords": passwords, "connections": tmp_path / "connections.json"}


def guard(env: dict[str, str], files: dict[str, Path]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    args = [f"--{name}={path}" for name, path in files.items()]
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "check_secrets.py"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_env_example_holds_only_placeholders_for_secrets():
    example = env_example()
    assert {name: example[name] for name in ENV_NAMES} == dict.fromkeys(ENV_NAMES, "CHANGE_ME")


def test_the_example_values_are_refused_naming_every_variable_and_file():
    files = {
        "users": REPO / "deploy/users.yaml",
        "passwords": REPO / "deploy/secrets/airflow_passwords.example.json",
        "connections": REPO / "deploy/secrets/connections.example.json",
    }
    result = guard(env_example(), files)
    assert result.returncode == 1, result
    for name in ENV_NAMES:
        assert f"refused: {name} (.env" in result.stderr and "placeholder" in result.stderr
    for user in USERS:
        assert f"the password of {user!r} is a placeholder" in result.stderr
    assert "connection 'ava_production' field 'extra.Authorization' is a placeholder" in result.stderr
    assert "connection 'oem_nimbus_ssh' field 'extra.host_key' is a placeholder" in result.stderr
    assert "the release train does not start" in result.stderr


def test_real_looking_secrets_pass(tmp_path):
    result = guard(real_env(), real_files(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "ok" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AIRFLOW_JWT_SECRET", None, "AIRFLOW_JWT_SECRET (.env, signs the api-server's tokens) is not set"),
        ("AIRFLOW_JWT_SECRET", "  ", "AIRFLOW_JWT_SECRET (.env, signs the api-server's tokens) is empty"),
        (
            "AIRFLOW_API_SECRET_KEY",
            "change-me",
            "AIRFLOW_API_SECRET_KEY (.env, signs the api-server's sessions) is a placeholder",
        ),
        ("AIRFLOW_API_SECRET_KEY", "short-but-real", "is 14 characters, needs at least 32"),
        (
            "AIRFLOW_FERNET_KEY",
            "7xAlK1tXDCCjS1fOpCmo0dgwTDeBDD120aMnRIKIMks",  # fixed: xdist workers must collect the same ids
            "AIRFLOW_FERNET_KEY (.env, encrypts connection passwords in Airflow's database) is not a Fernet key",
        ),
        (
            "POSTGRES_PASSWORD",
            "airflow",
            "POSTGRES_PASSWORD (.env, the PostgreSQL password of Airflow and the release database) is a placeholder",
        ),
        ("POSTGRES_PASSWORD", "a@b/c:d" + "x" * 12, "may hold only letters, digits"),
        (
            "PORTAL_DB_PASSWORD",
            None,
            "PORTAL_DB_PASSWORD (.env, the PostgreSQL password of the OEM portal's own role) is not set",
        ),
        ("PORTAL_DB_PASSWORD", "p@ss:word/" + "x" * 12, "may hold only letters, digits"),
    ],
)
def test_a_missing_empty_placeholder_or_weak_secret_is_refused(tmp_path, name, value, message):
    env = real_env()
    if value is None:
        del env[name]
    else:
        env[name] = value
    result = guard(env, real_files(tmp_path))
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.count("refused:") == 1  # only the bad one


def test_passwords_are_per_person_never_shared_nor_missing(tmp_path):
    files = real_files(tmp_path)
    passwords = json.loads(files["passwords"].read_text())
    passwords[USERS[1]] = passwords[USERS[0]]
    del passwords[USERS[2]]
    files["passwords"].write_text(json.dumps(passwords))
    result = guard(real_env(), files)
    assert result.returncode == 1
    assert f"users {USERS[0]!r}, {USERS[1]!r} share one password" in result.stderr
    assert f"the password of {USERS[2]!r} is missing or empty" in result.stderr


def test_missing_secret_files_are_refused(tmp_path):
    files = real_files(tmp_path)
    files["connections"].unlink()
    files["passwords"].unlink()
    result = guard(real_env(), files)
    assert result.returncode == 1
    assert f"{files['connections']}: not found" in result.stderr
    assert f"{files['passwords']}: not found" in result.stderr


def test_an_http_token_as_a_password_without_login_is_refused(tmp_path):
    # HttpHook would send no credentials at all: the vendor production API would answer 401
    files = real_files(tmp_path)
    connections = json.loads(files["connections"].read_text())
    connections["ava_production"] = {
        "conn_type": "http",
        "host": "https://deploy.ava.example/api/production",
        "password": secrets.token_urlsafe(24),
    }
    files["connections"].write_text(json.dumps(connections))
    result = guard(real_env(), files)
    assert result.returncode == 1
    assert "connection 'ava_production' has a password but no login, so it is never sent" in result.stderr
    assert '"extra": {"Authorization": "Bearer <token>"}' in result.stderr


def airflow_users(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "airflow_users.py"), str(path)], capture_output=True, text=True, timeout=60
    )


def test_airflow_users_are_the_named_people_with_their_roles():
    result = airflow_users(REPO / "deploy/users.yaml")
    assert result.returncode == 0, result.stderr
    pairs = [entry.split(":") for entry in result.stdout.strip().split(",")]
    assert [name for name, _ in pairs] == USERS
    roles = {role for _, role in pairs}
    assert {"admin", "op", "viewer"} <= roles
    assert not {"admin", "airflow"} & set(USERS)  # no shared login


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([{"name": "admin", "role": "admin"}], "user 'admin': a shared login; name the person"),
        ([{"name": "ann.smith", "role": "boss"}], "role 'boss' is not one of viewer, user, op, admin"),
        ([{"name": "ann.smith", "role": "op"}], "no user has role admin"),
        ([{"name": "ann.smith", "role": "admin"}, {"name": "ann.smith", "role": "op"}], "listed twice"),
        ([{"name": "Ann Smith", "role": "admin"}], "a name is lower-case letters"),
        ([{"name": "ann.smith", "role": "admin", "password": "x"}], "unknown field(s) password"),
    ],
)
def test_bad_users_files_are_refused_with_the_user_named(tmp_path, users, message):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": users}))
    result = airflow_users(path)
    assert result.returncode == 1 and result.stdout == ""
    assert message in result.stderr


def test_the_portals_database_password_is_its_own(tmp_path):
    env = real_env()
    env["PORTAL_DB_PASSWORD"] = env["POSTGRES_PASSWORD"]
    result = guard(env, real_files(tmp_path))
    assert result.returncode == 1
    assert "PORTAL_DB_PASSWORD (.env) is the same as POSTGRES_PASSWORD: give it a value of its own" in result.stderr
