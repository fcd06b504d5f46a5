"""The OEM portal in-process (FastAPI TestClient) on SQLite and PostgreSQL: every
endpoint allowed for its own OEM, denied without a valid token, and denied (with
nothing changed) for another OEM's data."""

import re
import warnings

import pendulum
import pytest

from release_pipeline.models import DeliveryStatus
from release_pipeline.roadmap import RoadmapConfig
from release_pipeline.tokens import issue_token
from release_train_airflow.portal import create_app
from tests.builders import World

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
DOCS = {"/openapi.json", "/docs", "/redoc"}  # need a token too: test_the_api_docs_need_a_token
FEED = {"/calendar.ics"}  # feed tokens only, in the URL: tests/plugins/test_portal_calendar.py


@pytest.fixture
def world(repo, calendar):
    return World(repo, calendar)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


# -- every endpoint, as nimbus trying to reach orbitel's data ----------------------------------
CROSS_OEM = {
    ("GET", "/api/v1/me"): (None, 200, lambda r: r.json()["oem_id"] == "nimbus"),
    ("GET", "/api/v1/releases"): (None, 200, lambda r: [x["release_id"] for x in r.json()] == ["2026.24"]),
    ("GET", "/api/v1/releases/{release_id}"): ("2026.25", 404, lambda r: "sign-off by nimbus" in r.json()["detail"]),
    ("POST", "/api/v1/releases/{release_id}/decisions"): (
        "2026.25",
        404,
        lambda r: "2026.25 has no changes waiting for sign-off by nimbus" in r.json()["detail"],
    ),
    ("GET", "/api/v1/changes/{change_id}"): (
        "CHG-3",
        404,
        lambda r: r.json()["detail"] == "change 'CHG-3' was never asked of nimbus and does not run on its instance",
    ),
    ("GET", "/api/v1/deliveries"): (None, 200, lambda r: r.json()["history"] == [] and r.json()["installed"] is None),
    ("GET", "/api/v1/feedback"): (None, 200, lambda r: r.json() == []),
    ("POST", "/api/v1/feedback"): ("oem_id", 422, lambda r: "oem_id" in r.json()["detail"]),
    ("GET", "/api/v1/roadmap"): (
        None,
        200,
        lambda r: (
            [(i["id"], i["yours"], i["asked_by"]) for i in r.json()["items"]] == [("sso", False, 1)]
            and "orbitel" not in r.text.lower()
            and "secret" not in r.text
        ),
    ),
    ("GET", "/api/v1/rollbacks"): (
        None,
        200,
        lambda r: r.json() == {"runs": None, "can_roll_back_to": None, "regressions": [], "requests": []},
    ),
    ("POST", "/api/v1/regressions"): (
        "2026.22",
        404,
        lambda r: r.json()["detail"] == "no release is recorded on the instance of nimbus",
    ),
    ("POST", "/api/v1/rollback-requests"): (
        "2026.22",
        404,
        lambda r: r.json()["detail"] == "no release is recorded on the instance of nimbus",
    ),
    ("GET", "/rollbacks"): (None, 200, lambda r: "secret" not in r.text and "2026.22" not in r.text),
    ("POST", "/rollbacks/regressions"): ("2026.22", 404, lambda r: "secret" not in r.text),
    ("POST", "/rollbacks/requests"): ("2026.22", 404, lambda r: "secret" not in r.text),
    ("GET", "/"): (None, 303, lambda r: r.headers["location"].endswith("/releases")),
    ("GET", "/releases"): (None, 200, lambda r: "2026.24" in r.text and "2026.25" not in r.text),
    ("GET", "/releases/{release_id}"): ("2026.25", 404, lambda r: "CHG-3" not in r.text),
    ("POST", "/releases/{release_id}/decisions"): ("2026.25", 404, lambda r: "CHG-3" not in r.text),
    ("GET", "/changes/{change_id}"): ("CHG-3", 404, lambda r: "Title of CHG-3" not in r.text),
    ("GET", "/deliveries"): (None, 200, lambda r: "2026.20" not in r.text),
    ("GET", "/next-install"): (None, 200, lambda r: "CHG-3" not in r.text and "2026.25" not in r.text),
    ("GET", "/feedback"): (None, 200, lambda r: "Orbitel secret project" not in r.text),
    ("POST", "/feedback"): (None, 303, lambda r: "done=" in r.headers["location"]),
    ("GET", "/roadmap"): (
        None,
        200,
        lambda r: "you asked for this" not in r.text and "silver" not in r.text and "secret" not in r.text,
    ),
}


