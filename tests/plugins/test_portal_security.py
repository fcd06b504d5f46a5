"""The portal under attack, in-process on SQLite and PostgreSQL: the sign-in lock-out per
client address and token prefix (also through uvicorn's own proxy-headers middleware with
the trusted networks docker-compose.yaml configures), login CSRF, the schema's
``servers`` where the portal is mounted, and ``Allow`` on a method a path does not take."""

import os
import re
import secrets
import shlex
import subprocess
import sys
import uuid
import warnings

import pytest
import yaml
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from release_pipeline.tokens import issue_token
from release_pipeline.vendor import load_vendor
from release_train_airflow.portal import create_app
from release_train_airflow.portal.app import PORTAL_PREFIX, create_service
from release_train_airflow.portal.ratelimit import PREFIX_CHARS, SignInLimiter, TooManySignIns
from tests.builders import World
from tests.conftest import REPO

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def world(repo, calendar):
    return World(repo, calendar)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def limited(world) -> Clock:
    clock = Clock()
    world.app.state.portal.sign_in_limiter = SignInLimiter(failures=10, window=60, clock=clock)
    return clock


def attempt(client: TestClient, via: str, token: str, headers: dict | None = None):
    if via == "login":
        return client.post("/login", data={"token": token}, headers=headers)
    if via == "bearer":
        return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}", **(headers or {})})
    client.cookies.set("oem_portal_token", token)
    return client.get("/releases", headers=headers)


SIGNED_IN = {"login": 303, "bearer": 200, "cookie": 200}
REFUSED = {"login": 401, "bearer": 401, "cookie": 303}  # the cookie's refusal: back to the login page


# -- the lock-out ---------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["login", "bearer", "cookie"])
def test_failures_lock_out_one_client_and_token_prefix_never_a_valid_token_behind_the_same_proxy(world, via):
    """Every OEM behind one proxy shares its address: ten failures with one token prefix lock
    that prefix out from that address, and nothing else: the holders of valid tokens behind
    the same proxy sign in, and so does the same prefix from another address."""
    clock = limited(world)
    proxy = TestClient(world.app, follow_redirects=False, client=("203.0.113.9", 50000))
    stale = "rtp_staleTOK"  # a script retrying a revoked token, or a guesser on one prefix
    assert len(stale) == PREFIX_CHARS
    for i in range(10):
        clock.now += 1
        assert attempt(proxy, via, f"{stale}{i}").status_code == REFUSED[via]
    clock.now += 1
    locked = attempt(proxy, via, f"{stale}-more")
    assert locked.status_code == 429 and locked.headers["retry-after"] == "50"
    assert "too many failed sign-ins with this token" in locked.text
    if via == "bearer":
        assert locked.json() == {"detail": "too many failed sign-ins with this token from your address: retry in 50 s"}
    else:
        assert locked.headers["content-type"].startswith("text/html")
    # the OEMs behind the same proxy are not locked out
    for oem in ("nimbus", "orbitel"):
        holder = TestClient(world.app, follow_redirects=False, client=("203.0.113.9", 50001))
        assert attempt(holder, via, world.tokens[oem]).status_code == SIGNED_IN[via], oem
    elsewhere = TestClient(world.app, follow_redirects=False, client=("198.51.100.7", 50000))
    assert attempt(elsewhere, via, f"{stale}0").status_code == REFUSED[via]
    clock.now += 50  # the first failure left the window
    assert attempt(proxy, via, f"{stale}0").status_code == REFUSED[via]
    assert attempt(proxy, via, f"{stale}1").status_code == 429


def test_failures_with_ever_new_tokens_never_lock_out_the_valid_token_from_the_same_address(world):
    clock = limited(world)
    proxy = TestClient(world.app, follow_redirects=False, client=("203.0.113.9", 50000))
    for i in range(50):
        clock.now += 0.5
        assert attempt(proxy, "bearer", f"rtp_{i:08d}xyz").status_code == 401
    assert attempt(proxy, "bearer", world.tokens["nimbus"]).status_code == 200


