"""general_release_notes, run for real against the simulator's documentation portals and
notification sink, on both release databases."""

from __future__ import annotations

import time

import pendulum
import pytest
import time_machine

from release_pipeline.models import Change, ChangeType, ReleaseStatus
from release_pipeline.release_calendar import load_calendar

pytestmark = pytest.mark.e2e

DAG = "general_release_notes"
WINDOW = "2026.23-2026.24"
PAGE = f"release-notes/{WINDOW}"


def deploy_release(repo, release_id: str, *titles: str, status=ReleaseStatus.DEPLOYED) -> None:
    """A release as production_release leaves it."""
    train = load_calendar()
    release = train.release_by_id(release_id)
    changes = [
        Change(
            f"CHG-{release_id[-2:]}{n}",
            ChangeType.FEATURE,
            "connectors",
            title,
            f"{title} in AVA.",
            n == 0,
            release.at.subtract(days=1),
            release_id,
        )
        for n, title in enumerate(titles)
    ]
    repo.record_release(
        release, changes, changes_since=train.previous(release).at, changes_until=release.at, actor="test"
    )
    repo.set_release_status(release_id, status, actor="test")


def test_a_window_of_two_releases_is_published_once_everywhere(pipeline):
    deploy_release(pipeline.repo, "2026.23", "SAP connector 4.0", "Vault secrets")
    deploy_release(pipeline.repo, "2026.24", "JSONata mapper")
    run = pipeline.run(DAG, conf={"release_id": "2026.24"})
    states = pipeline.task_states(run)
    assert run.state == "success", states

    vendor_page = pipeline.sim.docs("ava")[PAGE]
    assert vendor_page["title"] == "AVA Integration Platform 2026.23 and 2026.24 release notes"
    for title in ("SAP connector 4.0", "Vault secrets", "JSONata mapper"):
        assert title in vendor_page["markdown"]
    assert vendor_page["markdown"].index("## Breaking changes") < vendor_page["markdown"].index("2026.24 (")

    # OEM docs follow each OEM's instance (oem_delivery): nothing here reaches an OEM
    for oem in ("nimbus", "kestrel", "orbitel"):
        assert pipeline.sim.docs(oem) == {} and pipeline.sim.notifications(oem) == []
    recorded = {(r.audience, r.channel): r.status for r in pipeline.repo.publications(scope_key=WINDOW)}
    assert recorded == {("vendor", "docs_portal"): "published"}

    rerun = pipeline.run(DAG, conf={"release_id": "2026.23"})  # the same window
    assert rerun.state == "success"
    assert pipeline.sim.docs("ava")[PAGE]["revision"] == 1


def test_only_releases_that_reached_production_are_in_the_notes(pipeline):
    deploy_release(pipeline.repo, "2026.23", "Shipped thing")
    deploy_release(pipeline.repo, "2026.24", "Rejected thing", status=ReleaseStatus.QA_REJECTED)
    run = pipeline.run(DAG, conf={"release_id": "2026.24"})
    assert run.state == "success"
    page = pipeline.sim.docs("ava")[PAGE]
    assert "Shipped thing" in page["markdown"] and "Rejected thing" not in page["markdown"]


def test_waits_deferred_until_the_window_is_settled(pipeline):
    """The window's second release is still in QA when the run starts; the wait defers
    and resumes as soon as production_release records it."""
    import threading
    import time

    deploy_release(pipeline.repo, "2026.23", "First")
    train = load_calendar()
    release = train.release_by_id("2026.24")
    pipeline.repo.record_release(
        release,
        [Change("CHG-9", ChangeType.FIX, "x", "Second", "", False, release.at.subtract(days=1))],
        changes_since=train.previous(release).at,
        changes_until=release.at,
        actor="test",
    )

    def settle_later():
        time.sleep(3)
        pipeline.repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="test")

    threading.Thread(target=settle_later, daemon=True).start()
    started = pendulum.now()
    run = pipeline.run(DAG, conf={"release_id": "2026.24"})
    assert run.state == "success"
    assert (pendulum.now() - started).total_seconds() >= 3
    assert "Second" in pipeline.sim.docs("ava")[PAGE]["markdown"]


