"""The portal's JSON API keeps its OpenAPI contract, tested the way an outside client
meets it: the portal is served over HTTP by uvicorn, mounted at ``/oem-portal`` as the
api-server of ``make up`` and the portal service serve it, over a seeded release database
(SQLite and PostgreSQL). schemathesis loads the served ``openapi.json`` with its own loader
(``schemathesis.openapi.from_url``, with an OEM token) and calls the operations where the
document's ``servers`` say they are; it generates valid and invalid requests and runs
every check it has on each answer: no 5xx, every status code and body documented, every
documented constraint enforced by the server, valid input accepted, and no answer without
the token. Every path also answers a method it does not take with 405 and an ``Allow``
naming exactly its documented methods."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from devstack.stack import free_port
from release_train_airflow.portal.app import PORTAL_PREFIX
from release_train_airflow.portal.ratelimit import SignInLimiter
from tests.builders import World

pytestmark = pytest.mark.e2e

load_all_checks()
EVERY_CHECK = CHECKS.get_all()
EXAMPLES = 25  # per operation and mode: 7 operations x 2 modes, 15-40 s per database


@pytest.fixture
def served(repo, calendar) -> Iterator[tuple[str, World]]:
    """The seeded portal under uvicorn on 127.0.0.1, mounted at ``/oem-portal`` (Airflow's
    api-server mounts a plugin's app with ``app.mount(url_prefix, app)``)."""
    world = World(repo, calendar)
    # the ignored_auth check sends wrong tokens: keep the sign-in limit (tested on its own
    # in tests/plugins) from turning the rest of the run into 429s
    world.app.state.portal.sign_in_limiter = SignInLimiter(failures=1_000_000)
    host = FastAPI()
    host.mount(PORTAL_PREFIX, world.app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(host, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", world
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_the_portal_api_keeps_its_contract(served):
    base, world = served
    auth = {"Authorization": f"Bearer {world.tokens['nimbus']}"}
    schema = schemathesis.openapi.from_url(f"{base}{PORTAL_PREFIX}/openapi.json", headers=auth)
    # the document's own servers entry puts the operations under the mount, not the host's root
    assert schema.get_base_url() == f"{base}{PORTAL_PREFIX}"
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
            def check(case):
                case.call_and_validate(headers=auth, checks=EVERY_CHECK)

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}):\n{exc}")
    assert not failures, "\n\n".join(failures)

    for path, operations in schema.raw_schema["paths"].items():
        url = f"{schema.get_base_url()}{path.replace('{release_id}', '2026.24')}"
        answer = httpx.options(url, headers=auth)
        allowed = {m.strip().lower() for m in answer.headers.get("allow", "").split(",")} - {"head", ""}
        assert (answer.status_code, allowed) == (405, set(operations)), path