def prefix_of(token: str) -> str:
    return token[:PREFIX_CHARS]


@settings(max_examples=200, deadline=None)
@given(
    valid=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=43, max_size=43
    ),
    failures=st.lists(
        st.tuples(st.sampled_from(["203.0.113.9", "198.51.100.7", "unknown"]), st.text(max_size=30)), max_size=60
    ),
    holder=st.sampled_from(["203.0.113.9", "198.51.100.7", "unknown"]),
)
def test_no_other_tokens_failures_ever_lock_out_a_valid_token(valid, failures, holder):
    """The rule, over any failures from any addresses (the holder's own among them): a
    token is locked out only by failures of tokens that start as it does."""
    token = "rtp_" + valid
    limiter = SignInLimiter(failures=3, window=60, clock=lambda: 0.0)
    for client, failed in failures:
        if prefix_of(failed) != prefix_of(token):
            limiter.failed(client, failed)
    limiter.check(holder, token)  # raises TooManySignIns if locked out
    for _ in range(3):
        limiter.failed(holder, token[:PREFIX_CHARS] + "wrong")
    with pytest.raises(TooManySignIns):
        limiter.check(holder, token)  # the same prefix from the same address: locked


def compose_trusted_proxies() -> str:
    """The default of ``FORWARDED_ALLOW_IPS`` in docker-compose.yaml's oem-portal."""
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    value = compose["services"]["oem-portal"]["environment"]["FORWARDED_ALLOW_IPS"]
    return re.fullmatch(r"\$\{PORTAL_TRUSTED_PROXIES:-(.+)\}", value).group(1)


def test_forwarded_client_addresses_from_the_trusted_proxy_networks_are_counted_apart(world):
    """uvicorn's ``--proxy-headers`` middleware with docker-compose's default trusted networks:
    behind the proxy (a Docker network's gateway) each client is counted by its forwarded
    address; a peer outside those networks cannot choose its address by the header."""
    clock = limited(world)
    behind_proxy = ProxyHeadersMiddleware(world.app, trusted_hosts=compose_trusted_proxies())
    proxy = TestClient(behind_proxy, follow_redirects=False, client=("172.18.0.1", 40000))

    def as_client(address: str, token: str, peer: TestClient = proxy):
        return attempt(peer, "bearer", token, headers={"X-Forwarded-For": address})

    for i in range(10):
        clock.now += 1
        assert as_client("198.51.100.7", f"rtp_badPREFIX{i}").status_code == 401
    assert as_client("198.51.100.7", "rtp_badPREFIX").status_code == 429
    assert as_client("198.51.100.8", "rtp_badPREFIX").status_code == 401  # another client behind the proxy
    assert as_client("198.51.100.7", world.tokens["nimbus"]).status_code == 200
    # from outside the trusted networks, X-Forwarded-For is ignored: the peer's own address counts
    direct = TestClient(behind_proxy, follow_redirects=False, client=("203.0.113.50", 40000))
    assert as_client("198.51.100.7", "rtp_badPREFIX", peer=direct).status_code == 401
    for i in range(9):
        assert as_client(f"198.51.100.{i + 20}", f"rtp_badPREFIX{i}", peer=direct).status_code == 401
    assert as_client("198.51.100.99", "rtp_badPREFIX", peer=direct).status_code == 429


