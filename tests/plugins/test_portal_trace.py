"""The portal's view of one change (``GET /api/v1/changes/{id}`` and ``/changes/{id}``) on
SQLite and PostgreSQL: the caller's own instance only, white-labelled; a change it was
never asked about and does not run is a 404 in the same words as an unknown id."""

import pendulum
import pytest
import time_machine

from release_pipeline.models import Change, ChangeType, Decision, DeliveryStatus, ReleaseStatus
from release_train_airflow.portal.views import REDACTED
from tests.builders import World

DEPLOYED_AT = pendulum.datetime(2026, 12, 4, 8, 15, 42, 987654, tz="UTC")
INSTALLED_AT = pendulum.datetime(2026, 12, 10, 9, 30, tz="UTC")


@pytest.fixture
def world(repo, calendar):
    """World's releases, then 2026.24 rejected in QA and its changes carried into 2026.25,
    which reached production; nimbus approved CHG-1 (after a rejection) and installed
    2026.25; orbitel rejected CHG-1 and runs 2026.22."""
    world = World(repo, calendar)
    repo.set_release_status("2026.24", ReleaseStatus.QA_REJECTED, actor="qa-lead", reason="AVA login broken")
    with time_machine.travel(DEPLOYED_AT, tick=False):
        repo.set_release_status("2026.25", ReleaseStatus.DEPLOYED, actor="deploy-bot")
    decide = dict(change_id="CHG-1", channel="portal")  # noqa: C408
    repo.record_decision(oem_id="nimbus", decision=Decision.REJECTED, actor="nina@nimbus",
                         comment="breaks our AVA Studio flows", **decide)  # fmt: skip
    repo.record_decision(oem_id="nimbus", decision=Decision.APPROVED, actor="nina@nimbus", **decide)
    repo.record_decision(oem_id="orbitel", decision=Decision.REJECTED, actor="olga@orbitel",
                         comment="Orbitel internal reasons", **decide)  # fmt: skip
    repo.set_installed_version("nimbus", "2026.25", at=INSTALLED_AT)
    repo.upsert_delivery("nimbus", "2026.25", status=DeliveryStatus.INSTALLED, finished_at=INSTALLED_AT)
    return world


def test_an_oem_sees_when_its_own_instance_got_a_change(world):
    body = world.client("nimbus").get("/api/v1/changes/CHG-1").json()
    assert body["released"] == {"release_id": "2026.25", "at": "2026-12-04T09:15:42.987654+01:00"}
    assert body["asked"]["release_id"] == "2026.24"
    assert body["state"] == "approved"
    assert [(d["decision"], d["by"], d["counts"]) for d in body["decisions"]] == [
        ("rejected", "nina@nimbus", False),
        ("approved", "nina@nimbus", True),
    ]
    assert body["decisions"][0]["comment"] == "breaks our Nimbus Studio flows"  # white-labelled
    assert body["running_since"] == {"release_id": "2026.25", "since": "2026-12-10T10:30:00+01:00"}  # Berlin
    assert body["answer"] == "running since 2026-12-10 10:30 (installed with 2026.25)"
    raw = str(body).lower()
    assert "orbitel" not in raw and "olga" not in raw and "ava" not in raw.replace("java", "")
    assert "qa_rejected" not in raw and "login broken" not in raw  # the vendor's QA is not the OEM's business


def test_the_other_oem_sees_only_its_own_decisions_and_instance(world):
    body = world.client("orbitel").get("/api/v1/changes/CHG-1").json()
    assert (body["state"], body["running_since"], body["runs"]) == ("rejected", None, "2026.22")
    assert [(d["decision"], d["by"]) for d in body["decisions"]] == [("rejected", "olga@orbitel")]
    assert body["answer"] == "asked, rejected by olga@orbitel; runs 2026.22"
    assert "nina" not in str(body) and "nimbus" not in str(body).lower()


def test_a_change_an_oem_runs_without_being_asked_is_shown(world, repo, calendar):
    release = calendar.release_by_id("2026.26")
    carried = Change("CHG-9", ChangeType.FIX, "AVA_API", "Faster AVA sync", "", False, release.at, "2026.26")
    repo.record_release(release, [carried], changes_since=None, changes_until=release.at, actor="t")
    client = world.client("nimbus")
    assert client.get("/api/v1/changes/CHG-9").status_code == 404  # not in production, not asked
    repo.set_release_status("2026.26", ReleaseStatus.DEPLOYED, actor="deploy-bot")
    assert client.get("/api/v1/changes/CHG-9").status_code == 404  # in production, not on its instance
    repo.set_installed_version("nimbus", "2026.26", at=INSTALLED_AT.add(days=14))
    body = client.get("/api/v1/changes/CHG-9").json()
    assert (body["asked"], body["decisions"], body["state"]) == (None, [], None)
    assert (body["title"], body["component"]) == ("Faster Nimbus Connect sync", "NIMBUS_CONNECT_API")
    assert body["running_since"]["release_id"] == "2026.26"


def test_unknown_and_not_yours_answer_alike(world, repo, calendar):
    release = calendar.release_by_id("2026.26")
    theirs = Change("CHG-4", ChangeType.FIX, "core", "Orbitel only", "", False, release.at, "2026.26")
    repo.record_release(release, [theirs], changes_since=None, changes_until=release.at, actor="t")
    repo.request_approvals("2026.26", ["orbitel"])
    client = world.client("nimbus")
    for change_id in ("CHG-4", "CHG-404"):
        response = client.get(f"/api/v1/changes/{change_id}")
        assert response.status_code == 404
        assert response.json() == {
            "detail": f"change {change_id!r} was never asked of nimbus and does not run on its instance"
        }
    assert client.get("/api/v1/changes/CHG%201").status_code == 422  # not a change id


def test_a_text_that_leaks_is_redacted(world, repo):
    repo.update_change_text("CHG-1", actor="ann", title="Like OrbitLink Integrate does")
    body = world.client("nimbus").get("/api/v1/changes/CHG-1").json()
    assert body["title"] == REDACTED


def test_the_change_page_answers_in_the_oems_words(world):
    client = world.client("nimbus", browser=True)
    page = client.get("/changes/CHG-1")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "running since 2026-12-10 10:30 (installed with 2026.25)" in text
    assert '<td id="released">with 2026.25, 2026-12-04 09:15</td>' in text
    assert "breaks our Nimbus Studio flows" in text and "(superseded)" in text
    assert "orbitel" not in text.lower() and "AVA" not in text
    assert 'href="http://testserver/changes/CHG-1"' in client.get("/releases/2026.24").text  # linked from its release
    missing = client.get("/changes/CHG-404")
    assert missing.status_code == 404 and "never asked of nimbus" in missing.text
    assert client.get("/changes/CHG%201").status_code == 404
