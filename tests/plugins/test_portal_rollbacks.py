"""Regressions and rollbacks in the OEM portal (JSON API and pages), on SQLite and
PostgreSQL: an OEM reports a regression on the release it runs (the vendor alerted at
once), asks to go back to the version it ran before, and sees staff's decision
white-labelled, in its own time zone; forms need the session's CSRF token."""

from __future__ import annotations

import re

import pendulum
import pytest

from release_pipeline import rollbacks
from release_pipeline.models import DeliveryStatus
from release_train_airflow.portal import create_app
from tests.builders import World

NOW = pendulum.datetime(2026, 12, 4, 9, 30, tz="UTC")  # 10:30 in Amsterdam (nimbus)


class Alerts(list):
    def __call__(self, subject, lines, *, key, repo):
        self.append((key, subject, lines))


@pytest.fixture
def world(repo, calendar):
    """nimbus was upgraded from 2026.22 to 2026.24 by a delivery; the portal's clock and
    vendor alerts are the test's."""
    world = World(repo, calendar)
    repo.upsert_delivery("nimbus", "2026.24", status=DeliveryStatus.INSTALLED, from_release_id="2026.22")
    repo.set_installed_version("nimbus", "2026.24")
    world.alerts = Alerts()
    world.app = create_app(repo, now=lambda: NOW, alert_vendor=world.alerts)
    return world


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def test_report_then_request_then_see_the_refusal_white_labelled(world):
    api = world.client("nimbus")
    assert api.get("/api/v1/rollbacks").json() == {
        "runs": "2026.24",
        "can_roll_back_to": "2026.22",
        "regressions": [],
        "requests": [],
    }
    response = api.post("/api/v1/regressions", json={"release_id": "2026.24", "description": "Exports time out"})
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["reported_at"], report["release_team_alerted"]) == ("2026-12-04T10:30:00+01:00", True)
    [(key, subject, lines)] = world.alerts
    assert key == f"regression:nimbus:{report['id']}" and "Exports time out" in lines
    assert subject == f"OEM nimbus: regression reported on 2026.24 (report #{report['id']})"

    asked = {"release_id": "2026.24", "reason": "we cannot export", "regression_id": report["id"]}
    response = api.post("/api/v1/rollback-requests", json=asked)
    assert response.status_code == 201, response.text
    request = response.json()
    assert (request["from_release_id"], request["to_release_id"], request["status"]) == (
        "2026.24",
        "2026.22",
        "requested",
    )
    again = api.post("/api/v1/rollback-requests", json=asked)
    assert again.status_code == 409 and "already has rollback request" in again.json()["detail"]
    assert api.get("/api/v1/rollbacks").json()["can_roll_back_to"] is None  # one open at a time

    rollbacks.refuse(world.repo, request["id"], by="rita", reason="AVA ships the fix on Monday", at=NOW)
    [seen] = api.get("/api/v1/rollbacks").json()["requests"]
    assert seen["status"] == "refused" and seen["outcome"].startswith("refused")
    assert seen["decision_reason"] is not None and "AVA" not in seen["decision_reason"]
    assert seen["decided_at"] == "2026-12-04T10:30:00+01:00" and "rita" not in str(seen)


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/api/v1/regressions", {"release_id": "2026.22", "description": "x"}, 409, "your instance runs (2026.24)"),
        ("/api/v1/regressions", {"release_id": "2026.24", "description": " "}, 422, "description"),
        ("/api/v1/rollback-requests", {"release_id": "2026.24", "reason": "x", "regression_id": 1}, 404, "#1 of yours"),
        ("/api/v1/rollback-requests", {"release_id": "2026.24", "reason": "x", "to": "2026.20"}, 422, "to"),
    ],
)
def test_bad_requests_are_refused_naming_what_is_wrong_and_change_nothing(world, path, body, status, detail):
    before = world.state()
    response = world.client("nimbus").post(path, json=body)  # report #1 is orbitel's (tests.builders.World)
    assert response.status_code == status and detail in response.text, response.text
    assert world.state() == before and world.alerts == []


def test_a_day_of_reports_is_the_most_with_a_clear_429(world):
    api = world.client("nimbus")
    for n in range(rollbacks.REPORTS_PER_DAY):
        assert (
            api.post("/api/v1/regressions", json={"release_id": "2026.24", "description": f"#{n}"}).status_code == 201
        )
    response = api.post("/api/v1/regressions", json={"release_id": "2026.24", "description": "one more"})
    assert response.status_code == 429 and "10 regression reports in 24 hours" in response.json()["detail"]
    assert len(world.alerts) == rollbacks.REPORTS_PER_DAY


def test_the_pages_report_and_request_with_the_sessions_csrf_token(world):
    browser = world.client("nimbus", browser=True)
    page = browser.get("/rollbacks")
    assert page.status_code == 200 and "Ask to go back to 2026.22" in page.text and "secret" not in page.text
    forged = browser.post(
        "/rollbacks/regressions", data={"csrf": "forged", "release_id": "2026.24", "description": "x"}
    )
    assert forged.status_code == 403 and world.repo.regression_reports("nimbus") == []

    csrf = csrf_of(page.text)
    done = browser.post(
        "/rollbacks/regressions", data={"csrf": csrf, "release_id": "2026.24", "description": "SSO broke"}
    )
    assert done.status_code == 303 and "done=regression+report" in done.headers["location"]
    [report] = world.repo.regression_reports("nimbus")
    assert (report.description, report.channel, report.reported_by) == ("SSO broke", "portal", "user@nimbus")

    blank = browser.post("/rollbacks/requests", data={"csrf": csrf, "release_id": "2026.24", "reason": ""})
    assert blank.status_code == 422 and "reason: a value is required" in blank.text
    assert world.repo.rollback_requests("nimbus") == []
    done = browser.post(
        "/rollbacks/requests",
        data={"csrf": csrf, "release_id": "2026.24", "reason": "SSO broke", "regression_id": str(report.id)},
    )
    assert done.status_code == 303, done.text
    page = browser.get("/rollbacks")
    assert "waiting for the release team" in page.text and "Ask to go back" not in page.text
    assert "2026-12-04 10:30 by user@nimbus" in page.text  # the OEM's time zone


def test_a_report_stands_when_the_vendor_alert_fails(world):
    def down(subject, lines, *, key, repo):
        raise ConnectionError("the vendor's channel is down")

    world.app = create_app(world.repo, now=lambda: NOW, alert_vendor=down)
    response = world.client("nimbus").post("/api/v1/regressions", json={"release_id": "2026.24", "description": "x"})
    assert response.status_code == 201 and response.json()["release_team_alerted"] is False
    assert [r.id for r in world.repo.regression_reports("nimbus", unalerted=True)] == [response.json()["id"]]


def test_the_deployed_portal_records_the_report_and_leaves_the_alert_to_airflow(world):
    """No channel secrets in the portal (docs/portal-security.md): DAG regression_alerts sends it."""
    world.app = create_app(world.repo, now=lambda: NOW)
    response = world.client("nimbus").post("/api/v1/regressions", json={"release_id": "2026.24", "description": "x"})
    assert response.status_code == 201 and response.json()["release_team_alerted"] is False
    alerts = Alerts()
    sent = rollbacks.alert_pending(world.repo, lambda s, lines, *, key: alerts(s, lines, key=key, repo=None))
    assert response.json()["id"] in sent and f"regression:nimbus:{response.json()['id']}" in [k for k, _, _ in alerts]
