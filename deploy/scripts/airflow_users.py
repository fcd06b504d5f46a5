"""Prints ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS`` (``name:role,...``) for the named
people of ``deploy/users.yaml``; the api-server starts with it. Exit 1 with the problems
when the file is not valid (then the api-server does not start).

    python deploy/scripts/airflow_users.py deploy/users.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

from check_secrets import load_users


def users_setting(path: Path) -> str:
    users, problems = load_users(path)
    if problems:
        raise ValueError("\n".join(problems))
    return ",".join(f"{user['name']}:{user['role']}" for user in users)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: airflow_users.py USERS_YAML", file=sys.stderr)
        return 2
    try:
        print(users_setting(Path(argv[0])))
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
