"""The portal's Next install page shows the OEM its own rollout wave and whether its
install is postponed by a halt, never the halt's cause nor the OEM it came from."""

import shutil
import warnings
from pathlib import Path

import pendulum
import pytest

from release_pipeline.registry import load_registry
from release_pipeline.waves import halt
from release_train_airflow.portal import create_app
from tests.builders import World

with warnings.catch_warnings():  # starlette's notice about its httpx-based TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = pendulum.datetime(2026, 11, 28, tz="UTC")


@pytest.fixture
def world(repo, calendar, tmp_path):
    """orbitel is wave 2 and approved 2026.24 in full; nimbus is wave 1."""
    oems = tmp_path / "oems.yaml"
    shutil.copy(Path(__file__).parents[2] / "config" / "oems.yaml", oems)
    oems.write_text(oems.read_text().replace("  - id: orbitel\n", "  - id: orbitel\n    wave: 2\n", 1))
    world = World(repo, calendar)
    repo.set_release_status("2026.24", "deployed", actor="test")
    for change_id in ("CHG-1", "CHG-2"):
        repo.record_decision(oem_id="orbitel", change_id=change_id, decision="approved", actor="o", channel="portal")
    app = create_app(repo, load_calendar=lambda: calendar, load_registry=lambda: load_registry(oems), now=lambda: NOW)
    world.browser = lambda oem: browser(app, world.tokens[oem])
    return world


def browser(app, token: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert client.post("/login", data={"token": token}).status_code == 303
    return client


def test_the_next_install_page_shows_the_callers_wave_and_its_wave_day(world):
    text = world.browser("orbitel").get("/next-install").text
    assert '<td id="wave">2</td>' in text
    assert '<td id="installs">2026.24</td>' in text
    assert '<td id="install-at">2026-12-05 22:00</td>' in text  # wave 2: Saturday night, New York time
    assert 'id="postponed"' not in text
    assert '<td id="wave">1</td>' in world.browser("nimbus").get("/next-install").text


def test_a_halt_shows_as_postponed_naming_no_cause_and_no_other_oem(world, repo):
    halt(repo, "2026.24", cause="rolled_back", detail="rolled back on Nimbus Connect: health 503",
         actor="delivery:nimbus", at=NOW, wave=1, oem_id="nimbus")  # fmt: skip
    page = world.browser("orbitel").get("/next-install")
    assert page.status_code == 200
    text = page.text
    assert '<td id="installs">nothing</td>' in text
    assert 'id="postponed">Your install is postponed while a problem is investigated' in text
    assert "2026.24 is postponed while a problem is investigated" in text
    for leak in ("nimbus", "rolled", "503", "AVA"):
        assert leak.lower() not in text.lower()
    # the wave that reported it is not held back
    nimbus = world.browser("nimbus").get("/next-install").text
    assert 'id="postponed"' not in nimbus
