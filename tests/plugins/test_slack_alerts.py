"""Staff alerts in Slack (``staff_chat: {kind: slack}`` in config/vendor.yaml) through the
Slack provider's webhook hook, against a real HTTP endpoint on 127.0.0.1 that answers as
Slack does when it is having a bad minute: 503, then 429 with ``Retry-After``, then 200.
The alert arrives once, and the idempotency ledger (SQLite and PostgreSQL) says so."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from simulator.connections import as_environment, release_db_connection
from tests.conftest import REPO


class SlackWebhook(ThreadingHTTPServer):
    """Answers each POST with the next of ``answers`` (status, headers, body); the last
    answer repeats. Records every body and when it came."""

    def __init__(self, answers: list[tuple[int, dict[str, str], str]]):
        self.answers, self.received = list(answers), []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T000/B000/XXXX"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        server = self.server
        server.received.append((time.monotonic(), json.loads(body)))
        status, headers, text = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def slack_config(tmp_path, monkeypatch):
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    vendor = yaml.safe_load((target / "vendor.yaml").read_text())
    vendor["staff_chat"] = {"kind": "slack", "retries": 3}
    (target / "vendor.yaml").write_text(yaml.safe_dump(vendor, sort_keys=False))
    monkeypatch.setenv("RELEASE_TRAIN_CONFIG_DIR", str(target))


def serve(answers, release_db_url, monkeypatch) -> SlackWebhook:
    from release_train_airflow import resources

    server = SlackWebhook(answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    connections = {
        "ava_notify": {"conn_type": "slackwebhook", "password": server.url},
        "release_db": release_db_connection(release_db_url),
    }
    for name, value in as_environment(connections).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    return server


def test_an_alert_survives_a_503_and_a_429_and_arrives_once(repo, release_db_url, slack_config, monkeypatch):
    from release_train_airflow.outbound import alert_vendor

    answers = [(503, {}, "service_unavailable"), (429, {"Retry-After": "1"}, "rate_limited"), (200, {}, "ok")]
    server = serve(answers, release_db_url, monkeypatch)
    try:
        alert_vendor("Held: a notification to OEM nimbus", ["Nothing was sent."], key="k1", repo=repo)
        # a re-run of the task: the ledger knows it went out
        alert_vendor("Held: a notification to OEM nimbus", ["Nothing was sent."], key="k1", repo=repo)
    finally:
        server.shutdown()
    assert len(server.received) == 3  # 503, 429, 200: one alert, posted until Slack took it
    (first_at, body), _, (last_at, _) = server.received
    assert all(b == body for _, b in server.received)
    assert body["text"].startswith("*Held: a notification to OEM nimbus*") and "Nothing was sent." in body["text"]
    assert server.received[2][0] - server.received[1][0] >= 1  # Retry-After was honoured
    row = repo.side_effect("alert:k1")
    assert (row.status, row.attempts, row.result["status"], row.result["channel"]) == ("done", 1, 200, "slack")


def test_slack_still_failing_after_the_retries_fails_the_send_and_records_it(
    repo, release_db_url, slack_config, monkeypatch
):
    from release_train_airflow.outbound import alert_vendor

    server = serve([(503, {}, "service_unavailable")], release_db_url, monkeypatch)
    try:
        with pytest.raises(Exception, match="503"):
            alert_vendor("Deploy failed", ["2026.24"], key="k2", repo=repo)
    finally:
        server.shutdown()
    assert len(server.received) == 4  # the first try and 3 retries
    row = repo.side_effect("alert:k2")
    assert row.status == "failed" and "503" in row.result["error"]


def test_the_http_sink_stays_the_default_for_staff(repo, release_db_url, sim, simulator, monkeypatch):
    from release_train_airflow import resources
    from release_train_airflow.outbound import alert_vendor
    from simulator.connections import simulator_connections

    connections = simulator_connections(simulator.endpoints, [])
    connections["release_db"] = release_db_connection(release_db_url)
    for name, value in as_environment(connections).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    alert_vendor("Deploy failed", ["2026.24"], key="k3", repo=repo)
    (alert,) = sim.notifications("ava_release_managers")
    assert alert["message"]["subject"] == "Deploy failed" and alert["idempotency_key"] == "alert:k3"
