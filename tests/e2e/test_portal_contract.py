"""The portal's JSON API keeps its OpenAPI contract: schemathesis generates requests
from the portal's own ``openapi.json`` (fetched with an OEM token), valid and invalid
ones, sends them to the real app in-process (ASGI) over a seeded release database
(SQLite and PostgreSQL), and runs every check it has on each answer: no 5xx, every
status code and body documented, every documented constraint enforced by the server,
valid input accepted, and no answer without the token."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from release_train_airflow.portal.ratelimit import SignInLimiter
from tests.builders import World

pytestmark = pytest.mark.e2e

load_all_checks()
EVERY_CHECK = CHECKS.get_all()
EXAMPLES = 25  # per operation and mode: 7 operations x 2 modes, 15-40 s per database


def test_the_portal_api_keeps_its_contract(repo, calendar):
    world = World(repo, calendar)
    # the ignored_auth check sends wrong tokens: keep the sign-in limit (tested on its own
    # in tests/plugins) from turning the rest of the run into 429s
    world.app.state.portal.sign_in_limiter = SignInLimiter(failures=1_000_000)
    auth = {"Authorization": f"Bearer {world.tokens['nimbus']}"}
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app, headers=auth)
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
