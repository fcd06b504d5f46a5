"""The release database repository, on SQLite and on PostgreSQL (see conftest)."""

import datetime as dt

import pendulum
import pytest

from release_pipeline.models import (
    Change,
    ChangeType,
    Decision,
    DeliveryStatus,
    FeedbackCategory,
    ReleaseDbError,
    ReleaseStatus,
)
from tests.builders import MERGED, cut


def test_record_release_is_idempotent_and_keeps_everything(repo, calendar):
    assert cut(repo, calendar, "2026.24", "AVA-1", "AVA-2") is True
    assert cut(repo, calendar, "2026.24", "AVA-2", "AVA-1") is False  # a rerun stores nothing twice
    row = repo.release("2026.24")
    assert row.status == ReleaseStatus.CUT
    assert row.release_at == calendar.release_by_id("2026.24").at
    assert row.release_at.tzinfo is not None
    assert [c.id for c in repo.changes_of(["2026.24"])] == ["AVA-1", "AVA-2"]
    assert repo.changes_of(["2026.24"])[0].merged_at == MERGED
    assert [e.event for e in repo.release_events("2026.24")] == ["cut"]


def test_record_release_refuses_conflicts_and_writes_nothing(repo, calendar):
    cut(repo, calendar, "2026.23", "AVA-1")
    with pytest.raises(ReleaseDbError, match="change 'AVA-1' already belongs to release 2026.23"):
        cut(repo, calendar, "2026.24", "AVA-2", "AVA-1")
    assert repo.release("2026.24") is None
    assert repo.changes_of(["2026.24"]) == []
    with pytest.raises(ReleaseDbError, match="already recorded with other changes"):
        cut(repo, calendar, "2026.23", "AVA-1", "AVA-9")
    with pytest.raises(ReleaseDbError, match="'AVA-5' is listed twice"):
        cut(repo, calendar, "2026.25", "AVA-5", "AVA-5")


def test_empty_release_is_recorded_with_its_reason(repo, calendar):
    cut(repo, calendar, "2026.24")
    row = repo.release("2026.24")
    assert row.status == ReleaseStatus.EMPTY
    assert "no changes" in row.status_reason


def test_status_changes_are_logged(repo, calendar):
    cut(repo, calendar, "2026.24", "AVA-1")
    repo.set_release_status("2026.24", ReleaseStatus.QA_REJECTED, actor="qa.lead", reason="login broken")
    assert repo.release("2026.24").status_reason == "login broken"
    assert [(e.event, e.actor) for e in repo.release_events("2026.24")][-1] == ("qa_rejected", "qa.lead")
    with pytest.raises(ReleaseDbError, match="'2099.01' is not recorded"):
        repo.set_release_status("2099.01", ReleaseStatus.DEPLOYED, actor="x")


def test_an_instance_lock_has_one_holder_until_released_or_expired(repo):
    hour = dt.timedelta(hours=1)
    assert repo.acquire_instance_lock("acme", "run-1#1", ttl=hour) is None
    assert repo.acquire_instance_lock("acme", "run-1#1", ttl=hour) is None  # the holder renews it
    assert repo.acquire_instance_lock("acme", "run-2#1", ttl=hour) == "run-1#1"
    assert repo.acquire_instance_lock("globex", "run-2#1", ttl=hour) is None  # one lock per instance
    repo.release_instance_lock("acme", "run-1#1")
    assert repo.acquire_instance_lock("acme", "run-2#1", ttl=-hour) is None  # a holder that died...
    assert repo.acquire_instance_lock("acme", "run-3#1", ttl=hour) is None  # ...loses it at expiry


def test_changes_between_releases(repo, calendar):
    cut(repo, calendar, "2026.22", "AVA-1")
    cut(repo, calendar, "2026.23", "AVA-2")
    cut(repo, calendar, "2026.24", "AVA-3", "AVA-4")
    assert [c.id for c in repo.changes_between("2026.22", "2026.24")] == ["AVA-2", "AVA-3", "AVA-4"]
    assert [c.id for c in repo.changes_between(None, "2026.22")] == ["AVA-1"]