def test_the_vendor_portal_down_is_retried_and_fails_the_run_telling_no_oem(pipeline):
    deploy_release(pipeline.repo, "2026.23", "A")
    deploy_release(pipeline.repo, "2026.24", "B")
    pipeline.sim.portal_down("ava")
    run = pipeline.run(DAG, conf={"release_id": "2026.24"})
    states = pipeline.task_states(run)
    assert run.state == "failed" and states["publish_general_notes"] == "failed", states
    puts = [r for r in pipeline.sim.state()["requests"] if r["path"] == f"/docs/ava/pages/{PAGE}"]
    assert len(puts) == 3  # the first attempt and two retries
    for oem in ("nimbus", "kestrel", "orbitel"):
        assert pipeline.sim.docs(oem) == {} and pipeline.sim.notifications(oem) == []


# -- a manual run with no parameters (issue 16) --------------------------------------------------
# the clock: after 2026.24 (26 November), before 2026.25
AFTER_2026_24 = pendulum.datetime(2026, 12, 1, 9, tz="UTC")


def test_a_manual_run_without_params_publishes_the_newest_settled_window(pipeline):
    """2026.23 and 2026.24 in production, the releases before them were never cut: the
    run publishes 2026.23-2026.24 at once, not a window of its data interval."""
    deploy_release(pipeline.repo, "2026.23", "SAP connector 4.0")
    deploy_release(pipeline.repo, "2026.24", "JSONata mapper")
    with time_machine.travel(AFTER_2026_24, tick=True):
        run = pipeline.run(DAG)
    states = pipeline.task_states(run)
    assert run.state == "success" and states["publish_general_notes"] == "success", states
    assert {r.scope_key for r in pipeline.repo.publications(kind="general_notes")} == {WINDOW}
    assert "JSONata mapper" in pipeline.sim.docs("ava")[PAGE]["markdown"]


def test_a_manual_run_without_params_and_nothing_settled_in_production_ends_at_once(pipeline):
    train = load_calendar()
    release = train.release_by_id("2026.24")
    pipeline.repo.record_release(
        release,
        [Change("CHG-9", ChangeType.FIX, "x", "In QA", "", False, release.at.subtract(days=1))],
        changes_since=train.previous(release).at,
        changes_until=release.at,
        actor="test",
    )
    started = time.monotonic()
    with time_machine.travel(AFTER_2026_24, tick=True):
        run = pipeline.run(DAG)
    states = pipeline.task_states(run)
    assert states["notes_window"] == "skipped" and states["wait_for_releases"] == "skipped", states
    assert run.state == "success" and time.monotonic() - started < 60
    assert pipeline.repo.publications(kind="general_notes") == [] and pipeline.sim.docs("ava") == {}


def test_a_window_whose_releases_were_never_cut_is_not_waited_for(pipeline):
    """The issue's case, asked for by name: 2026.21 and 2026.22 were never cut while the
    train moved on to 2026.23; the run ends with the reason instead of waiting 7 days
    (and holding the next run of the DAG behind it)."""
    deploy_release(pipeline.repo, "2026.23", "A")
    deploy_release(pipeline.repo, "2026.24", "B")
    started = time.monotonic()
    with time_machine.travel(AFTER_2026_24, tick=True):
        run = pipeline.run(DAG, conf={"release_id": "2026.22"})
    states = pipeline.task_states(run)
    assert states["wait_for_releases"] == "success" and states["publish_general_notes"] == "skipped", states
    assert time.monotonic() - started < 60
    assert pipeline.repo.publications(kind="general_notes") == []

    # the next run is not held: it publishes its window at once
    with time_machine.travel(AFTER_2026_24, tick=True):
        assert pipeline.run(DAG, conf={"release_id": "2026.24"}).state == "success"
    assert {r.scope_key for r in pipeline.repo.publications(kind="general_notes")} == {WINDOW}