def test_the_cross_oem_table_covers_every_route(world):
    routes = {
        (method, route.path)
        for route in world.app.routes
        for method in getattr(route, "methods", ()) or ()
        if route.path not in DOCS | FEED and method != "HEAD"
    }
    assert routes - PUBLIC == set(CROSS_OEM)


@pytest.mark.parametrize(("method", "path"), sorted(CROSS_OEM))
def test_an_oem_never_sees_or_changes_another_oems_data(world, method, path):
    arg, status, check = CROSS_OEM[(method, path)]
    before = world.state()
    url = path.replace("{release_id}", arg).replace("{change_id}", arg) if "{" in path else path
    if path.startswith("/api/"):
        client = world.client("nimbus")
        body = None
        if path.endswith("/decisions"):
            body = {"decision": "approved"}
        elif path.endswith(("/regressions", "/rollback-requests")):  # orbitel's release: nimbus runs none
            body = {"release_id": arg, "description" if path.endswith("regressions") else "reason": "x"}
        elif method == "POST":
            body = {"category": "general_feedback", "title": "hi", "oem_id": "orbitel"}
        response = client.request(method, url, json=body)
    else:
        client = world.client("nimbus", browser=True)
        data = None
        if method == "POST":
            data = {"csrf": csrf_of(client.get("/feedback").text), "decision": "approved"}
            data |= {"category": "general_feedback", "title": "From nimbus"} if path == "/feedback" else {}
            data |= {"release_id": arg, "description": "x", "reason": "x"} if path.startswith("/rollbacks/") else {}
        response = client.request(method, url, data=data)
    assert response.status_code == status, response.text
    assert check(response), response.text
    after = world.state()
    if (method, path) == ("POST", "/feedback"):  # recorded, and as nimbus's
        assert [(f[1], f[3]) for f in after[1]] == [("orbitel", "Orbitel secret project"), ("nimbus", "From nimbus")]
    else:
        assert after == before


@pytest.mark.parametrize(("method", "path"), sorted(CROSS_OEM))
def test_every_route_needs_a_valid_token(world, method, path):
    url = path.replace("{release_id}", "2026.24").replace("{change_id}", "CHG-1")
    revoked = issue_token(world.repo, oem_id="nimbus", label="gone", created_by="t")
    world.repo.revoke_portal_token(revoked.id)
    before = world.state()
    for token in (None, "rtp_unknown", revoked.token):
        client = TestClient(world.app, follow_redirects=False)
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(method, url, headers=headers, json={"decision": "approved"})
            assert response.status_code == 401
            expected = "invalid or revoked portal token" if token else "missing portal token"
            assert expected in response.json()["detail"]  # the same words for unknown and revoked
        else:
            if token:
                client.cookies.set("oem_portal_token", token)
            response = client.request(method, url, data={"decision": "approved"})
            assert response.status_code == 303 and response.headers["location"].endswith("/login")
    assert world.state() == before


