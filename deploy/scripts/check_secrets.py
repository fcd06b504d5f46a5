"""The production shape's secrets guard: ``airflow-init`` runs it first and refuses to
start the release train when a secret is missing, empty, a placeholder or too weak.

    python deploy/scripts/check_secrets.py --users deploy/users.yaml \
        --passwords deploy/secrets/airflow_passwords.json --connections deploy/secrets/connections.json

Secrets of ``.env`` are read from the environment under their ``.env`` names (compose
hands them to the init service). Exit 0 when every secret passes, 1 with one line per
problem naming the variable or file and field, 2 on bad arguments. Standard library and
PyYAML only: it runs in the Airflow image before anything else.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
from pathlib import Path

import yaml

# what .env.example holds; the guard refuses any value containing it
PLACEHOLDER = "CHANGE_ME"
PLACEHOLDER_PATTERN = re.compile(r"change[-_ ]?me|<[^<>]*>|\.\.\.|^x+$|^(airflow|admin|password|secret)$", re.I)
MIN_SECRET_LENGTH = 32
MIN_PASSWORD_LENGTH = 12
MAKE_FERNET_KEY = "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
MAKE_SECRET = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

ROLES = ("viewer", "user", "op", "admin")
USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
# logins that name a function, not a person: each person signs in as themselves
SHARED_NAMES = frozenset({"admin", "airflow", "root", "user", "users", "operator", "ops", "op", "viewer", "qa", "test"})


def _fernet_problem(value: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        return f"is not a Fernet key (32 url-safe base64 bytes); make one with `{MAKE_FERNET_KEY}`"
    return None


def _long_secret_problem(value: str) -> str | None:
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters, needs at least {MIN_SECRET_LENGTH}; make one with `{MAKE_SECRET}`"
    return None


def _password_problem(value: str) -> str | None:
    if len(value) < MIN_PASSWORD_LENGTH:
        return f"is {len(value)} characters, needs at least {MIN_PASSWORD_LENGTH}"
    return None


def _postgres_password_problem(value: str) -> str | None:
    # compose puts it into database URLs and a JSON connection as it is
    if not re.fullmatch(r"[A-Za-z0-9._~-]+", value):
        return "may hold only letters, digits and . _ ~ - (it goes into database URLs unescaped)"
    return _password_problem(value)


# .env name -> (what it is, extra check)
ENV_SECRETS = {
    "AIRFLOW_FERNET_KEY": ("encrypts connection passwords in Airflow's database", _fernet_problem),
    "AIRFLOW_JWT_SECRET": ("signs the api-server's tokens", _long_secret_problem),
    "AIRFLOW_API_SECRET_KEY": ("signs the api-server's sessions", _long_secret_problem),
    "POSTGRES_PASSWORD": ("the PostgreSQL password of Airflow and the release database", _postgres_password_problem),
    "PORTAL_DB_PASSWORD": ("the PostgreSQL password of the OEM portal's own role", _postgres_password_problem),
}
# secrets that must differ: the portal's role is a role of its own only with its own password
DISTINCT = (("PORTAL_DB_PASSWORD", "POSTGRES_PASSWORD"),)


def is_placeholder(value: str) -> bool:
    return bool(PLACEHOLDER_PATTERN.search(value.strip()))


def check_env(environ: dict[str, str]) -> list[str]:
    problems = []
    for name, (what, extra_check) in ENV_SECRETS.items():
        value = environ.get(name)
        if value is None:
            problems.append(f"{name} (.env, {what}) is not set")
        elif not value.strip():
            problems.append(f"{name} (.env, {what}) is empty")
        elif is_placeholder(value):
            problems.append(f"{name} (.env, {what}) is a placeholder ({value!r}): set a real secret")
        elif problem := extra_check(value):
            problems.append(f"{name} (.env, {what}) {problem}")
    for name, other in DISTINCT:
        if environ.get(name) and environ.get(name) == environ.get(other):
            problems.append(f"{name} (.env) is the same as {other}: give it a value of its own")
    return problems


def load_users(path: Path) -> tuple[list[dict], list[str]]:
    """The named Airflow users of ``deploy/users.yaml`` and the problems with them."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return [], [f"{path}: not found (one entry per person: name and role)"]
    except yaml.YAMLError as exc:
        return [], [f"{path}: not valid YAML: {exc}"]
    users = (data or {}).get("users") if isinstance(data, dict) else None
    if not isinstance(users, list) or not users:
        return [], [f"{path}: needs a non-empty `users:` list (each with name and role)"]
    problems, seen = [], set()
    for index, user in enumerate(users):
        where = f"{path}: users[{index}]"
        if not isinstance(user, dict) or not isinstance(user.get("name"), str):
            problems.append(f"{where}: needs `name` and `role`")
            continue
        name, role = user["name"], user.get("role")
        where = f"{path}: user {name!r}"
        if not USER_NAME.match(name):
            problems.append(f"{where}: a name is lower-case letters, digits, '.', '_' or '-' (e.g. ann.smith)")
        elif name in SHARED_NAMES:
            problems.append(f"{where}: a shared login; name the person (e.g. ann.smith)")
        if name in seen:
            problems.append(f"{where}: listed twice")
        seen.add(name)
        if role not in ROLES:
            problems.append(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
        unknown = set(user) - {"name", "role", "who"}
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (name, role, who)")
    if not any(isinstance(u, dict) and u.get("role") == "admin" for u in users):
        problems.append(f"{path}: no user has role admin")
    return [u for u in users if isinstance(u, dict)], problems


def check_passwords(path: Path, users: list[dict]) -> list[str]:
    try:
        passwords = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"{path}: not found (one password per user of users.yaml)"]
    except json.JSONDecodeError as exc:
        return [f"{path}: not valid JSON: {exc}"]
    if not isinstance(passwords, dict):
        return [f"{path}: must be a JSON object of user name -> password"]
    problems, owners = [], {}
    for user in users:
        name = user.get("name")
        value = passwords.get(name)
        where = f"{path}: the password of {name!r}"
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where} is missing or empty")
        elif is_placeholder(value):
            problems.append(f"{where} is a placeholder: set a real password")
        elif problem := _password_problem(value):
            problems.append(f"{where} {problem}")
        else:
            owners.setdefault(value, []).append(name)
    for names in owners.values():
        if len(names) > 1:
            problems.append(
                f"{path}: users {', '.join(map(repr, names))} share one password; each person has their own"
            )
    return problems