def test_approvals_are_append_only_and_the_latest_event_wins(repo, calendar):
    cut(repo, calendar, "2026.23", "AVA-1")
    cut(repo, calendar, "2026.24", "AVA-2", "AVA-3")
    assert repo.request_approvals("2026.23", ["acme", "globex"]) == 2
    assert repo.request_approvals("2026.24", ["acme", "globex"]) == 4
    assert repo.request_approvals("2026.24", ["acme", "globex"]) == 0  # rerun: nothing new
    repo.record_decision(
        oem_id="acme",
        change_id="AVA-2",
        decision=Decision.REJECTED,
        actor="ann",
        channel="portal",
        comment="breaks our SSO",
    )
    repo.record_decision(
        oem_id="acme",
        change_id="AVA-2",
        decision=Decision.APPROVED,
        actor="ann",
        channel="portal",
        comment="fixed in test env",
    )
    repo.record_decision(
        oem_id="acme",
        change_id="AVA-3",
        decision=Decision.REJECTED,
        actor="cs.bob",
        channel="cli",
        comment="on behalf",
        recorded_by="cs.bob",
    )
    repo.record_decision(oem_id="globex", change_id="AVA-2", decision=Decision.APPROVED, actor="gil", channel="portal")
    # the gate reads every change cut up to the release (an instance getting it runs them
    # all, the ledger's rule L3); whether it may be installed is production_release_ids'
    assert {s.change_id for s in repo.approval_states("acme", "2026.22", "2026.24")} == {"AVA-1", "AVA-2", "AVA-3"}
    assert repo.production_release_ids("2026.22", "2026.24") == []
    for release_id in ("2026.23", "2026.24"):
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
    assert repo.production_release_ids("2026.22", "2026.24") == ["2026.23", "2026.24"]
    states = {s.change_id: s for s in repo.approval_states("acme", "2026.22", "2026.24")}
    assert set(states) == {"AVA-1", "AVA-2", "AVA-3"}
    assert states["AVA-1"].decision is None
    assert (states["AVA-2"].decision, states["AVA-2"].comment) == (Decision.APPROVED, "fixed in test env")
    assert states["AVA-3"].decision == Decision.REJECTED
    assert [s.change_id for s in repo.approval_states("acme", "2026.23", "2026.24")] == ["AVA-2", "AVA-3"]
    assert len(repo.approval_history("acme", "AVA-2")) == 2


def test_decisions_need_a_request_and_rejections_a_reason(repo, calendar):
    cut(repo, calendar, "2026.24", "AVA-1")
    repo.request_approvals("2026.24", ["acme"])
    with pytest.raises(ReleaseDbError, match="'globex' has no sign-off request for change 'AVA-1'"):
        repo.record_decision(oem_id="globex", change_id="AVA-1", decision=Decision.APPROVED, actor="x", channel="cli")
    with pytest.raises(ReleaseDbError, match="needs a comment"):
        repo.record_decision(oem_id="acme", change_id="AVA-1", decision=Decision.REJECTED, actor="x", channel="cli")
    assert repo.approval_history("acme", "AVA-1") == []


def test_deliveries_and_installed_versions(repo, calendar):
    cut(repo, calendar, "2026.22", "AVA-1")
    cut(repo, calendar, "2026.24", "AVA-2")
    with pytest.raises(ReleaseDbError, match="'2026.30' is not recorded"):
        repo.set_installed_version("acme", "2026.30")
    repo.set_installed_version("acme", "2026.22")
    repo.upsert_delivery("acme", "2026.24", status=DeliveryStatus.WAITING, from_release_id="2026.22", run_id="r1")
    repo.upsert_delivery("acme", "2026.24", status=DeliveryStatus.INSTALLED, finished_at=pendulum.now("UTC"))
    row = repo.delivery("acme", "2026.24")
    assert (row.status, row.from_release_id, row.run_id) == ("installed", "2026.22", "r1")
    assert len(repo.deliveries("acme")) == 1
    repo.set_installed_version("acme", "2026.24")
    installed = repo.installed_version("acme")
    assert (installed.release_id, installed.previous_release_id) == ("2026.24", "2026.22")
    with pytest.raises(TypeError, match="unknown delivery fields"):
        repo.upsert_delivery("acme", "2026.24", status=DeliveryStatus.FAILED, colour="red")


def test_side_effect_ledger_tells_done_from_not_done(repo):
    first = repo.claim_side_effect("deploy:2026.24", "deploy")
    assert (first.done, first.attempt) == (False, 1)
    retry = repo.claim_side_effect("deploy:2026.24", "deploy")  # the first attempt died midway
    assert (retry.done, retry.attempt) == (False, 2)
    repo.finish_side_effect("deploy:2026.24", result={"deployment": "dep-1"})
    done = repo.claim_side_effect("deploy:2026.24", "deploy")
    assert (done.done, done.result) == (True, {"deployment": "dep-1"})
    with pytest.raises(ReleaseDbError, match="never claimed"):
        repo.finish_side_effect("nope")