# -- login CSRF ----------------------------------------------------------------------------------
CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a privacy-stripped origin
    {"Origin": "http://localhost:8081"},  # same host, another port: another origin
    {"Referer": "https://evil.example/sign-in-as-me.html"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
]
SAME_SITE = [
    {"Origin": "http://localhost:8080"},  # portal_url's origin (config/vendor.yaml)
    {"Origin": "http://testserver"},  # the origin the request was sent to
    {"Referer": "http://testserver/login", "Sec-Fetch-Site": "same-origin"},
    {},  # no browser: nothing to carry a victim's session
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_a_cross_site_login_or_logout_is_refused(world, headers):
    client = TestClient(world.app, follow_redirects=False)
    login = client.post("/login", data={"token": world.tokens["orbitel"]}, headers=headers)
    assert login.status_code == 403 and "set-cookie" not in login.headers
    assert "came from another site" in login.text
    signed_in = world.client("nimbus", browser=True)
    logout = signed_in.post("/logout", headers=headers)
    assert logout.status_code == 403 and "set-cookie" not in logout.headers
    assert signed_in.get("/releases").status_code == 200  # still signed in


@pytest.mark.parametrize("headers", SAME_SITE)
def test_a_login_and_logout_from_the_portals_own_pages_work(world, headers):
    client = TestClient(world.app, follow_redirects=False)
    login = client.post("/login", data={"token": world.tokens["nimbus"]}, headers=headers)
    assert login.status_code == 303 and "oem_portal_token=" in login.headers["set-cookie"]
    assert client.get("/releases").status_code == 200
    logout = client.post("/logout", headers=headers)
    assert logout.status_code == 303 and 'oem_portal_token=""' in logout.headers["set-cookie"]


def test_the_cookie_is_secure_when_the_request_came_over_https(repo):
    """A TLS proxy's ``X-Forwarded-Proto: https`` (uvicorn's proxy headers) makes the cookie
    Secure even where ``portal_url`` is plain localhost."""
    vendor = load_vendor()
    assert vendor.portal_url.startswith("http://localhost")
    app = create_app(repo, load_vendor=lambda: vendor)
    token = issue_token(repo, oem_id="nimbus", label="n", created_by="t").token
    behind_proxy = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")
    client = TestClient(behind_proxy, follow_redirects=False, client=("127.0.0.1", 1))
    https = client.post("/login", data={"token": token}, headers={"X-Forwarded-Proto": "https"})
    assert https.status_code == 303 and "secure" in https.headers["set-cookie"].lower()
    plain = client.post("/login", data={"token": token})
    assert plain.status_code == 303 and "secure" not in plain.headers["set-cookie"].lower()


# -- the OpenAPI document: servers and Allow ----------------------------------------------------
def mounted(app: FastAPI) -> FastAPI:
    """The portal the way Airflow's api-server mounts a plugin app (``app.mount(url_prefix, ...)``)."""
    host = FastAPI()
    host.mount(PORTAL_PREFIX, app)
    return host


def test_the_schema_declares_where_the_portal_is_mounted(world, release_db_url):
    bearer = {"Authorization": f"Bearer {world.tokens['nimbus']}"}
    for host in (mounted(world.app), create_service(lambda: release_db_url)):
        with TestClient(host) as client:
            schema = client.get(f"{PORTAL_PREFIX}/openapi.json", headers=bearer).json()
        assert [s["url"] for s in schema["servers"]] == [PORTAL_PREFIX]
        assert "/api/v1/feedback" in schema["paths"]
    # served at the root (a proxy that strips the prefix), the root is the server
    assert [s["url"] for s in world.client("nimbus").get("/openapi.json").json()["servers"]] == ["/"]


def test_a_method_a_path_does_not_take_answers_405_naming_every_method_it_does(world):
    client = world.client("nimbus")
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        concrete = path.replace("{release_id}", "2026.24")
        answer = client.options(concrete)
        assert answer.status_code == 405, path
        allowed = {m.strip().lower() for m in answer.headers["allow"].split(",")} - {"head"}
        assert allowed == set(operations), path
    put = client.put("/api/v1/feedback")
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"
    assert put.json() == {"detail": "Method Not Allowed"}
    page = TestClient(world.app).delete("/feedback")
    assert page.status_code == 405 and page.headers["allow"] == "GET, POST"


# -- least privilege: the portal's own PostgreSQL role ------------------------------------------
def compose_role_command() -> list[str]:
    """airflow-init's call of the role script, as docker-compose.yaml writes it."""
    script = yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]["airflow-init"]["command"][-1]
    (line,) = [line for line in script.splitlines() if "portal_db_role.py" in line]
    return shlex.split(line.replace("$$", "$"))


