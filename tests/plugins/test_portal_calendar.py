"""The install calendar served by the OEM portal (``GET /oem-portal/calendar.ics?token=``),
in-process on SQLite and PostgreSQL: a feed token opens it and nothing else, no other token
opens it, it passes the white-label step and the response filter for its own OEM, and
its token never reaches an access log."""

from __future__ import annotations

import logging
import re
import warnings

import icalendar
import pendulum
import pytest

from release_pipeline.notes import Guard
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar, load_calendar
from release_pipeline.tokens import issue_token
from release_pipeline.vendor import load_vendor
from release_train_airflow.portal import create_app
from release_train_airflow.portal.app import ACCESS_LOG, MaskTokens, create_service
from release_train_airflow.portal.calendar import MISSING
from tests.builders import World

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = pendulum.datetime(2026, 11, 28, 12, tz="UTC")  # before the install day of 2026.23-2026.24


def with_freezes(*freezes: dict) -> ReleaseCalendar:
    config = load_calendar().to_dict()
    return ReleaseCalendar(CalendarConfig.model_validate({**config, "freeze_windows": [*freezes]}))


@pytest.fixture
def world(repo, calendar):
    world = World(repo, calendar)
    world.app = create_app(repo, now=lambda: NOW)
    world.feeds = {
        oem: issue_token(repo, oem_id=oem, label=f"calendar@{oem}", created_by="test", kind="feed").token
        for oem in ("nimbus", "orbitel")
    }
    return world


def get_feed(world, token: str | None, app=None):
    client = TestClient(app or world.app, follow_redirects=False)
    return client.get("/calendar.ics", params={"token": token} if token is not None else None)


