"""Fixtures of the adapter tests that drive triggers on a real release database."""

from __future__ import annotations

import pytest

from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from simulator.connections import as_environment, release_db_connection

GATE_OEMS = ("acme", "beta", "gamma")


def approve_carried(repo, oem_ids) -> None:
    """Every OEM of ``oem_ids`` approves C-2026.23, the change 2026.24 carries."""
    for oem_id in oem_ids:
        repo.record_decision(oem_id=oem_id, change_id="C-2026.23", decision=Decision.APPROVED, actor="a", channel="cli")


@pytest.fixture
def released(repo, calendar, release_db_url, monkeypatch):
    """The ``release_db`` connection on a database where 2026.22 and 2026.24 reached
    production (2026.24 with one change, C-24, asked of every OEM of ``GATE_OEMS``) and
    2026.23 was rejected by QA: its change C-2026.23 is carried into 2026.24 (the
    ledger's rule L2), asked with it, and already approved by every OEM of ``GATE_OEMS``,
    so C-24 is what the gates wait on."""
    for release_id, status in (("2026.22", ReleaseStatus.DEPLOYED), ("2026.23", ReleaseStatus.QA_REJECTED)):
        release = calendar.release_by_id(release_id)
        change = Change(f"C-{release_id}", ChangeType.FIX, "core", "x", "", False, release.at, release_id)
        repo.record_release(
            release, [change], changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
        )
        repo.set_release_status(release_id, status, actor="test")
    release = calendar.release_by_id("2026.24")
    change = Change("C-24", ChangeType.FIX, "core", "x", "", False, release.at, "2026.24")
    repo.record_release(
        release, [change], changes_since=calendar.previous(release).at, changes_until=release.at, actor="t"
    )
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals("2026.24", GATE_OEMS)
    approve_carried(repo, GATE_OEMS)
    for name, value in as_environment({"release_db": release_db_connection(release_db_url)}).items():
        monkeypatch.setenv(name, value)
    return repo