# -- sign-off through the JSON API ----------------------------------------------------------------
def test_approve_one_then_all_with_white_labelled_notes(world):
    client = world.client("nimbus")
    release = client.get("/api/v1/releases/2026.24").json()
    assert [c["state"] for c in release["changes"]] == ["pending", "pending"]
    assert release["notes"]["subject"] == "Nimbus Connect 2026.24 release notes"
    response = client.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved", "changes": ["CHG-1"]})
    assert response.status_code == 201
    assert response.json()["release"]["counts"] == {"approved": 1, "rejected": 0, "pending": 1}
    response = client.post("/api/v1/releases/2026.24/decisions", json={"decision": "approved", "comment": "all good"})
    assert response.status_code == 201 and response.json()["release"]["state"] == "approved"
    (event,) = world.repo.approval_history("nimbus", "CHG-2")
    assert (event.actor, event.channel, event.comment, event.recorded_by) == (
        "user@nimbus",
        "portal",
        "all good",
        None,
    )
    assert world.repo.approval_history("orbitel", "CHG-2") == []


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/v1/releases/2099.01/decisions", {"decision": "approved"}, 404, "2099.01 has no changes waiting"),
        ("/api/v1/releases/../decisions", {"decision": "approved"}, 404, ""),
        (
            "/api/v1/releases/2026.24/decisions",
            {"decision": "approved", "changes": ["CHG-3"]},
            404,
            "'CHG-3' is not among",
        ),
        ("/api/v1/releases/2026.24/decisions", {"decision": "rejected"}, 422, "a rejection needs a comment"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "maybe"}, 422, "body.decision: Input should be"),
        (
            "/api/v1/releases/2026.24/decisions",
            {"decision": "approved", "oem": "orbitel"},
            422,
            "body.oem: Extra inputs",
        ),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "changes": []}, 422, "body.changes"),
        ("/api/v1/releases/2026.24/decisions", "not json", 422, "body"),
        ("/api/v1/feedback", {"category": "wishlist", "title": "x"}, 422, "body.category"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "   "}, 422, "body.title"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "x" * 301}, 422, "body.title"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_changes_nothing(world, path, body, status, message):
    before = world.state()
    client = world.client("nimbus")
    if isinstance(body, str):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["detail"]
    assert world.state() == before


def test_double_submission_and_delivered_releases_are_conflicts(world):
    client = world.client("nimbus")
    body = {"decision": "approved", "changes": ["CHG-1"]}
    assert client.post("/api/v1/releases/2026.24/decisions", json=body).status_code == 201
    before = world.state()
    response = client.post("/api/v1/releases/2026.24/decisions", json=body)
    assert response.status_code == 409 and "double submission" in response.json()["detail"]
    world.repo.upsert_delivery("nimbus", "2026.24", status=DeliveryStatus.INSTALLED)
    response = client.post("/api/v1/releases/2026.24/decisions", json={"decision": "rejected", "comment": "late"})
    assert response.status_code == 409 and "already delivered" in response.json()["detail"]
    assert client.get("/api/v1/releases/2026.24").json()["open"] is False
    assert world.state() == before


def test_a_decision_overtaken_by_an_install_is_a_conflict(world, monkeypatch):
    """The install starts after the portal checked that sign-off was open, before the
    decision is written (forced): 409, and nothing recorded (docs/signoff-closing.md)."""
    client = world.client("nimbus")
    record = world.repo.record_decisions

    def install_starts_first(**kwargs):
        world.repo.upsert_delivery("nimbus", "2026.24", status=DeliveryStatus.INSTALLING)
        return record(**kwargs)

    monkeypatch.setattr(world.repo, "record_decisions", install_starts_first)
    before = world.state()
    response = client.post("/api/v1/releases/2026.24/decisions", json={"decision": "rejected", "comment": "no"})
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == "the install of 2026.24 on the instance has started: its sign-off is closed"
    assert world.state() == before


