"""The OEM portal as docker-compose.yaml's ``oem-portal`` runs it: the same app under
uvicorn (``release_train_airflow.portal.app:app``), on a port of its own, against a real
release database (SQLite and PostgreSQL), with no Airflow in the process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from devstack.stack import free_port
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import Change, ChangeType
from release_pipeline.release_calendar import load_calendar
from release_pipeline.tokens import issue_token
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def portal_env(db_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELEASE_TRAIN_DB_URL"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "include"), str(REPO / "plugins")])
    env["RELEASE_TRAIN_CONFIG_DIR"] = str(REPO / "config")
    if db_url:
        env["RELEASE_TRAIN_DB_URL"] = db_url
    return env


def start_portal(db_url: str | None, port: int, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "release_train_airflow.portal.app:app", "--host=127.0.0.1"]
    return subprocess.Popen(
        [*command, f"--port={port}", "--no-server-header", *extra],
        env={**portal_env(db_url), **(env or {})},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def portal(release_db_url):
    yield from serve(release_db_url)


@pytest.fixture
def proxied_portal(release_db_url):
    """As compose runs it: ``--proxy-headers``, the trusted proxies a network (CIDR)."""
    yield from serve(release_db_url, "--proxy-headers", env={"FORWARDED_ALLOW_IPS": "127.0.0.0/8"})


def serve(db_url: str, *extra: str, env: dict[str, str] | None = None):
    port = free_port()
    process = start_portal(db_url, port, *extra, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the portal did not become healthy within 30 s"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_portal_service_is_healthy_and_serves_an_oem_its_own_data(portal, release_db_url):
    repo = ReleaseRepository.from_url(release_db_url)
    try:
        release = load_calendar().release_by_id("2026.20")
        changes = [Change("CHG-1", ChangeType.FEATURE, "connectors", "A connector", "For flows", False, release.at)]
        repo.record_release(release, changes, changes_since=None, changes_until=None, actor="test")
        repo.request_approvals("2026.20", ["kestrel"])
        token = issue_token(repo, oem_id="kestrel", label="kim@kestrel", created_by="test").token
    finally:
        repo.engine.dispose()

    health = httpx.get(f"{portal}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})

    bearer = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{portal}/oem-portal/api/v1/me", headers=bearer)
    assert (me.status_code, me.headers["content-type"]) == (200, "application/json")
    assert me.json()["product"] == "Kestrel Flow"
    releases = httpx.get(f"{portal}/oem-portal/api/v1/releases", headers=bearer)
    assert releases.status_code == 200 and [r["release_id"] for r in releases.json()] == ["2026.20"]
    schema = httpx.get(f"{portal}/oem-portal/openapi.json", headers=bearer).json()
    assert [server["url"] for server in schema["servers"]] == ["/oem-portal"]  # where generated clients call
    denied = httpx.get(f"{portal}/oem-portal/api/v1/me", headers={"Authorization": "Bearer rtp_forged"})
    assert denied.status_code == 401
    login = httpx.get(f"{portal}/oem-portal/login")
    assert login.headers["content-type"].startswith("text/html") and 'name="token"' in login.text
    assert httpx.get(f"{portal}/").headers["location"] == "/oem-portal/"

    # nothing of Airflow: its UI would answer any unknown path with 200 text/html
    for path in ("/api/v2/monitor/health", "/api/v2/dags", "/auth/token", "/execution/health", "/home", "/docs"):
        answer = httpx.get(f"{portal}{path}")
        assert (answer.status_code, answer.headers["content-type"]) == (404, "application/json"), path


def test_the_portal_service_does_not_import_airflow():
    check = (
        "import sys, release_train_airflow.portal.app;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], env=portal_env("sqlite:///unused.db"), capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


def test_the_portal_service_refuses_to_start_without_a_release_database():
    process = start_portal(None, free_port())
    output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "the OEM portal needs the release database: set RELEASE_TRAIN_DB_URL" in output


def test_behind_a_trusted_proxy_each_forwarded_client_is_locked_out_on_its_own(proxied_portal, release_db_url):
    """Every OEM arrives from the proxy's address: ten failures of one client with one token
    prefix lock out that client and prefix, not the OEM next to it, nor a valid token."""
    repo = ReleaseRepository.from_url(release_db_url)
    try:
        token = issue_token(repo, oem_id="kestrel", label="kim@kestrel", created_by="test").token
    finally:
        repo.engine.dispose()

    def me(client: str, bearer: str) -> int:
        headers = {"Authorization": f"Bearer {bearer}", "X-Forwarded-For": client}
        return httpx.get(f"{proxied_portal}/oem-portal/api/v1/me", headers=headers).status_code

    assert [me("198.51.100.7", f"rtp_revokedTK{i}") for i in range(10)] == [401] * 10
    assert me("198.51.100.7", "rtp_revokedTK") == 429
    assert me("198.51.100.8", "rtp_revokedTK") == 401  # another client behind the same proxy
    assert me("198.51.100.7", token) == 200  # a valid token, even from the locked-out client
