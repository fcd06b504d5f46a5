"""The Jira change source (``change_source: {kind: jira}``) through the atlassian-jira provider,
against a fake Jira on 127.0.0.1 that answers with the documented response shapes:

- Cloud, ``GET /rest/api/3/search/jql``: ``{"issues": [...], "nextPageToken": ..., "isLast": ...}``
  (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/),
  the ``description`` an ADF document;
- Server/Data Center, ``GET /rest/api/2/search``: ``{"startAt", "maxResults", "total", "issues"}``,
  capping ``maxResults`` below what was asked, as a server's ``jira.search.views.default.max`` does.

Basic auth (login and API token) from the Jira connection, or a personal access token (Bearer)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException

from release_pipeline.jira_changes import jql
from release_pipeline.models import ChangeType
from release_pipeline.vendor import JiraChangeSource
from release_train_airflow.change_sources import change_feed

SINCE = pendulum.datetime(2026, 6, 1, 8, tz="UTC")
UNTIL = pendulum.datetime(2026, 6, 15, 8, tz="UTC")
NOTE = "customfield_10050"


def adf(*paragraphs: str) -> dict:
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs],
    }


def issue(key, issue_type, resolved, *, components=("api",), labels=(), note="", summary=None, cloud=True):
    return {
        "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
        "id": str(10000 + int(key.split("-")[1])),
        "self": f"https://jira.example/rest/api/{3 if cloud else 2}/issue/{key}",
        "key": key,
        "fields": {
            "summary": summary or f"{key} summary",
            "issuetype": {"id": "1", "name": issue_type, "subtask": False},
            "components": [
                {"id": "1", "name": name, "self": "https://jira.example/component/1"} for name in components
            ],
            "labels": list(labels),
            "resolutiondate": resolved,
            # Cloud's v3 description is a rich-text document; the release note is a field of its own
            "description": adf("Engineering detail nobody outside should read") if cloud else "engineering detail",
            NOTE: note,
        },
    }


def issues(cloud: bool) -> list[dict]:
    return [
        issue(
            "AVA-1",
            "Story",
            "2026-06-01T08:00:00.000+0000",
            labels=["breaking", "roadmap:webhook-signing"],
            note=adf("Webhooks are signed.", "Check the header.") if cloud else "Webhooks are signed.",
            cloud=cloud,
        ),
        issue(
            "AVA-2",
            "Bug",
            "2026-06-02T12:30:00.000+0200",
            components=["billing", "api"],
            note="Totals round.",
            cloud=cloud,
        ),
        issue("AVA-3", "Task", "2026-06-03T09:00:00.000+0000", cloud=cloud),  # not a type that is a change
        issue("AVA-4", "Improvement", "2026-06-04T09:00:00.000+0000", labels=["reverts:AVA-1"], cloud=cloud),
        # the query asks a day more on each side (JQL dates are in the user's time zone)
        issue("AVA-5", "Bug", "2026-05-31T23:00:00.000+0000", cloud=cloud),
        issue("AVA-6", "Bug", "2026-06-15T08:00:00.000+0000", cloud=cloud),
    ]


class FakeJira(ThreadingHTTPServer):
    def __init__(self, issues: list[dict], *, auth: str, page_cap: int = 2):
        self.issues, self.auth, self.page_cap, self.requests = issues, auth, page_cap, []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server, url = self.server, urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        server.requests.append((url.path, query, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != server.auth:
            return self._answer(401, {"errorMessages": ["You are not authenticated."], "errors": {}})
        size = min(int(query.get("maxResults", 50)), server.page_cap)
        if url.path == "/rest/api/3/search/jql":
            start = int(query.get("nextPageToken", "0").removeprefix("page-"))
            page = server.issues[start : start + size]
            body = {"issues": page, "isLast": start + size >= len(server.issues)}
            if not body["isLast"]:
                body["nextPageToken"] = f"page-{start + size}"
            return self._answer(200, body)
        if url.path == "/rest/api/2/search":
            start = int(query.get("startAt", 0))
            page = server.issues[start : start + size]
            body = {"expand": "schema,names", "startAt": start, "maxResults": size, "total": len(server.issues)}
            return self._answer(200, {**body, "issues": page})
        if url.path == "/rest/api/2/search/removed":
            return self._answer(410, {"errorMessages": ["The requested API has been removed."]})
        self._answer(404, {"errorMessages": ["no such resource"]})

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_jira(monkeypatch):
    servers = []

    def start(issues, *, auth, login=None, password="s3cret", **kwargs):
        server = FakeJira(issues, auth=auth, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        conn = {"conn_type": "jira", "host": server.url, "password": password}
        if login:
            conn["login"] = login
        monkeypatch.setenv("AIRFLOW_CONN_JIRA", json.dumps(conn))
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def basic(login, password) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def source(deployment, **fields) -> JiraChangeSource:
    defaults = {"fix_version": "Platform {release}", "jql": "project = AVA", "release_note_field": NOTE}
    return JiraChangeSource(kind="jira", deployment=deployment, **{**defaults, **fields})


def check_changes(changes, *, cloud: bool):
    by_id = {c.id: c for c in changes}
    assert sorted(by_id) == ["AVA-1", "AVA-2", "AVA-4"]  # a Task skipped, AVA-5 and AVA-6 outside the span
    story = by_id["AVA-1"]
    assert (story.type, story.component, story.title, story.breaking) == (
        ChangeType.FEATURE,
        "api",
        "AVA-1 summary",
        True,
    )
    assert story.description == ("Webhooks are signed.\n\nCheck the header." if cloud else "Webhooks are signed.")
    assert story.roadmap_items == ("webhook-signing",) and story.merged_at == SINCE
    bug = by_id["AVA-2"]
    assert (bug.type, bug.component, bug.description, bug.breaking) == (
        ChangeType.FIX,
        "billing",
        "Totals round.",
        False,
    )
    assert bug.merged_at == pendulum.datetime(2026, 6, 2, 10, 30, tz="UTC")
    assert by_id["AVA-4"].type == ChangeType.IMPROVEMENT and by_id["AVA-4"].reverts == "AVA-1"


def test_cloud_searches_v3_jql_page_by_token(fake_jira):
    server = fake_jira(issues(cloud=True), auth=basic("bot@example.com", "s3cret"), login="bot@example.com")
    changes = change_feed("2026.24", source("cloud"))(SINCE, UNTIL)
    check_changes(changes, cloud=True)
    paths = [path for path, _, _ in server.requests]
    assert paths == ["/rest/api/3/search/jql"] * 3  # 6 issues, 2 a page: pagination by token
    first, *later = [query for _, query, _ in server.requests]
    assert "nextPageToken" not in first and [q["nextPageToken"] for q in later] == ["page-2", "page-4"]
    assert first["jql"] == jql(source("cloud"), "2026.24", SINCE, UNTIL)
    assert first["jql"].startswith('fixVersion = "Platform 2026.24" AND (project = AVA) AND resolutiondate >= ')
    assert NOTE in first["fields"].split(",")


def test_server_searches_v2_by_start_at_and_total(fake_jira):
    server = fake_jira(issues(cloud=False), auth=basic("bot", "s3cret"), login="bot")
    changes = change_feed("2026.24", source("server"))(SINCE, UNTIL)
    check_changes(changes, cloud=False)
    assert [path for path, _, _ in server.requests] == ["/rest/api/2/search"] * 3
    # asked 50 a page, the server capped at 2: the next page starts after what came
    assert [int(query["startAt"]) for _, query, _ in server.requests] == [0, 2, 4]


def test_server_with_a_personal_access_token_sends_a_bearer_token(fake_jira):
    server = fake_jira(issues(cloud=False), auth="Bearer pat-123", password="pat-123")
    changes = change_feed("2026.24", source("server", personal_access_token=True))(SINCE, UNTIL)
    check_changes(changes, cloud=False)
    assert {auth for _, _, auth in server.requests} == {"Bearer pat-123"}


def test_an_issue_the_rules_cannot_read_refuses_the_answer_naming_issue_and_field(fake_jira):
    bad = [
        *issues(cloud=True),
        issue("AVA-7", "Bug", "2026-06-05T09:00:00.000+0000", components=()),
        issue("AVA-8", "Story", None),
    ]
    fake_jira(bad, auth=basic("bot@example.com", "s3cret"), login="bot@example.com")
    with pytest.raises(AirflowFailException) as refused:
        change_feed("2026.24", source("cloud"))(SINCE, UNTIL)
    message = str(refused.value)
    assert message.startswith("release 2026.24: Jira answer refused: ")
    assert "issue 'AVA-7', field 'components': the issue names no component" in message
    assert "issue 'AVA-8', field 'resolutiondate': None is not a resolution timestamp" in message
    assert message.endswith("; nothing of this release was recorded")


def test_a_refused_login_reads_like_the_feed(fake_jira):
    fake_jira(issues(cloud=True), auth=basic("bot@example.com", "right"), login="bot@example.com", password="wrong")
    with pytest.raises(
        AirflowFailException,
        match=r"^release 2026.24: Jira search failed \(connection 'jira', cloud\): Unauthorized \(401\); nothing of",
    ):
        change_feed("2026.24", source("cloud"))(SINCE, UNTIL)
