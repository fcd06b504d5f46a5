"""deploy/secrets/connections.example.json as production reads it (Airflow's local-filesystem
secrets backend, docker-compose.yaml): the vendor production API gets its bearer token from the
HttpHook the pipeline uses, checked on a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.secrets.local_filesystem import LocalFilesystemBackend

from tests.conftest import REPO

EXAMPLE = REPO / "deploy" / "secrets" / "connections.example.json"


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Recorder.seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = json.dumps({"id": "dep-1", "status": "ok", "version": "2026.23"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def production_api():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/production"
    server.shutdown()
    server.server_close()


@pytest.fixture
def ava_production(production_api, tmp_path, monkeypatch):
    """The example file with a real token and the local server for the vendor's host, read by
    the secrets backend production uses, and handed to the hooks as the ``ava_production`` id."""
    connections = json.loads(EXAMPLE.read_text())
    entry = json.loads(json.dumps(connections["ava_production"]).replace("CHANGE_ME", "t0ken-123"))
    entry["host"] = production_api
    secrets_file = tmp_path / "connections.json"
    secrets_file.write_text(json.dumps({"ava_production": entry}))
    conn = LocalFilesystemBackend(connections_file_path=str(secrets_file)).get_connection("ava_production")
    monkeypatch.setenv("AIRFLOW_CONN_AVA_PRODUCTION", conn.as_json())
    return conn


def test_the_example_sends_the_vendor_production_token_as_a_bearer_header(ava_production):
    from airflow.providers.http.hooks.http import HttpHook

    # the calls of plugins/release_train_airflow/production_release.py and the wait_for_deploy operator
    HttpHook("POST", http_conn_id="ava_production").run(
        "deployments", json={"release_id": "2026.23"}, headers={"Idempotency-Key": "deploy:2026.23:attempt-1"}
    )
    HttpHook("GET", http_conn_id="ava_production").run("deployments/dep-1")
    HttpHook("GET", http_conn_id="ava_production").run("health", extra_options={"check_response": False})
    assert Recorder.seen == [
        ("POST", "/api/production/deployments", "Bearer t0ken-123"),
        ("GET", "/api/production/deployments/dep-1", "Bearer t0ken-123"),
        ("GET", "/api/production/health", "Bearer t0ken-123"),
    ]


def test_the_example_sets_no_password_without_login():
    # HttpHook sends basic auth only with a login: a lone password would silently send nothing
    for conn_id, entry in json.loads(EXAMPLE.read_text()).items():
        if entry["conn_type"] == "http":
            assert "password" not in entry or "login" in entry, conn_id