def test_feedback_deliveries_and_roadmap(world):
    client = world.client("orbitel")
    response = client.post(
        "/api/v1/feedback", json={"category": "required_component", "title": "SAP S/4 connector", "component": "sap"}
    )
    assert response.status_code == 201
    assert response.json()["category_label"] == "Required component"
    assert [f["title"] for f in client.get("/api/v1/feedback").json()] == [
        "SAP S/4 connector",
        "Orbitel secret project",
    ]
    assert world.repo.feedback(oem_id="orbitel")[-1].submitted_by == "user@orbitel"

    deliveries = client.get("/api/v1/deliveries").json()
    assert deliveries["installed"]["release_id"] == "2026.22"
    assert [(d["release_id"], d["status"]) for d in deliveries["history"]] == [("2026.22", "installed")]
    assert len(deliveries["schedule"]) == 2
    first = deliveries["schedule"][0]
    assert pendulum.parse(first["install_from"]) > pendulum.now("UTC")
    assert first["install_from"].endswith("-05:00") or first["install_from"].endswith("-04:00")  # New York

    roadmap = client.get("/api/v1/roadmap").json()
    (item,) = roadmap["items"]  # the vendor's items only, even its own unpublished ask is not one
    assert item["title"] == "SSO for the OrbitLink Integrate designer" and item["yours"] is True
    assert item["description"] == "Sign in to the OrbitLink Integrate designer with your identity provider."
    assert (item["planned_for"], item["asked_by"]) == ("2026.26", 1)
    assert "reason" not in item and "score" not in item and "oems" not in item and "feedback_ids" not in item
    assert roadmap["changes"]["removed"] == []  # an unpublished title is never named
    # its own feedback says which item it counts for
    own = {f["id"]: f["on_roadmap"] for f in client.get("/api/v1/feedback").json()}
    assert own[1] == "SSO for the OrbitLink Integrate designer" and own[response.json()["id"]] is None


def test_no_roadmap_yet_is_a_404(repo):
    token = issue_token(repo, oem_id="nimbus", label="n", created_by="t").token
    client = TestClient(create_app(repo), headers={"Authorization": f"Bearer {token}"})
    response = client.get("/api/v1/roadmap")
    assert response.status_code == 404 and response.json() == {"detail": "no roadmap has been computed yet"}


def test_openapi_documents_the_json_api_with_bearer_auth(world):
    schema = world.client("nimbus").get("/openapi.json").json()
    assert sorted(schema["paths"]) == [
        "/api/v1/changes/{change_id}",
        "/api/v1/deliveries",
        "/api/v1/feedback",
        "/api/v1/me",
        "/api/v1/regressions",
        "/api/v1/releases",
        "/api/v1/releases/{release_id}",
        "/api/v1/releases/{release_id}/decisions",
        "/api/v1/roadmap",
        "/api/v1/rollback-requests",
        "/api/v1/rollbacks",
    ]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/api/v1/me"]["get"]["security"] == [{"HTTPBearer": []}]


# -- the pages -----------------------------------------------------------------------------------
def test_pages_log_in_sign_off_and_show_the_new_state(world):
    client = world.client()
    response = client.post("/login", data={"token": "rtp_wrong"})
    assert response.status_code == 401 and "invalid or revoked portal token" in response.text
    response = client.post("/login", data={"token": world.tokens["nimbus"]})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and world.tokens["nimbus"] in cookie

    page = client.get("/releases/2026.24")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Nimbus Connect 2026.24 release notes" in page.text and "AVA" not in page.text
    response = client.post("/releases/2026.24/decisions", data={"decision": "approved", "csrf": "forged"})
    assert response.status_code == 403 and world.repo.approval_history("nimbus", "CHG-1") == []
    response = client.post("/releases/2026.24/decisions", data={"decision": "approved", "csrf": csrf_of(page.text)})
    assert response.status_code == 303
    page = client.get(response.headers["location"])
    assert '<span class="state state-approved" id="release-state">approved</span>' in page.text
    response = client.post("/releases/2026.24/decisions", data={"decision": "rejected", "csrf": csrf_of(page.text)})
    assert response.status_code == 422 and "a rejection needs a comment" in response.text

    assert client.post("/logout").status_code == 303
    assert client.get("/releases").headers["location"].endswith("/login")