@pytest.fixture
def role_databases(postgres_databases):
    """An Airflow metadata database with a table holding a secret, and a migrated release
    database, on the test server; the role under a name of its own (the server is shared)."""
    from sqlalchemy import text

    from release_pipeline.db import connect
    from release_pipeline.db.migrate import upgrade

    metadata_url = postgres_databases.create("rt_airflow")
    engine = connect(metadata_url)
    with engine.begin() as conn:  # Airflow's metadata tables belong to its owner, as in compose
        conn.execute(text("CREATE TABLE connection (conn_id text, password text)"))
        conn.execute(text("INSERT INTO connection VALUES ('oem_nimbus_ssh', 'the-secret')"))
    engine.dispose()
    release_url = postgres_databases.create("rt_release")
    engine = connect(release_url)
    upgrade(engine)
    engine.dispose()
    role = f"oem_portal_{uuid.uuid4().hex[:8]}"
    yield metadata_url, release_url, role
    engine = connect(release_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
    engine.dispose()


def run_role_script(release_url: str, metadata_db: str, role: str) -> subprocess.CompletedProcess:
    command = compose_role_command()
    assert command[:2] == ["python", "/opt/airflow/deploy/scripts/portal_db_role.py"]
    args = dict(zip(command[2::2], command[3::2], strict=True))
    assert args == {
        "--db-url": "postgresql://airflow:${POSTGRES_PASSWORD}@postgres:5432/release_train",
        "--metadata-db": "airflow",
    }
    args.update({"--db-url": release_url, "--metadata-db": metadata_db, "--role": role})
    return subprocess.run(
        [sys.executable, str(REPO / "deploy/scripts/portal_db_role.py"), *[x for kv in args.items() for x in kv]],
        env={**os.environ, "PORTAL_DB_PASSWORD": secrets.token_urlsafe(18)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_portals_own_database_role_does_what_the_portal_needs_and_cannot_read_airflow(role_databases, calendar):
    """airflow-init's very role script, run twice (every start) against PostgreSQL here: as
    that role the portal answers every route and records decisions and feedback, and it
    cannot reach Airflow's metadata database, read what the portal never shows, or change
    the record."""
    import psycopg
    from sqlalchemy.engine import make_url

    from release_pipeline.db.repository import ReleaseRepository
    from release_pipeline.db.schema import metadata

    metadata_url, release_url, role = role_databases
    metadata_db = make_url(metadata_url).database
    for _ in range(2):
        done = run_role_script(release_url, metadata_db, role)
        assert done.returncode == 0, done.stderr
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    portal_url = compose["services"]["oem-portal"]["environment"]["RELEASE_TRAIN_DB_URL"]
    assert portal_url.startswith("postgresql://oem_portal:${PORTAL_DB_PASSWORD:?")  # the script's default role
    as_role = make_url(release_url).set(username=role, password=None).render_as_string(hide_password=False)

    admin = ReleaseRepository.from_url(release_url)
    portal_repo = ReleaseRepository.from_url(as_role)
    try:
        world = World(admin, calendar)
        world.app = create_app(portal_repo)
        api, browser = world.client("nimbus"), world.client("nimbus", browser=True)
        csrf = re.search(r'name="csrf" value="(\w+)"', browser.get("/feedback").text).group(1)
        # kestrel (API) and tundra (pages) were upgraded from 2026.22 to 2026.24: each reports a
        # regression and asks to go back (one open request per OEM)
        for oem in ("kestrel", "tundra"):
            admin.upsert_delivery(oem, "2026.24", status="installed", from_release_id="2026.22")
            admin.set_installed_version(oem, "2026.24")
            world.tokens[oem] = issue_token(admin, oem_id=oem, label=oem, created_by="t").token
        kestrel_api, tundra = world.client("kestrel"), world.client("tundra", browser=True)
        tundra_csrf = re.search(r'name="csrf" value="(\w+)"', tundra.get("/rollbacks").text).group(1)
        rollback_routes = {
            "/api/v1/regressions",
            "/api/v1/rollback-requests",
            "/rollbacks/regressions",
            "/rollbacks/requests",
        }
        posts = {  # each route's write, as nimbus on its own release
            "/api/v1/releases/{release_id}/decisions": {"json": {"decision": "approved", "changes": ["CHG-1"]}},
            "/api/v1/feedback": {"json": {"category": "required_component", "title": "SAP", "component": "sap"}},
            "/releases/{release_id}/decisions": {"data": {"decision": "approved", "change": "CHG-2", "csrf": csrf}},
            "/feedback": {"data": {"category": "use_cases", "title": "As the portal's role", "csrf": csrf}},
            "/login": {"data": {"token": world.tokens["nimbus"]}},
            "/logout": {},
            "/api/v1/regressions": {"json": {"release_id": "2026.24", "description": "exports fail"}},
            "/rollbacks/regressions": {"data": {"release_id": "2026.24", "description": "SSO", "csrf": tundra_csrf}},
            "/api/v1/rollback-requests": {"json": {"release_id": "2026.24", "reason": "exports fail"}},
            "/rollbacks/requests": {"data": {"release_id": "2026.24", "reason": "SSO", "csrf": tundra_csrf}},
        }
        answered = {}
        feed_token = issue_token(admin, oem_id="nimbus", label="calendar", created_by="t", kind="feed").token
        # every route the app serves (a privilege missing raises here: TestClient re-raises)
        for route in world.app.routes:
            for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
                client = api if route.path.startswith("/api/") else browser
                if route.path in rollback_routes:
                    client = kestrel_api if route.path.startswith("/api/") else tundra
                url = route.path.replace("{release_id}", "2026.24").replace("{change_id}", "CHG-1")
                if route.path == "/calendar.ics":  # records each event's revision as the role
                    url += f"?token={feed_token}"
                if route.path == "/logout":
                    client = world.client("nimbus", browser=True)
                response = client.request(method, url, **(posts[route.path] if method == "POST" else {}))
                answered[(method, route.path)] = response.status_code
        assert set(answered.values()) <= {200, 201, 303}, answered
        assert (
            answered[("POST", "/api/v1/feedback")]
            == answered[("POST", "/api/v1/releases/{release_id}/decisions")]
            == 201
        )
        assert answered[("GET", "/api/v1/roadmap")] == answered[("GET", "/openapi.json")] == 200
        assert [e.decision for e in admin.approval_history("nimbus", "CHG-1")] == ["approved"]
        assert [e.decision for e in admin.approval_history("nimbus", "CHG-2")] == ["approved"]
        assert {f.title for f in admin.feedback(oem_id="nimbus")} == {"SAP", "As the portal's role"}
        assert admin.portal_tokens("nimbus")[0].last_used_at is not None
        assert answered[("GET", "/calendar.ics")] == 200 and admin.calendar_revisions("nimbus")
        for oem in ("kestrel", "tundra"):
            assert len(admin.regression_reports(oem)) == len(admin.rollback_requests(oem)) == 1
    finally:
        admin.engine.dispose()
        portal_repo.engine.dispose()

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(make_url(metadata_url).set(username=role, password=None).render_as_string(False))
    with psycopg.connect(make_url(as_role).set(drivername="postgresql").render_as_string(False)) as conn:
        forbidden = [
            "SELECT * FROM held_sends",
            "SELECT * FROM side_effects",
            "SELECT * FROM alembic_version",
            "UPDATE approval_events SET decision = 'rejected'",
            "DELETE FROM approval_events",
            "DELETE FROM feedback",
            "DELETE FROM calendar_event_revisions",
            "UPDATE portal_tokens SET revoked_at = NULL, expires_at = now() + interval '10 years'",
            "INSERT INTO portal_tokens (oem_id, token_hash, label, created_by, expires_at) "
            "VALUES ('nimbus', 'x', 'x', 'x', now())",
            "TRUNCATE releases",
            "CREATE TABLE mine (x int)",
            "ALTER TABLE releases ADD COLUMN mine int",
            f"ALTER ROLE {role} SUPERUSER",
        ]
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement)
        tables = {t.name for t in metadata.sorted_tables}
        readable = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND privilege_type = 'SELECT'",
                (role,),
            )
        }
        assert readable < tables and "held_sends" not in readable