def test_publications_upsert_by_scope_audience_and_channel(repo):
    for status in ("failed", "published"):
        repo.record_publication(
            kind="general_notes",
            scope_key="2026.23-2026.24",
            audience="vendor",
            channel="docs_portal",
            status=status,
            location="/docs/ava/x",
        )
    rows = repo.publications(kind="general_notes")
    assert [(r.audience, r.status) for r in rows] == [("vendor", "published")]


def test_feedback_roadmap_and_tokens(repo):
    repo.record_feedback(
        oem_id="acme",
        category=FeedbackCategory.REQUIRED_COMPONENT,
        title=" SAP S/4 connector ",
        body="we need it",
        submitted_by="ann",
        channel="portal",
    )
    with pytest.raises(ValueError):
        repo.record_feedback(oem_id="acme", category="wishlist", title="x", body="", submitted_by="a", channel="cli")
    assert [f.title for f in repo.feedback(oem_id="acme")] == ["SAP S/4 connector"]
    assert repo.record_feedback_request("acme", "2026-W48") is True
    assert repo.record_feedback_request("acme", "2026-W48") is False
    snapshot = repo.save_roadmap_snapshot(
        horizon=["2026.25", "2026.26"], items=[{"id": "x", "score": 3.5}], changes={"added": ["x"]}, run_id="r"
    )
    assert repo.latest_roadmap_snapshot().id == snapshot
    assert repo.latest_roadmap_snapshot().items == [{"id": "x", "score": 3.5}]
    token_id = repo.add_portal_token(
        oem_id="acme", token_hash="h" * 64, label="ann", created_by="ops", expires_at=MERGED.add(days=90)
    )
    assert repo.active_token("h" * 64).oem_id == "acme"
    assert repo.revoke_portal_token(token_id) is True
    assert repo.revoke_portal_token(token_id) is False
    assert repo.active_token("h" * 64) is None


def test_naive_datetimes_are_refused(repo, calendar):
    release = calendar.release_by_id("2026.24")
    naive = Change("AVA-1", ChangeType.FIX, "x", "t", "d", False, MERGED.naive())
    with pytest.raises(Exception, match="naive datetime"):
        repo.record_release(release, [naive], changes_since=None, changes_until=None, actor="t")
    assert repo.release("2026.24") is None