def test_the_feedback_form_records_and_refuses(world):
    client = world.client("nimbus", browser=True)
    page = client.get("/feedback")
    assert "Future / ongoing projects" in page.text
    data = {"csrf": csrf_of(page.text), "category": "future_projects", "title": "EDI rollout in 2027", "body": "x"}
    response = client.post("/feedback", data=data)
    assert response.status_code == 303
    assert "EDI rollout in 2027" in client.get(response.headers["location"]).text
    response = client.post("/feedback", data={**data, "category": "nonsense"})
    assert response.status_code == 422 and "choose a category" in response.text
    assert [f.title for f in world.repo.feedback(oem_id="nimbus")] == ["EDI rollout in 2027"]


# -- hardening: expiry, sign-in limit, cookie, bounds, docs --------------------------------------
def test_an_expired_token_is_refused_like_an_unknown_one(world):
    issued = issue_token(
        world.repo, oem_id="nimbus", label="old", created_by="t", now=pendulum.now("UTC").subtract(days=91)
    )
    assert issued.expires_at < pendulum.now("UTC")
    client = TestClient(world.app, follow_redirects=False)
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.token}"})
    assert (response.status_code, response.json()) == (401, {"detail": "invalid or revoked portal token"})
    response = client.post("/login", data={"token": issued.token})
    assert response.status_code == 401 and "set-cookie" not in response.headers
    client.cookies.set("oem_portal_token", issued.token)
    assert client.get("/releases").headers["location"].endswith("/login")
    fresh = issue_token(world.repo, oem_id="nimbus", label="new", created_by="t", valid_for=pendulum.duration(days=1))
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh.token}"}).status_code == 200


@pytest.mark.parametrize(
    ("portal_url", "secure"),
    [
        ("http://localhost:8080/oem-portal/", False),
        ("http://127.0.0.1:8080/oem-portal/", False),
        ("https://localhost/oem-portal/", True),
        ("https://portal.example.com/", True),
        ("http://portal.example.com/", True),  # behind a TLS proxy the request looks like http
    ],
)
def test_the_cookie_is_secure_unless_served_on_plain_localhost(repo, portal_url, secure):
    from release_pipeline.vendor import load_vendor

    vendor = load_vendor().model_copy(update={"portal_url": portal_url})
    token = issue_token(repo, oem_id="nimbus", label="n", created_by="t").token
    client = TestClient(create_app(repo, load_vendor=lambda: vendor), follow_redirects=False)
    response = client.post("/login", data={"token": token})
    cookie = response.headers["set-cookie"]
    assert ("; secure" in cookie.lower()) is secure
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/feedback", {"category": "use_cases", "title": "a\x00b"}, "body.title"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "a\nb"}, "body.title"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "body": "x\x07"}, "body.body"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "body": "x" * 10001}, "body.body"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "component": "c\x00"}, "body.component"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "component": "c" * 101}, "body.component"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "comment": "\x00"}, "body.comment"),
        # invisible characters (issue 24): a rejection whose whole comment is one zero-width space
        ("/api/v1/releases/2026.24/decisions", {"decision": "rejected", "comment": "\u200b"}, "body.comment"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "comment": "ok\u202e"}, "body.comment"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "comment": "\U000e0041"}, "body.comment"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "rejected", "comment": "\u0301"}, "body.comment"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "A\u00adVA"}, "body.title"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "body": "x\u2060y"}, "body.body"),
        ("/api/v1/feedback", {"category": "use_cases", "title": "ok", "component": "c\ufeff"}, "body.component"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "changes": ["CHG\u200c1"]}, "body.changes.0"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "rejected", "comment": "x" * 4001}, "body.comment"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "changes": ["CHG\x00"]}, "body.changes.0"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "changes": ["C" * 65]}, "body.changes.0"),
        ("/api/v1/releases/2026.24/decisions", {"decision": "approved", "changes": ["CHG-1", "CHG-1"]}, ""),
        ("/api/v1/releases/2026.2%00/decisions", {"decision": "approved"}, "path.release_id"),
        ("/api/v1/releases/" + "9" * 300 + "/decisions", {"decision": "approved"}, "path.release_id"),
    ],
)
def test_the_api_refuses_control_characters_and_over_long_input(world, path, body, field):
    before = world.state()
    response = world.client("nimbus").post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field)
    if any("\u200b" in str(v) or "\u00ad" in str(v) for v in body.values()):
        assert "invisible character" in response.json()["detail"], response.json()
    assert world.state() == before


