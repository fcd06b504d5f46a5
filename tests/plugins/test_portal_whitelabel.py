"""The portal's release page and API for an OEM: every string field white-labelled, and
a field that fails the guard shown redacted, never raw (SQLite and PostgreSQL)."""

import warnings

import pendulum

from release_pipeline.models import Change, ChangeType
from release_pipeline.signoff import decide
from release_pipeline.tokens import issue_token
from release_train_airflow.portal import create_app
from release_train_airflow.portal.views import REDACTED

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MERGED = pendulum.datetime(2026, 11, 20, 12, tz="UTC")


def changes():
    return [
        Change("CHG-1", ChangeType.FEATURE, "AVA_API", "AVAConnect retries", "Use ava-ctl on production.ava.example",
               False, MERGED),
        Change("CHG-2", ChangeType.FIX, "mapper", "Like OrbitLink Integrate does", "Asked by orbitel", False, MERGED),
    ]  # fmt: skip


def test_release_page_and_api_are_white_labelled_and_leaks_redacted(repo, calendar):
    release = calendar.release_by_id("2026.24")
    repo.record_release(release, changes(), changes_since=calendar.previous(release).at, changes_until=release.at,
                        actor="test")  # fmt: skip
    repo.request_approvals("2026.24", ["nimbus"])
    decide(
        repo,
        oem_id="nimbus",
        release_id="2026.24",
        decision="approved",
        change_ids=["CHG-1"],
        actor="Nimbus Systems GmbH",
        channel="cli",
        comment="tested on AVA Studio",
        recorded_by="ann@ava.example",
    )
    token = issue_token(repo, oem_id="nimbus", label="user@nimbus", created_by="test").token
    client = TestClient(create_app(repo), follow_redirects=False)
    client.headers["Authorization"] = f"Bearer {token}"

    body = client.get("/api/v1/releases/2026.24").json()
    first, second = body["changes"]
    assert (first["component"], first["title"]) == ("NIMBUS_CONNECT_API", "NimbusConnectConnect retries")
    assert first["description"] == "Use nimbus-ctl on acceptance.nimbus.example"
    assert (first["comment"], first["decided_by"]) == ("tested on Nimbus Studio", "Nimbus Systems GmbH")
    assert first["recorded_by"] == REDACTED  # the vendor's mail domain
    assert (second["title"], second["description"]) == (REDACTED, REDACTED)
    # the notes carry the other OEM's name too: withheld whole, never raw
    assert "OrbitLink" not in str(body["notes"]) and "orbitel" not in str(body["notes"])
    raw = str(body).lower()
    for leaked in ("ava", "orbitlink", "orbitel"):
        assert leaked not in raw.replace("java", ""), leaked

    client.cookies.clear()
    del client.headers["Authorization"]
    assert client.post("/login", data={"token": token}).status_code == 303
    page = client.get("/releases/2026.24").text.lower()
    assert "nimbusconnectconnect retries" in page
    for leaked in ("ava", "orbitlink", "orbitel"):
        assert leaked not in page.replace("java", ""), leaked
