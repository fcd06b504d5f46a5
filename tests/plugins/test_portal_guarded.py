"""The portal's one response filter and the OEM-neutral ids (issue 24), through the real
app on SQLite and PostgreSQL: a Jira key ``AVA-1234`` reaches an OEM as ``CHANGE-1234``
in the API, the page and the notes, a decision naming ``CHANGE-1234`` decides
``AVA-1234``, roadmap ids and components are white-labelled, and a response that would
still carry a foreign name (in any spelling) is withheld whole."""

import re
import warnings

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from release_pipeline.models import Change, ChangeType
from release_pipeline.notes.whitelabel import oem_names
from release_pipeline.tokens import issue_token
from release_train_airflow.portal import create_app
from release_train_airflow.portal.guarded import WITHHELD
from tests.disguises import GUARD as NIMBUS_GUARD
from tests.disguises import REGISTRY, VENDOR, placed, shows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MERGED = pendulum.datetime(2026, 11, 20, 12, tz="UTC")
MONDAY = pendulum.datetime(2026, 11, 30, 7, tz="UTC")


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


@pytest.fixture
def clients(repo, calendar):
    release = calendar.release_by_id("2026.24")
    changes = [
        Change("AVA-1234", ChangeType.FEATURE, "mapper", "Retries for mappings", "Mappings retry.", False, MERGED),
        Change("CHG-2", ChangeType.FIX, "runtime", "Faster start", "Starts faster.", False, MERGED),
    ]
    repo.record_release(
        release, changes, changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
    )
    repo.request_approvals("2026.24", ["nimbus"])
    token = issue_token(repo, oem_id="nimbus", label="user@nimbus", created_by="test").token
    app = create_app(repo, now=lambda: MONDAY, load_calendar=lambda: calendar)
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False)
    browser = TestClient(app, follow_redirects=False)
    assert browser.post("/login", data={"token": token}).status_code == 303
    return api, browser


def _states(api) -> dict[str, str]:
    return {c["id"]: c["state"] for c in api.get("/api/v1/releases/2026.24").json()["changes"]}


def test_a_vendor_change_key_reaches_the_oem_as_a_neutral_id_everywhere(clients):
    api, browser = clients
    response = api.get("/api/v1/releases/2026.24")
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body["changes"]] == ["CHANGE-1234", "CHG-2"]
    assert "CHANGE-1234" in body["notes"]["markdown"] and "CHANGE-1234" in body["notes"]["html"]
    assert "AVA-1234" not in response.text and NIMBUS_GUARD.scan(response.text) == []
    page = browser.get("/releases/2026.24")
    assert page.status_code == 200 and 'data-change="CHANGE-1234"' in page.text
    assert "AVA-1234" not in page.text and NIMBUS_GUARD.scan(page.text) == []


def test_a_decision_naming_the_neutral_id_decides_the_real_change(clients, repo):
    api, browser = clients
    response = api.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved", "changes": ["CHANGE-1234"]})
    assert response.status_code == 201, response.text
    assert _states(api) == {"CHANGE-1234": "approved", "CHG-2": "pending"}
    assert [row.decision for row in repo.approval_history("nimbus", "AVA-1234")] == ["approved"]
    # the same through the page's form
    form = {"decision": "rejected", "change": "CHANGE-1234", "comment": "breaks our mapping"}
    answer = browser.post("/releases/2026.24/decisions", data={**form, "csrf": csrf_of(browser.get("/feedback").text)})
    assert answer.status_code == 303, answer.text
    assert _states(api)["CHANGE-1234"] == "rejected"
    # a real id still works as it is
    real = api.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved", "changes": ["CHG-2"]})
    assert real.status_code == 201 and _states(api)["CHG-2"] == "approved"


def test_a_refused_decision_names_the_change_by_its_neutral_id(clients):
    """A double submission is a 409 naming ``CHANGE-1234``, not a response the filter withholds."""
    api, _ = clients
    body = {"decision": "approved", "changes": ["CHANGE-1234"]}
    assert api.post("/api/v1/releases/2026.24/decisions", json=body).status_code == 201
    again = api.post("/api/v1/releases/2026.24/decisions", json=body)
    assert again.status_code == 409 and "'CHANGE-1234' is already approved" in again.json()["detail"], again.text


def _snapshot(repo, **item):
    public = {
        "id": "flow-versioning",
        "title": "Flow versioning",
        "description": "Keep versions of flows.",
        "kind": "functionality",
        "component": "designer",
        "target_release_id": None,
        "planned_for": None,
        "asked_by": 1,
        "public_reason": "asked by customers",
        "public": True,
        "rank": 1,
        "oems": ["nimbus"],
    } | item
    repo.save_roadmap_snapshot(horizon=["2026.24", "2026.26"], items=[public], changes={"first": True}, run_id=None)


def test_roadmap_ids_and_components_are_white_labelled(clients, repo):
    api, _ = clients
    _snapshot(repo, id="ava-studio-themes", component="AVA_API", title="Themes for A.V.A Studio")
    response = api.get("/api/v1/roadmap")
    assert response.status_code == 200, response.text
    (item,) = response.json()["items"]
    assert item["id"].startswith("ITEM-") and item["component"] == "NIMBUS_CONNECT_API"
    assert item["title"] == "Themes for Nimbus Studio"  # the glossary's "AVA Studio", spelled out
    assert NIMBUS_GUARD.scan(response.text) == []


@pytest.mark.parametrize(
    "kind",
    [
        "like OrbitLink-Integrate",
        "for ＡＶＡ users",
        "see staging.orbit%6Cink.example",
        "K\u200bestrel Flow",
        "&#65;VA only",
    ],
)
def test_a_response_that_would_carry_a_foreign_name_is_withheld_whole(clients, repo, kind):
    """``kind`` is a field no view white-labels: the filter is what stops it."""
    api, browser = clients
    _snapshot(repo, kind=kind)
    response = api.get("/api/v1/roadmap")
    assert (response.status_code, response.json()) == (503, {"detail": WITHHELD})
    page = browser.get("/roadmap")
    assert page.status_code == 503 and WITHHELD in page.text and kind not in page.text
    # the rest of the portal is not affected
    assert api.get("/api/v1/releases/2026.24").status_code == 200


def test_pages_for_nobody_signed_in_pass_the_filter_too(repo):
    client = TestClient(create_app(repo), follow_redirects=False)
    assert client.get("/login").status_code == 200
    assert client.get("/api/v1/me").status_code == 401


ROADMAP_FIELDS = st.sampled_from(["title", "description", "component", "id", "kind", "public_reason"])
FOREIGN = [*VENDOR.guarded_terms, *(n for oem in REGISTRY.oems.values() if oem.id != "nimbus" for n in oem_names(oem))]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=placed(FOREIGN), field=ROADMAP_FIELDS)
def test_no_portal_response_shows_a_foreign_name(clients, repo, case, field):
    """Whatever field of a published roadmap item carries a disguised name, the OEM's API
    and page either show it rewritten or redacted, or are withheld whole: never shown."""
    api, browser = clients
    name, text = case
    _snapshot(repo, **{field: text})
    for response in (api.get("/api/v1/roadmap"), browser.get("/roadmap")):
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            assert not shows(name, response.text), (name, text, field, response.text)