def test_multi_line_text_keeps_its_line_breaks(world):
    client = world.client("nimbus")
    body = {"category": "use_cases", "title": "Two lines", "body": "first\r\n\tsecond"}
    assert client.post("/api/v1/feedback", json=body).json()["body"] == "first\r\n\tsecond"
    body = {"decision": "rejected", "changes": ["CHG-1"], "comment": "fails:\n\tload test"}
    assert client.post("/api/v1/releases/2026.24/decisions", json=body).status_code == 201


@pytest.mark.parametrize(
    ("path", "data", "message"),
    [
        ("/releases/2026.24/decisions", {"decision": "rejected", "comment": "no\x00"}, "comment: control character"),
        ("/releases/2026.24/decisions", {"decision": "rejected", "comment": "x" * 4001}, "comment: at most 4000"),
        ("/releases/2026.24/decisions", {"decision": "rejected", "comment": "\u200b"}, "comment: invisible character"),
        ("/releases/2026.24/decisions", {"decision": "approved", "comment": "\u0301"}, "comment: needs a visible"),
        ("/feedback", {"category": "use_cases", "title": "t\u202e"}, "title: invisible character U+202E"),
        ("/releases/2026.24/decisions", {"decision": "approved", "change": "CHG-1\x00"}, "change: control character"),
        ("/feedback", {"category": "use_cases", "title": "t\x00"}, "title: control character"),
        ("/feedback", {"category": "use_cases", "title": "   "}, "title: a value is required"),
        ("/feedback", {"category": "use_cases", "title": "t" * 301}, "title: at most 300"),
        ("/feedback", {"category": "use_cases", "title": "t", "body": "b\x00"}, "body: control character"),
        ("/feedback", {"category": "use_cases", "title": "t", "body": "b" * 10001}, "body: at most 10000"),
        ("/feedback", {"category": "use_cases", "title": "t", "component": "c" * 101}, "component: at most 100"),
    ],
)
def test_the_forms_refuse_control_characters_and_over_long_input(world, path, data, message):
    client = world.client("nimbus", browser=True)
    before = world.state()
    response = client.post(path, data={**data, "csrf": csrf_of(client.get("/feedback").text)})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("text/html") and message in response.text
    assert world.state() == before
    assert client.get("/releases/2026.2%00").status_code == 404


