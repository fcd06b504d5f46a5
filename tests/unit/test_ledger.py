"""The ledger (``release_pipeline.ledger``, ``release_pipeline.cut``): cuts are continuous,
a recorded release is never recorded again, carried changes ship with their carrier, and a
change and its revert that arrive together cancel out."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.cut import LATE_CHANGES, TrainMovedOn, cut, cut_span
from release_pipeline.ledger import cancelled, carrier
from release_pipeline.models import Change, ChangeType, ReleaseStatus


def merged_world(calendar):
    """Changes merged a day after each release from 2026.22 to 2026.26, one per release
    window (``CHG-<rank>`` merged in the window that ends with release ``2026.<rank>``)."""
    merges = []
    for rank in range(22, 27):
        before = calendar.release_by_id(f"2026.{rank}")
        merged = calendar.previous(before).at.add(days=1)
        merges.append(Change(f"CHG-{rank}", ChangeType.FIX, "core", f"Fix {rank}", "", False, merged))
    asked = []

    def feed(since, until):
        asked.append((since, until))
        return [c for c in merges if since <= c.merged_at < until]

    return merges, feed, asked


def test_a_cut_takes_everything_since_the_previous_cut_releases_never_cut_included(repo, calendar):
    _, feed, asked = merged_world(calendar)
    repo.record_baseline_release(calendar.release_by_id("2026.22"), actor="t", reason="instances run it")
    # 2026.23 and 2026.24 were never cut (the scheduler was down): 2026.25's cut takes their changes
    assert cut(repo, calendar, calendar.release_by_id("2026.25"), feed, actor="t")
    assert [c.id for c in repo.changes_of(["2026.25"])] == ["CHG-23", "CHG-24", "CHG-25"]
    stored = repo.release("2026.25")
    assert (stored.changes_since, stored.changes_until) == (
        calendar.release_by_id("2026.22").at,
        calendar.release_by_id("2026.25").at,
    )
    assert len(asked) == 1  # the feed once per cut
    # the train moved on: 2026.24 is never cut after 2026.25
    with pytest.raises(TrainMovedOn, match="2026.24 was never cut and the train moved on: 2026.25 is recorded"):
        cut_span(repo, calendar, calendar.release_by_id("2026.24"))


def test_a_rejected_release_does_not_move_the_next_cut_back_and_its_changes_are_carried(repo, calendar):
    _, feed, _ = merged_world(calendar)
    repo.record_baseline_release(calendar.release_by_id("2026.22"), actor="t", reason="instances run it")
    cut(repo, calendar, calendar.release_by_id("2026.23"), feed, actor="t")
    repo.set_release_status("2026.23", ReleaseStatus.QA_REJECTED, actor="qa")
    cut(repo, calendar, calendar.release_by_id("2026.24"), feed, actor="t")
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="t")
    assert [c.id for c in repo.changes_of(["2026.24"])] == ["CHG-24"]
    # what 2026.24 ships over the production release before it: its own and the carried change
    assert [(c.id, c.release_id) for c in repo.changes_shipped_by("2026.24")] == [
        ("CHG-23", "2026.23"),
        ("CHG-24", "2026.24"),
    ]
    assert repo.request_approvals("2026.24", ["acme"]) == 2
    assert {(r.change_id, r.release_id) for r in repo.approval_requests("acme")} == {
        ("CHG-23", "2026.23"),
        ("CHG-24", "2026.24"),
    }


def test_a_recorded_release_is_never_recorded_again_and_late_changes_go_into_the_next_cut(repo, calendar):
    merges, feed, asked = merged_world(calendar)
    repo.record_baseline_release(calendar.release_by_id("2026.22"), actor="t", reason="instances run it")
    release = calendar.release_by_id("2026.23")
    late = Change("CHG-LATE", ChangeType.FIX, "core", "Late", "", False, merges[1].merged_at.add(hours=1))
    assert cut(repo, calendar, release, feed, actor="t")
    merges.append(late)  # the feed now reports a change it did not report at the cut
    assert not cut(repo, calendar, release, feed, actor="t")  # a rerun: the record holds
    assert [c.id for c in repo.changes_of(["2026.23"])] == ["CHG-23"]
    [event] = [e for e in repo.release_events("2026.23") if e.event == LATE_CHANGES]
    assert "CHG-LATE" in event.detail and "they go into the next cut" in event.detail
    assert cut(repo, calendar, calendar.release_by_id("2026.24"), feed, actor="t")
    assert [c.id for c in repo.changes_of(["2026.24"])] == ["CHG-24", "CHG-LATE"]
    assert len(asked) == 3  # the cut, the rerun, the next cut


# -- the pure rules ----------------------------------------------------------------------------
def test_a_change_and_its_revert_cancel_and_a_revert_of_a_revert_brings_it_back():
    assert cancelled({"A": None, "B": "A"}) == {"A", "B"}
    assert cancelled({"B": "A"}) == set()  # A is already run: the revert is a change like any other
    assert cancelled({"A": None, "B": "A", "C": "B"}) == {"A", "B"}
    assert cancelled({"A": None, "B": "A", "C": "B", "D": "C"}) == {"A", "B", "C", "D"}


IDS = [f"2026.{n}" for n in range(20, 30)]


@given(st.sets(st.sampled_from(IDS)), st.sampled_from(IDS))
def test_a_carrier_is_the_first_production_release_at_or_after_the_change(production, release_id):
    found = carrier(release_id, production)
    later = sorted(p for p in production if p >= release_id)
    assert found == (later[0] if later else None)


@given(st.lists(st.integers(0, 15), min_size=1, max_size=16))
def test_what_cancels_out_is_what_replaying_the_merges_leaves_out(targets):
    """Change ``n`` reverts change ``targets[n]`` when that is an earlier one (each reverted
    once): replaying the merges in order leaves exactly what ``cancelled`` does not drop."""
    reverts: dict[str, str | None] = {}
    taken: set[int] = set()
    for n, target in enumerate(targets):
        ok = target < n and target not in taken
        taken |= {target} if ok else set()
        reverts[f"C{n:02d}"] = f"C{target:02d}" if ok else None
    kept: list[str] = []
    for change_id, target in reverts.items():
        if target in kept:
            kept.remove(target)
        else:
            kept.append(change_id)
    assert set(reverts) - cancelled(reverts) == set(kept)


def test_the_assessment_of_a_change_reverted_with_it_holds_nothing(repo, calendar):
    merges, feed, _ = merged_world(calendar)
    repo.record_baseline_release(calendar.release_by_id("2026.22"), actor="t", reason="instances run it")
    merges.append(
        replace(
            merges[1], id="CHG-REVERT", title="Revert", reverts="CHG-23", merged_at=merges[1].merged_at.add(hours=2)
        )
    )
    cut(repo, calendar, calendar.release_by_id("2026.23"), feed, actor="t")
    repo.set_release_status("2026.23", ReleaseStatus.DEPLOYED, actor="t")
    assert repo.changes_shipped_by("2026.23") == []
    assert repo.request_approvals("2026.23", ["acme"]) == 0
