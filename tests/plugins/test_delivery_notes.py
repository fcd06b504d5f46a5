"""The notes an OEM gets with a delivery (its message and its docs portal) cover every
release its instance newly runs, not only the target: 2026.22 -> 2026.24 brings 2026.23's
changes too."""

from __future__ import annotations

import pytest

from release_pipeline.registry import load_registry
from release_train_airflow import resources
from release_train_airflow.delivery import notes_since
from simulator.connections import as_environment, release_db_connection
from tests.builders import DeliveryWorld


@pytest.fixture
def world(repo, calendar, release_db_url, monkeypatch):
    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    resources.reset_caches()
    yield DeliveryWorld(repo, calendar)
    resources.reset_caches()


def test_the_notes_cover_every_release_the_instance_newly_runs(world):
    notes = notes_since(load_registry().get("nimbus"), "2026.22", "2026.24")
    for text in (notes.markdown, notes.html):
        assert "2026.23" in text and "2026.24" in text
        assert all(f"Title of {c}" in text for c in ("CHG-1", "CHG-2", "CHG-3"))