def _strings(value, path: str):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_connections(path: Path) -> list[str]:
    try:
        connections = json.loads(path.read_text())
    except FileNotFoundError:
        return [f"{path}: not found (copy deploy/secrets/connections.example.json and fill it in)"]
    except json.JSONDecodeError as exc:
        return [f"{path}: not valid JSON: {exc}"]
    if not isinstance(connections, dict) or not connections:
        return [f"{path}: must be a JSON object of connection id -> connection"]
    problems = []
    for conn_id, conn in connections.items():
        for field, value in _strings(conn, ""):
            if is_placeholder(value):
                problems.append(f"{path}: connection {conn_id!r} field {field!r} is a placeholder ({value!r})")
        if (
            isinstance(conn, dict)
            and conn.get("conn_type") == "http"
            and conn.get("password")
            and not conn.get("login")
        ):
            # HttpHook sends basic auth only with a login: a lone password (a token) is never sent
            problems.append(
                f"{path}: connection {conn_id!r} has a password but no login, so it is never sent; "
                'give a token as "extra": {"Authorization": "Bearer <token>"} instead'
            )
    return problems


def check_all(environ: dict[str, str], *, users: Path, passwords: Path, connections: Path) -> list[str]:
    named, problems = load_users(users)
    problems = check_env(environ) + problems
    problems += check_passwords(passwords, named)
    problems += check_connections(connections)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=Path, required=True, help="deploy/users.yaml")
    parser.add_argument("--passwords", type=Path, required=True, help="one password per user (JSON)")
    parser.add_argument("--connections", type=Path, required=True, help="the Airflow connections file (JSON)")
    args = parser.parse_args(argv)
    problems = check_all(dict(os.environ), users=args.users, passwords=args.passwords, connections=args.connections)
    for problem in problems:
        print(f"refused: {problem}", file=sys.stderr)
    if problems:
        print(f"the release train does not start: {len(problems)} secret problem(s) above", file=sys.stderr)
        return 1
    print(
        f"secrets: {len(ENV_SECRETS)} from .env, passwords of {len(load_users(args.users)[0])} users, connections: ok"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
