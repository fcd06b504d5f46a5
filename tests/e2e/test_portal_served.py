"""The OEM portal as OEM users reach it: served by a real ``airflow api-server`` at
/oem-portal (the plugin), and clicked through in headless Debian chromium."""

import re

import httpx
import pendulum
import pytest

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import Change, ChangeType
from release_pipeline.release_calendar import load_calendar
from release_pipeline.tokens import issue_token

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("airflow_api")]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def served_repo(api_release_db_url):
    repo = ReleaseRepository.from_url(api_release_db_url)
    yield repo
    repo.engine.dispose()


def cut(repo, release_id, *change_ids):
    release = load_calendar().release_by_id(release_id)
    changes = [
        Change(c, ChangeType.FEATURE, "connectors", f"AVA connector {c}", "For AVA Platform flows", False, release.at)
        for c in change_ids
    ]
    repo.record_release(release, changes, changes_since=None, changes_until=None, actor="test")


def test_the_api_server_serves_the_portal_plugin(airflow_api, served_repo):
    base = f"{airflow_api.base_url}/oem-portal"
    token = issue_token(served_repo, oem_id="kestrel", label="kim@kestrel", created_by="test").token

    # the UI's catch-all answers unknown paths with 200 text/html: check what answered
    me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (me.status_code, me.headers["content-type"]) == (200, "application/json")
    assert me.json()["product"] == "Kestrel Flow"
    denied = httpx.get(f"{base}/api/v1/me", headers={"Authorization": "Bearer rtp_forged"})
    assert (denied.status_code, denied.json()) == (401, {"detail": "invalid or revoked portal token"})
    bearer = {"Authorization": f"Bearer {token}"}
    schema = httpx.get(f"{base}/openapi.json", headers=bearer)
    assert schema.headers["content-type"] == "application/json" and "/api/v1/releases" in schema.json()["paths"]
    # a client generated from the schema calls the portal, not /api/v1 on the host's root
    assert [server["url"] for server in schema.json()["servers"]] == ["/oem-portal"]
    assert httpx.get(f"{base}/openapi.json").status_code == 401  # the API docs need a token too
    assert httpx.get(f"{base}/docs", follow_redirects=False).headers["location"] == f"{base}/login"
    docs = httpx.get(f"{base}/docs", headers=bearer)
    assert docs.headers["content-type"].startswith("text/html") and "/oem-portal/openapi.json" in docs.text
    login = httpx.get(f"{base}/login")
    assert login.headers["content-type"].startswith("text/html") and 'name="token"' in login.text
    unauthenticated = httpx.get(f"{base}/releases", follow_redirects=False)
    assert unauthenticated.status_code == 303 and unauthenticated.headers["location"] == f"{base}/login"
    # Airflow lists the plugin with its app
    plugins = airflow_api.client().get("/plugins").json()["plugins"]
    (ours,) = [p for p in plugins if p["name"] == "release_train"]
    assert [(a["name"], a["url_prefix"]) for a in ours["fastapi_apps"]] == [("OEM portal", "/oem-portal")]