def test_the_schema_documents_every_bound(world):
    schema = world.client("nimbus").get("/openapi.json").json()
    components = schema["components"]["schemas"]
    feedback = components["FeedbackIn"]["properties"]
    assert feedback["title"]["maxLength"] == 300 and "pattern" in feedback["title"]
    assert feedback["body"]["maxLength"] == 10000
    rejection = components["Rejection"]
    assert "comment" in rejection["required"] and rejection["properties"]["comment"]["maxLength"] == 4000
    assert "comment" not in components["Approval"].get("required", [])
    changes = components["Approval"]["properties"]["changes"]
    assert changes["uniqueItems"] is True and changes["anyOf"][0]["items"]["maxLength"] == 64
    post = schema["paths"]["/api/v1/releases/{release_id}/decisions"]["post"]
    assert post["parameters"][0]["schema"]["pattern"] == r"^[0-9]{4}\.[0-9]{2}$"
    for status in ("400", "401", "404", "409", "422", "429"):
        assert post["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }


def test_the_api_docs_need_a_token(world):
    anonymous = TestClient(world.app, follow_redirects=False)
    response = anonymous.get("/openapi.json")
    assert response.status_code == 401 and "paths" not in response.text
    assert anonymous.get("/openapi.json", headers={"Authorization": "Bearer rtp_forged"}).status_code == 401
    for page in ("/docs", "/redoc"):
        response = anonymous.get(page)
        assert response.status_code == 303 and response.headers["location"].endswith("/login")
    assert anonymous.get("/docs/oauth2-redirect").status_code == 404
    api = world.client("nimbus")
    assert "/api/v1/releases" in api.get("/openapi.json").json()["paths"]
    browser = world.client("nimbus", browser=True)  # Swagger UI fetches the schema with the cookie
    assert "/openapi.json" in browser.get("/docs").text and "/openapi.json" in browser.get("/redoc").text
    assert browser.get("/openapi.json").status_code == 200


def test_an_unreadable_body_is_a_documented_4xx(world):
    client = world.client("nimbus")
    headers = {"Content-Type": "application/json"}
    before = world.state()
    response = client.post("/api/v1/feedback", content=b'{"category": "use_cases", "title": "\xff"}', headers=headers)
    assert response.status_code == 400 and response.json() == {"detail": "There was an error parsing the body"}
    response = client.post(
        "/api/v1/feedback", content=rb'{"category": "use_cases", "title": "\ud800"}', headers=headers
    )
    assert response.status_code == 422 and response.json()["detail"].startswith("body.title: ")
    assert world.state() == before


def test_feedback_is_limited_per_oem_per_day_with_a_clear_429(world):
    clock = {"now": pendulum.datetime(2026, 11, 30, 9, tz="UTC")}
    app = create_app(
        world.repo, now=lambda: clock["now"], load_roadmap_config=lambda: RoadmapConfig(feedback_per_oem_per_day=2)
    )
    api = TestClient(app, headers={"Authorization": f"Bearer {world.tokens['nimbus']}"})
    body = {"category": "required_functionality", "title": "Audit log"}
    assert api.post("/api/v1/feedback", json=body).status_code == 201
    clock["now"] = clock["now"].add(hours=2)
    assert api.post("/api/v1/feedback", json=body).status_code == 201
    before = world.state()
    response = api.post("/api/v1/feedback", json=body)
    assert response.status_code == 429 and response.headers["retry-after"] == str(22 * 3600)
    assert "2 feedback items in the last 24 hours" in response.json()["detail"]
    assert "after 2026-12-01 10:00 (Europe/Berlin)" in response.json()["detail"]  # in the OEM's own time
    browser = TestClient(app, follow_redirects=False)
    browser.post("/login", data={"token": world.tokens["nimbus"]})
    data = {"csrf": csrf_of(browser.get("/feedback").text), "category": "use_cases", "title": "One more"}
    page = browser.post("/feedback", data=data)
    assert page.status_code == 429 and "2 feedback items in the last 24 hours" in page.text
    assert world.state() == before
    # another OEM has its own allowance, and a day later nimbus has its own again
    other = TestClient(app, headers={"Authorization": f"Bearer {world.tokens['orbitel']}"})
    assert other.post("/api/v1/feedback", json=body).status_code == 201
    clock["now"] = clock["now"].add(hours=22, seconds=1)
    assert api.post("/api/v1/feedback", json=body).status_code == 201


def test_delivery_history_says_why_in_the_oems_words(world):
    world.repo.upsert_delivery(
        "orbitel",
        "2026.24",
        status=DeliveryStatus.SKIPPED,
        from_release_id="2026.22",
        detail="not approved by install day: CHG-2 (release 2026.24) not signed off; rolls over to the next cycle",
    )
    world.repo.upsert_delivery(
        "orbitel",
        "2026.25",
        status=DeliveryStatus.ROLLED_BACK,
        detail="rolled back to 2026.22 after: verification failed on AVA\n$ ava-ctl install 2026.25\n[exit 0]",
    )
    history = {d["release_id"]: d for d in world.client("orbitel").get("/api/v1/deliveries").json()["history"]}
    assert history["2026.24"]["reason"].startswith("not approved by install day: CHG-2")
    reason = history["2026.25"]["reason"]  # one line, never the install log, white-labelled
    assert reason == "rolled back to 2026.22 after: verification failed on OrbitLink Integrate"
    page = world.client("orbitel", browser=True).get("/deliveries").text
    assert "not approved by install day: CHG-2" in page and "ava-ctl" not in page


def test_the_roadmap_lists_shipped_items_and_only_the_asker_reads_you_asked_for_this(world):
    world.repo.save_roadmap_snapshot(
        horizon=["2026.25", "2026.26"],
        items=[],
        changes={
            "first": True,
            "added": [],
            "removed": [],
            "moved": [],
            "shipped": [
                {
                    "id": "vault-secrets",
                    "title": "Secrets from Vault in the AVA Platform",
                    "public": True,
                    "release_id": "2026.24",
                    "oems": ["nimbus"],
                }
            ],
        },
        run_id="shipped",
    )
    for oem, brand, yours in (("nimbus", "Nimbus Connect", True), ("orbitel", "OrbitLink Integrate", False)):
        client = world.client(oem)
        (shipped,) = client.get("/api/v1/roadmap").json()["shipped"]
        assert shipped == {
            "id": "vault-secrets",
            "title": f"Secrets from Vault in the {brand}",
            "release_id": "2026.24",
            "yours": yours,
        }
        page = world.client(oem, browser=True).get("/roadmap").text
        assert f"Secrets from Vault in the {brand}</strong>: shipped in 2026.24" in page
        assert ("you asked for this" in page) is yours
    assert "nimbus" not in world.client("orbitel", browser=True).get("/roadmap").text.lower()


def test_the_next_install_page_forecasts_the_callers_own_install(world, calendar):
    """What its next install brings as things stand, in its own time, white-labelled."""
    world.repo.set_release_status("2026.24", "deployed", actor="test")
    world.repo.set_release_status("2026.25", "deployed", actor="test")
    world.repo.set_installed_version("nimbus", "2026.22")
    world.repo.record_decision(oem_id="nimbus", change_id="CHG-1", decision="approved", actor="n", channel="portal")
    app = create_app(world.repo, load_calendar=lambda: calendar, now=lambda: pendulum.datetime(2026, 11, 28, tz="UTC"))
    client = TestClient(app, follow_redirects=False)
    assert client.post("/login", data={"token": world.tokens["nimbus"]}).status_code == 303
    page = client.get("/next-install")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert '<td id="installs">nothing</td>' in text
    assert '<td id="install-at">2026-12-03 10:00</td>' in text  # Berlin time
    assert '<td id="signoff-due">2026-12-01 10:00</td>' in text
    assert 'data-owed="CHG-2">pending</td><td>Nimbus Systems GmbH</td>' in text
    assert 'data-owed="CHG-1"' not in text  # approved: not owed
    assert "nothing installable yet: CHG-2 (release 2026.24) not signed off" in text
    assert "CHG-3" not in text and "Orbitel" not in text  # orbitel's own release is not nimbus's
    assert "AVA" not in text
    assert '<td data-due="2026.24">2026-12-01 10:00</td>' in client.get("/releases").text
    assert "Sign-off due 2026-12-01 10:00 (your time)." in client.get("/releases/2026.24").text
    deliveries = client.get("/deliveries").text
    assert "<th>Sign-off due (your time)</th>" in deliveries and "2026-12-01 10:00" in deliveries
