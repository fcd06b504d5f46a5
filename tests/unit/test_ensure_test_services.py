"""scripts/ensure-test-services: what `make test` makes sure of first, and the message that says
what to install when it cannot (run for real, on a PATH that lacks the tool in question)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, pg_admin_url

SCRIPT = REPO / "scripts" / "ensure-test-services"
BASH = shutil.which("bash")
# what the script needs to run at all; pg_ctlcluster, redis-server, apt-get, pg_isready are left out
BASICS = ("ls", "sort", "tail", "sleep", "id", "mkdir", "env")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def bare_path(tmp_path) -> str:
    """A PATH with the basic tools only: no PostgreSQL, Redis or apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def run(*services: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("RELEASE_TRAIN_TEST_PG_URL", "TEST_REDIS_PORT")}
    environment.update(ENSURE_SERVICES_WAIT="2", **env)
    if path is not None:
        environment["PATH"] = path
    return subprocess.run([BASH, str(SCRIPT), *services], env=environment, capture_output=True, text=True, timeout=60)


def test_a_missing_local_postgresql_names_the_package_and_the_start_command(bare_path):
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres"
    result = run("postgres", path=bare_path, RELEASE_TRAIN_TEST_PG_URL=url)
    assert result.returncode == 1
    assert "PostgreSQL is not reachable on 127.0.0.1:" in result.stderr
    assert "no pg_ctlcluster" in result.stderr
    assert "sudo apt-get install -y postgresql" in result.stderr
    assert "pg_ctlcluster --skip-systemctl-redirect" in result.stderr


def test_an_unreachable_other_postgresql_is_not_started_but_named():
    # 127.0.0.2 stands for a server elsewhere: only 127.0.0.1/localhost is started here
    result = run("postgres", RELEASE_TRAIN_TEST_PG_URL=f"postgresql://ci:secret@127.0.0.2:{closed_port()}/x")
    assert result.returncode == 1
    assert "PostgreSQL is not reachable at 127.0.0.2:" in result.stderr
    assert "starting" not in result.stdout


def test_a_url_that_is_not_postgresql_is_refused():
    result = run("postgres", RELEASE_TRAIN_TEST_PG_URL="127.0.0.1:5432")
    assert result.returncode == 1
    assert "RELEASE_TRAIN_TEST_PG_URL is not a PostgreSQL URL: 127.0.0.1:5432" in result.stderr


def test_a_missing_redis_names_the_package(bare_path):
    result = run("redis", path=bare_path, TEST_REDIS_PORT=str(closed_port()))
    assert result.returncode == 1
    assert "Redis is not reachable on 127.0.0.1:" in result.stderr
    assert "no redis-server" in result.stderr
    assert "sudo apt-get install -y redis-server" in result.stderr


def test_a_missing_chromium_without_apt_get_says_how_to_install_it(bare_path, tmp_path):
    result = run("chromium", path=bare_path, TEST_CHROMIUM=str(tmp_path / "no-chromium"))
    assert result.returncode == 1
    assert f"Debian's chromium is missing ({tmp_path / 'no-chromium'})" in result.stderr
    assert "sudo apt-get install -y chromium chromium-driver" in result.stderr


def test_an_unknown_service_is_refused():
    result = run("postgres", "mysql")
    assert result.returncode == 1
    assert "unknown service 'mysql' (known: postgres, redis, chromium)" in result.stderr


def test_the_running_postgresql_is_accepted_as_it_is():
    # the suite's own server (RELEASE_TRAIN_TEST_PG_URL): up, so nothing is started
    result = run("postgres", RELEASE_TRAIN_TEST_PG_URL=pg_admin_url())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[services] ready: postgres"


def test_make_test_runs_it_first_and_ci_runs_make_test():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0].strip().splitlines()
    assert recipe[1].strip() == "scripts/ensure-test-services postgres redis chromium"
    assert "pytest" in recipe[2]
    fast = makefile.split("\ntest-fast:", 1)[1].split("\n\n", 1)[0].strip().splitlines()
    assert fast[1].strip() == "scripts/ensure-test-services postgres"
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci
    assert not any("pg_ctlcluster" in line or "redis-server" in line for line in ci)
    assert os.access(SCRIPT, os.X_OK)


def test_the_readme_test_command_is_what_ci_runs():
    readme = Path(REPO / "README.md").read_text()
    assert "make test   # run the whole test suite" in readme