def test_an_oem_user_approves_a_release_in_a_real_browser(airflow_api, served_repo):
    from playwright.sync_api import expect, sync_playwright

    cut(served_repo, "2026.20", "CHG-301", "CHG-302")
    served_repo.request_approvals("2026.20", ["nimbus", "orbitel"])
    token = issue_token(served_repo, oem_id="nimbus", label="nina@nimbus", created_by="test").token
    base = f"{airflow_api.base_url}/oem-portal"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/releases")  # not logged in: the login form
            page.get_by_label("Portal token").fill(token)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator('td[data-release="2026.20"]')).to_have_text("pending")

            page.get_by_role("link", name="2026.20").click()
            expect(page.locator("#release-state")).to_have_text("pending")
            expect(page.locator(".notes h1")).to_have_text("Nimbus Connect 2026.20 release notes")
            assert "AVA" not in page.content()
            page.get_by_role("button", name="Approve all changes").click()

            expect(page.locator("#release-state")).to_have_text("approved")
            expect(page.get_by_role("status")).to_have_text("Recorded: approved.")
            expect(page.locator('td[data-change="CHG-302"]')).to_have_text("approved")
            page.get_by_role("link", name="Sign-off").click()
            expect(page.locator('td[data-release="2026.20"]')).to_have_text("approved")
        finally:
            browser.close()

    events = [served_repo.approval_history("nimbus", c) for c in ("CHG-301", "CHG-302")]
    assert [[(e.decision, e.actor, e.channel) for e in h] for h in events] == [
        [("approved", "nina@nimbus", "portal")],
        [("approved", "nina@nimbus", "portal")],
    ]
    assert served_repo.approval_history("orbitel", "CHG-301") == []
    assert served_repo.portal_tokens("nimbus")[0].last_used_at <= pendulum.now("UTC")
    assert re.fullmatch(r"rtp_[\w-]{43}", token)


def test_an_oem_user_follows_its_next_install_in_a_real_browser(airflow_api, served_repo):
    """The "Next install" page as the api-server serves it. The server's clock is not the
    test's, so only what holds on any date is checked: what is owed, by whom, in whose time."""
    from playwright.sync_api import expect, sync_playwright

    cut(served_repo, "2026.01")
    cut(served_repo, "2026.02", "CHG-321")
    for release_id in ("2026.01", "2026.02"):
        served_repo.set_release_status(release_id, "deployed", actor="test")
    served_repo.request_approvals("2026.02", ["kestrel"])
    served_repo.set_installed_version("kestrel", "2026.01")
    token = issue_token(served_repo, oem_id="kestrel", label="kim@kestrel", created_by="test").token
    base = f"{airflow_api.base_url}/oem-portal"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/login")
            page.get_by_label("Portal token").fill(token)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("link", name="Next install").click()
            expect(page.get_by_role("heading", name="Next install")).to_be_visible()
            expect(page.locator("#installs")).to_have_text("nothing")
            expect(page.locator('td[data-owed="CHG-321"]')).to_have_text("pending")
            expect(page.locator("main")).to_contain_text("Kestrel Software Pty Ltd")
            expect(page.locator("main")).to_contain_text("Australia/Sydney")
            expect(page.locator("#if-nothing-changes")).to_contain_text("CHG-321 (release 2026.02) not signed off")
            assert "AVA" not in page.content()

            page.get_by_role("link", name="2026.02").click()  # sign off from there, and come back
            page.get_by_role("button", name="Approve all changes").click()
            expect(page.locator("#release-state")).to_have_text("approved")
            page.get_by_role("link", name="Next install").click()
            expect(page.locator("#nothing-owed")).to_be_visible()
            expect(page.locator('td[data-owed="CHG-321"]')).to_have_count(0)
        finally:
            browser.close()
    assert [e.decision for e in served_repo.approval_history("kestrel", "CHG-321")] == ["approved"]


