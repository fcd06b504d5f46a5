"""Fixtures of the domain tests."""

import pytest

from release_pipeline.cli import main
from tests.builders import DeliveryWorld


@pytest.fixture
def cli(release_db_url, capsys):
    """``cli(*argv)`` runs ``release-train --db-url <the test's database> *argv``; returns
    (exit code, stdout, stderr)."""

    def run(*argv):
        code = main(["--db-url", release_db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def world(repo, calendar) -> DeliveryWorld:
    """acme's delivery of 2026.24 on install day, every change approved (tests.builders)."""
    world = DeliveryWorld(repo, calendar)
    world.decide("approved")
    return world