def test_a_feed_token_opens_its_own_oems_calendar(world):
    response = get_feed(world, world.feeds["nimbus"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["cache-control"] == "private, no-cache"
    cal = icalendar.Calendar.from_ical(response.content)
    assert str(cal["x-wr-calname"]) == "Nimbus Connect installs"
    installs = [e for e in cal.events if str(e.categories[0]) == "Install"]
    assert {e.start.tzinfo.key for e in installs} == {"Europe/Berlin"}  # nimbus's zone
    assert all(str(e.summary).startswith("Nimbus Connect install") for e in installs)
    # the OEM's revisions are recorded: a second fetch says the same
    assert get_feed(world, world.feeds["nimbus"]).content == response.content
    assert set(world.repo.calendar_revisions("nimbus")) == {str(e.uid) for e in cal.events}
    assert world.repo.calendar_revisions("orbitel") == {}


def test_the_feed_holds_nothing_of_another_oem_nor_the_vendor(world):
    registry, vendor = load_registry(), load_vendor()
    for oem in ("nimbus", "orbitel"):
        response = get_feed(world, world.feeds[oem])
        assert response.status_code == 200
        text = response.text.replace("\r\n ", "")  # unfolded
        assert Guard.for_oem(registry.get(oem), registry, vendor).scan(text) == []
        others = [o for o in registry.oems.values() if o.id != oem]
        for other in others:
            for name in (other.id, other.display_name, other.brand_name, other.timezone):
                assert name.lower() not in text.lower()
        assert not re.search(r"\bava\b", text, re.IGNORECASE)


def test_a_freeze_named_after_the_vendor_or_another_oem_reaches_the_oem_in_its_own_words(world, repo):
    app = create_app(
        repo,
        now=lambda: NOW,
        load_calendar=lambda: with_freezes(
            {"name": "AVA platform freeze", "start": "2026-12-21", "end": "2027-01-04"},
            {"name": "Orbitel migration freeze", "start": "2027-02-01", "end": "2027-02-02"},
        ),
    )
    response = get_feed(world, world.feeds["nimbus"], app)
    assert response.status_code == 200, response.text
    summaries = {str(e.summary) for e in icalendar.Calendar.from_ical(response.content).events}
    assert "Nimbus Connect freeze: no installs" in summaries  # "AVA platform", white-labelled
    assert "[redacted]" in summaries  # another OEM's name: the field is redacted, not sent
    assert "orbitel" not in response.text.lower() and "AVA" not in response.text


@pytest.mark.parametrize("given", ["missing", "empty", "portal", "unknown", "revoked", "expired", "other kind prefix"])
def test_only_an_active_feed_token_opens_the_feed(world, repo, given):
    revoked = issue_token(repo, oem_id="nimbus", label="gone", created_by="t", kind="feed")
    repo.revoke_portal_token(revoked.id)
    expired = issue_token(
        repo,
        oem_id="nimbus",
        label="old",
        created_by="t",
        kind="feed",
        now=NOW.subtract(days=100),
        valid_for=pendulum.duration(days=90),
    )
    token = {
        "missing": None,
        "empty": "",
        "portal": world.tokens["nimbus"],  # can sign off: never in a URL
        "unknown": "rtc_" + "x" * 43,
        "revoked": revoked.token,
        "expired": expired.token,
        "other kind prefix": "rtp_" + world.feeds["nimbus"][4:],
    }[given]
    response = get_feed(world, token)
    assert response.status_code == 401
    assert response.text == (MISSING if given in ("missing", "empty") else "invalid or revoked portal token")
    assert "BEGIN:VCALENDAR" not in response.text
    assert repo.calendar_revisions("nimbus") == {}


def test_a_feed_token_opens_nothing_but_the_feed(world):
    feed_token = world.feeds["nimbus"]
    api = TestClient(world.app, follow_redirects=False, headers={"Authorization": f"Bearer {feed_token}"})
    assert api.get("/api/v1/me").status_code == 401
    assert api.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved"}).status_code == 401
    assert api.get("/openapi.json").status_code == 401
    browser = TestClient(world.app, follow_redirects=False)
    assert browser.post("/login", data={"token": feed_token}).status_code == 401
    browser.cookies.set("oem_portal_token", feed_token)
    assert browser.get("/releases").headers["location"].endswith("/login")
    assert world.repo.approval_history("nimbus", "CHG-1") == []


def test_failed_feed_requests_are_rate_limited_like_every_sign_in(world):
    wrong = world.feeds["nimbus"][:12] + "y" * 31  # the feed token's prefix, a wrong rest
    answers = [get_feed(world, wrong).status_code for _ in range(11)]
    assert answers == [401] * 10 + [429]
    locked = get_feed(world, world.feeds["nimbus"])  # the right token with that prefix, locked out
    assert locked.status_code == 429 and "retry-after" in locked.headers
    assert get_feed(world, world.feeds["orbitel"]).status_code == 200  # another prefix is not


# -- the token never reaches an access log --------------------------------------------------------
def uvicorn_access_record(path: str) -> logging.LogRecord:
    """What uvicorn's access logger records for a request (``uvicorn.protocols.http``)."""
    return logging.LogRecord(
        ACCESS_LOG, logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("10.0.0.1:5123", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_the_portal_services_access_log_masks_the_feed_token():
    create_service(lambda: "sqlite://")
    filters = [f for f in logging.getLogger(ACCESS_LOG).filters if isinstance(f, MaskTokens)]
    assert len(filters) == 1  # once, however many services are built
    create_service(lambda: "sqlite://")
    assert len([f for f in logging.getLogger(ACCESS_LOG).filters if isinstance(f, MaskTokens)]) == 1
    record = uvicorn_access_record("/oem-portal/calendar.ics?token=rtc_SECRETsecret-_x&x=1")
    assert filters[0].filter(record)
    line = record.getMessage()
    assert "SECRET" not in line and line == '10.0.0.1:5123 - "GET /oem-portal/calendar.ics?token=***&x=1 HTTP/1.1" 200'


def test_airflows_api_server_masks_the_feed_token_in_its_access_log():
    """``make up`` serves the portal inside Airflow's api-server, whose own access log
    (uvicorn's is off there) masks ``token`` in the query."""
    from airflow.api_fastapi.common.http_access_log import _redact_query_string

    masked = _redact_query_string("token=rtc_SECRETsecret")
    assert "SECRET" not in masked and masked.startswith("token=")


def test_a_feed_token_speaks_for_no_approver_and_kinds_are_known(repo):
    with pytest.raises(ValueError, match="speaks for no approver"):
        issue_token(repo, oem_id="nimbus", label="x", created_by="t", kind="feed", approver="Olga Berg")
    with pytest.raises(ValueError, match="of kind feed or portal, not 'rss'"):
        issue_token(repo, oem_id="nimbus", label="x", created_by="t", kind="rss")
    assert repo.portal_tokens() == []