def test_two_approvers_sign_off_in_a_real_browser_and_each_sees_who_is_missing(airflow_api, served_repo):
    """orbitel's policy (the api-server's config, ``api_config_dir``): two of Olga (qa) and
    Pat (product). Olga's approval leaves each change pending with Pat named as missing;
    Pat's approves it. A token bound to no approver cannot decide."""
    from playwright.sync_api import expect, sync_playwright

    cut(served_repo, "2026.21", "CHG-311", "CHG-312")
    served_repo.request_approvals("2026.21", ["orbitel"])
    olga = issue_token(served_repo, oem_id="orbitel", label="olga@orbitel", created_by="test", approver="Olga Berg")
    pat = issue_token(served_repo, oem_id="orbitel", label="pat@orbitel", created_by="test", approver="Pat Kim")
    base = f"{airflow_api.base_url}/oem-portal"

    unbound = issue_token(served_repo, oem_id="orbitel", label="old@orbitel", created_by="test").token
    refused = httpx.post(
        f"{base}/api/v1/releases/2026.21/decisions",
        json={"decision": "approved"},
        headers={"Authorization": f"Bearer {unbound}"},
    )
    assert refused.status_code == 403 and "a decision must be one of theirs" in refused.json()["detail"]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/login")
            page.get_by_label("Portal token").fill(olga.token)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("link", name="2026.21").click()
            expect(page.locator("#signoff-policy")).to_have_text(
                "Each change needs 2 of Olga Berg (qa), Pat Kim (product). You sign off as Olga Berg (qa)."
            )
            expect(page.locator('td[data-approvals="CHG-311"]')).to_contain_text("none yet")
            page.get_by_role("button", name="Approve all changes").click()

            expect(page.get_by_role("status")).to_have_text("Recorded: approved.")
            expect(page.locator("#release-state")).to_have_text("pending")
            expect(page.locator('td[data-change="CHG-311"]')).to_have_text("pending")
            expect(page.locator('td[data-approvals="CHG-311"] .approval')).to_have_text(["Olga Berg (qa)"])
            expect(page.locator('[data-missing="CHG-311"]')).to_have_text(
                "Still missing: 1 more approval of Pat Kim (product)"
            )
            page.get_by_role("button", name="Log out").click()

            page.get_by_label("Portal token").fill(pat.token)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator('td[data-release="2026.21"]')).to_have_text("pending")
            page.get_by_role("link", name="2026.21").click()
            expect(page.locator('[data-missing="CHG-312"]')).to_have_text(
                "Still missing: 1 more approval of Pat Kim (product)"
            )
            page.get_by_role("button", name="Approve all changes").click()

            expect(page.locator("#release-state")).to_have_text("approved")
            expect(page.locator('td[data-approvals="CHG-312"] .approval')).to_have_text(
                ["Olga Berg (qa)", "Pat Kim (product)"]
            )
            expect(page.locator('[data-missing="CHG-312"]')).to_have_count(0)
        finally:
            browser.close()

    history = served_repo.approval_history("orbitel", "CHG-311")
    assert [(e.approver, e.approver_role, e.actor, e.decision) for e in history] == [
        ("Olga Berg", "qa", "olga@orbitel", "approved"),
        ("Pat Kim", "product", "pat@orbitel", "approved"),
    ]


def test_a_page_on_another_site_cannot_sign_a_browser_in(airflow_api, served_repo, tmp_path):
    """Login CSRF in a real browser: a page on another origin posts an attacker's token to
    the portal's login form; the portal refuses it (403) and the browser stays signed out.
    The portal's own login form still signs the same browser in."""
    import functools
    import http.server
    import threading

    from playwright.sync_api import expect, sync_playwright

    from devstack.stack import free_port

    attacker = issue_token(served_repo, oem_id="orbitel", label="mallory@orbitel", created_by="test").token
    victim = issue_token(served_repo, oem_id="nimbus", label="nina@nimbus", created_by="test").token
    base = f"{airflow_api.base_url}/oem-portal"
    (tmp_path / "index.html").write_text(
        f'<form id="f" method="post" action="{base}/login"><input name="token" value="{attacker}"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    evil = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()),
        functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)),
    )
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    # localhost, not 127.0.0.1: another site, not only another origin
    evil_url = f"http://localhost:{evil.server_address[1]}/index.html"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                with page.expect_response(f"{base}/login") as posted:
                    page.goto(evil_url)
                assert posted.value.status == 403
                expect(page.locator("main")).to_contain_text("came from another site")
                assert not [c for c in page.context.cookies() if c["name"] == "oem_portal_token"]
                page.goto(f"{base}/releases")
                expect(page.get_by_label("Portal token")).to_be_visible()  # still signed out

                page.get_by_label("Portal token").fill(victim)
                page.get_by_role("button", name="Log in").click()
                expect(page.locator("header")).to_contain_text("nina@nimbus")
            finally:
                browser.close()
    finally:
        evil.shutdown()