def test_the_signoff_stores_reads_keep_to_their_oem_and_release_in_order(repo, calendar):
    """Each read of the sign-off store returns what it names, nothing of another OEM,
    release or change, in the order its callers rely on (the gate's span is ``(after,
    until]``; histories are oldest first)."""
    cut(repo, calendar, "2026.22", "AVA-0")
    cut(repo, calendar, "2026.23", "AVA-9")  # change ids that do not sort as their releases
    cut(repo, calendar, "2026.24", "AVA-3", "AVA-2")
    for release_id in ("2026.22", "2026.23", "2026.24"):
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals("2026.24", ["initech"])  # asked first: the reads sort, not the inserts
    for release_id in ("2026.24", "2026.23", "2026.22"):
        repo.request_approvals(release_id, ["globex", "acme"])

    assert repo.requested_release_ids("acme", after="2026.22", until="2026.24") == {"2026.23", "2026.24"}
    assert repo.requested_release_ids("acme", after="2026.23", until="2026.23") == set()
    assert repo.requested_release_ids("initech", after="2026.21", until="2026.24") == {"2026.24"}
    assert repo.requested_release_ids("hooli", after="2026.21", until="2026.24") == set()
    assert [(r.oem_id, r.release_id, r.change_id) for r in repo.approval_requests("acme")] == [
        ("acme", "2026.22", "AVA-0"),
        ("acme", "2026.23", "AVA-9"),
        ("acme", "2026.24", "AVA-2"),
        ("acme", "2026.24", "AVA-3"),
    ]
    assert [r.change_id for r in repo.approval_requests("acme", "2026.24")] == ["AVA-2", "AVA-3"]
    assert [r.oem_id for r in repo.change_requests("AVA-2", ["acme", "initech", "hooli"])] == ["acme", "initech"]

    def decide(oem_id, change_id, decision, approver=None, comment=None):
        return repo.record_decision(
            oem_id=oem_id, change_id=change_id, decision=decision, actor=f"{oem_id}-{approver}", channel="cli",
            comment=comment, approver=approver,
        )  # fmt: skip

    early = decide("acme", "AVA-3", Decision.APPROVED)  # decision order is not change order
    first = decide("acme", "AVA-2", Decision.REJECTED, "Ann", comment="no")
    second = decide("globex", "AVA-2", Decision.APPROVED)
    third = decide("acme", "AVA-2", Decision.APPROVED, "Bob")  # nor approver-name order
    fourth = decide("acme", "AVA-2", Decision.APPROVED, "Ann")  # on top of Ann's own latest, not Bob's
    assert [e.id for e in repo.change_decisions("AVA-2", ["acme", "initech"])] == [first, third, fourth]
    assert [e.id for e in repo.approval_history("acme", "AVA-2")] == [first, third, fourth]
    assert [e.id for e in repo.change_decisions("AVA-2", ["globex"])] == [second]
    assert [(e.change_id, e.id) for e in repo.signoff_record("acme", "2026.24")] == [
        ("AVA-3", early),
        ("AVA-2", first),
        ("AVA-2", third),
        ("AVA-2", fourth),
    ]
    # the portal's read: each approver's latest per requested change, in release, change, decision order
    assert {r.oem_id for r in repo.signoff_states("acme")} == {"acme"}
    assert [(r.release_id, r.change_id, r.approver, r.event_id) for r in repo.signoff_states("acme")] == [
        ("2026.22", "AVA-0", None, None),
        ("2026.23", "AVA-9", None, None),
        ("2026.24", "AVA-2", "Bob", third),
        ("2026.24", "AVA-2", "Ann", fourth),
        ("2026.24", "AVA-3", "", early),
    ]
    assert [e.change_id for e in repo.signoff_record("acme", "2026.23")] == []
    # the status matrix's read: each approver's latest, of the OEMs asked for, in OEM, release, change order
    votes = [(v.oem_id, v.release_id, v.change_id, v.approver, v.decision) for v in repo.signoff_votes(["acme"])]
    assert votes == [
        ("acme", "2026.22", "AVA-0", None, None),
        ("acme", "2026.23", "AVA-9", None, None),
        ("acme", "2026.24", "AVA-2", "Bob", "approved"),
        ("acme", "2026.24", "AVA-2", "Ann", "approved"),
        ("acme", "2026.24", "AVA-3", "", "approved"),
    ]
    assert [v.oem_id for v in repo.signoff_votes()] == ["acme"] * 5 + ["globex"] * 4 + ["initech"] * 2


def test_the_gates_reads_keep_to_their_span(repo, calendar):
    """``(after, until]``: neither the installed release nor one past the target; only
    releases that reached production are installable, oldest first; the gate's states in
    release, change and decision order, each with the change it reverts."""
    from dataclasses import replace

    from tests.builders import change

    ids = {"2026.22": "AVA-D", "2026.23": "AVA-C", "2026.24": "AVA-B", "2026.25": "AVA-A"}  # sorting backwards
    for release_id in ("2026.25", "2026.23", "2026.22", "2026.24"):  # recorded out of order
        release = calendar.release_by_id(release_id)
        made = change(ids[release_id])
        if release_id == "2026.25":
            made = replace(made, reverts="AVA-D")
        repo.record_release(
            release, [made], changes_since=calendar.previous(release).at, changes_until=release.at, actor="test"
        )
    for release_id in ("2026.25", "2026.22", "2026.24"):
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
    repo.set_release_status("2026.23", ReleaseStatus.QA_REJECTED, actor="qa.lead", reason="login broken")
    assert repo.production_release_ids("2026.22", "2026.24") == ["2026.24"]
    assert repo.production_release_ids("2026.21", "2026.25") == ["2026.22", "2026.24", "2026.25"]
    assert repo.production_release_ids("2026.25", "2026.30") == []
    repo.request_approvals("2026.24", ["acme"])
    for approver in ("Bob", "Ann"):  # Bob first: decision order is not name order
        repo.record_decision(
            oem_id="acme", change_id="AVA-B", decision=Decision.APPROVED, actor=approver, channel="cli",
            approver=approver,
        )  # fmt: skip
    states = [
        (s.change_id, s.release_id, s.reverts, s.approver) for s in repo.approval_states("acme", "2026.22", "2026.24")
    ]
    assert states == [
        ("AVA-C", "2026.23", None, None),
        ("AVA-B", "2026.24", None, "Bob"),
        ("AVA-B", "2026.24", None, "Ann"),
    ]
    assert [(s.change_id, s.reverts) for s in repo.approval_states("acme", "2026.24", "2026.25")] == [
        ("AVA-A", "AVA-D")
    ]
    assert [s.change_id for s in repo.approval_states("acme", None, "2026.23")] == ["AVA-D", "AVA-C"]
