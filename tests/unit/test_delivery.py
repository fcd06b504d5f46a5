from dataclasses import replace

import pendulum
import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.delivery import (
    DeliveryRefused,
    GateVerdict,
    UnknownInstanceVersion,
    aim,
    assess,
    gate_verdict,
    plan_delivery,
)
from release_pipeline.models import ChangeApproval, Decision

KNOWN = {"2026.20", "2026.22", "2026.24"}


def plan(**overrides):
    args = {
        "oem_id": "acme",
        "target": "2026.24",
        "target_status": "deployed",
        "instance_version": "2026.22",
        "recorded_version": "2026.22",
        "known_releases": KNOWN,
        "delta_change_ids": ["CHG-1", "CHG-2"],
    }
    return plan_delivery(**{**args, **overrides})


def test_a_normal_plan():
    result = plan()
    assert (result.installed, result.target, result.change_ids, result.noop) == (
        "2026.22",
        "2026.24",
        ("CHG-1", "CHG-2"),
        False,
    )


def test_already_on_target_is_a_noop():
    assert plan(instance_version="2026.24", recorded_version="2026.24", delta_change_ids=[]).noop


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_status": None}, "release 2026.24 is not in the release database"),
        ({"target_status": "qa_rejected"}, "is 'qa_rejected', only releases deployed"),
        ({"target": "2026.20"}, "2026.20 is older than the installed 2026.22; a downgrade"),
        ({"instance_version": "2026.21"}, "reports version '2026.21', which the release database does not know"),
    ],
)
def test_refusals_name_the_problem(overrides, message):
    with pytest.raises(DeliveryRefused, match="OEM 'acme'") as caught:
        plan(**overrides)
    assert message in str(caught.value)
    # the delivery process tells the flagged instance apart by its class, never by the words
    assert isinstance(caught.value, UnknownInstanceVersion) == ("instance_version" in overrides)


def test_the_instance_is_the_truth_about_a_known_version():
    result = plan(instance_version="2026.20", recorded_version="2026.22")
    assert result.installed == "2026.20"
    assert "recorded '2026.22' but the instance runs '2026.20'" in result.notes[0]


T0 = pendulum.datetime(2030, 3, 7, 10, tz="UTC")  # the test's own clock


def state(change_id, release_id="2026.24", decision=None, comment=None):
    at = T0 if decision else None
    return ChangeApproval(change_id, release_id, decision, "ann" if decision else None, comment, at)


def signoff(*states, production=("2026.22", "2026.23", "2026.24"), aim="2026.24", installed="2026.21"):
    return assess(installed=installed, aim=aim, production=production, states=states)


def test_every_change_approved_reaches_the_aim():
    result = signoff(state("A", decision=Decision.APPROVED), state("B", "2026.22", Decision.APPROVED))
    assert result.complete and result.target == "2026.24" and result.blocking is None


def test_a_rejection_stops_the_target_before_its_release():
    result = signoff(
        state("A", "2026.22", Decision.APPROVED),
        state("B", "2026.23", Decision.REJECTED, "breaks SSO"),
        state("C", "2026.24", Decision.APPROVED),
    )
    assert (result.target, result.rejected, result.complete) == ("2026.22", True, False)
    assert result.reasons() == ["B (release 2026.23) rejected by ann: breaks SSO"]


def test_a_pending_change_stops_the_target_too():
    result = signoff(state("A", "2026.22"), state("C", "2026.24", Decision.APPROVED))
    assert result.target is None and not result.rejected
    assert result.reasons() == ["A (release 2026.22) not signed off"]


def test_changes_of_a_release_that_never_reached_production_ship_with_the_next_and_can_block_it():
    # 2026.23 was rejected by QA: 2026.24 was built from main after it, so its change is
    # carried into 2026.24 (the ledger's rule L2): asked for there, and blocking it
    carried = state("Q", "2026.23")
    result = signoff(
        state("A", "2026.22", Decision.APPROVED),
        carried,
        state("C", "2026.24", Decision.APPROVED),
        production=("2026.22", "2026.24"),
    )
    assert not result.complete and result.target == "2026.22"
    assert result.blocking.release_id == "2026.24" and result.blocking.pending == ("Q",)
    approved = signoff(
        state("A", "2026.22", Decision.APPROVED),
        state("Q", "2026.23", Decision.APPROVED),
        state("C", "2026.24", Decision.APPROVED),
        production=("2026.22", "2026.24"),
    )
    assert approved.complete and approved.target == "2026.24"
    assert approved.change_ids() == ["A", "Q", "C"]


def test_a_change_reverted_in_a_later_release_still_counts_for_a_release_before_the_revert():
    """Seen in a simulated year (seed 52): the revert of W176 came with 2030.18; settling on
    2030.17 (2030.18 not approved) must not take W176 as cancelled, the last look did not."""
    states = (state("W", "2026.23"), replace(state("V", "2026.24", Decision.APPROVED), reverts="W"))
    result = signoff(*states, production=("2026.22", "2026.23", "2026.24"), installed="2026.22")
    assert result.target is None and result.blocking.release_id == "2026.23"
    assert (
        signoff(*states, production=("2026.22", "2026.23", "2026.24"), aim="2026.23", installed="2026.22").target
        is None
    )


def test_a_change_and_its_revert_that_ship_together_are_neither_asked_nor_blocking():
    result = signoff(
        state("A", "2026.22", Decision.APPROVED),
        state("R", "2026.23"),  # reverted before 2026.24's cut
        replace(state("V", "2026.24"), reverts="R"),
        production=("2026.22", "2026.24"),
    )
    assert result.complete and result.target == "2026.24" and "R" not in result.change_ids()


def test_a_production_release_without_changes_is_approved_as_it_stands():
    result = signoff(state("A", "2026.22", Decision.APPROVED), production=("2026.22", "2026.23"), aim="2026.23")
    assert result.complete and result.target == "2026.23"


def test_the_aim_is_the_newest_production_release_of_the_cycle():
    assert aim(["2026.20", "2026.22", "2026.23"], installed="2026.20", cycle_release="2026.22") == "2026.22"
    assert aim(["2026.20"], installed="2026.20", cycle_release="2026.22") is None


SETTLE, DEADLINE = T0.add(hours=12), T0.add(days=21)


@pytest.mark.parametrize(
    ("states", "now", "deadline", "verdict"),
    [
        # sign-off is taken until install day's window opens: a full one settles then
        ((state("A", decision=Decision.APPROVED),), T0, SETTLE, GateVerdict.WAIT),
        ((state("A", decision=Decision.APPROVED),), SETTLE, SETTLE, GateVerdict.SETTLED),
        ((state("A"),), T0, SETTLE, GateVerdict.WAIT),
        ((state("A"),), SETTLE, SETTLE, GateVerdict.DEADLINE),
        # and so does a rejection (the OEM may change its mind until then), whatever is pending
        ((state("A", "2026.22", Decision.REJECTED, "no"), state("B")), T0, SETTLE, GateVerdict.WAIT),
        ((state("A", "2026.22", Decision.REJECTED, "no"), state("B")), SETTLE, SETTLE, GateVerdict.SETTLED),
        ((state("A", "2026.22", Decision.REJECTED, "no"), state("B")), SETTLE, DEADLINE, GateVerdict.SETTLED),
        # install day's window is open: what is approved goes, for every OEM
        ((state("A", "2026.22", Decision.APPROVED), state("B")), SETTLE, DEADLINE, GateVerdict.SETTLED),
        # an OEM that installs when it approves keeps waiting while nothing is installable
        ((state("A", "2026.22"),), SETTLE, DEADLINE, GateVerdict.WAIT),
        ((state("A", "2026.22"),), DEADLINE, DEADLINE, GateVerdict.DEADLINE),
    ],
)
def test_gate_verdicts(states, now, deadline, verdict):
    assert gate_verdict(signoff(*states), now=now, settle_at=SETTLE, deadline=deadline) == verdict


RELEASES = ["2026.22", "2026.23", "2026.24"]


@given(
    decisions=st.lists(
        st.tuples(st.sampled_from(RELEASES), st.sampled_from([None, Decision.APPROVED, Decision.REJECTED])),
        max_size=12,
    ),
    production=st.sets(st.sampled_from(RELEASES), min_size=1),
)
def test_the_target_never_includes_a_change_not_approved(decisions, production):
    states = [
        state(f"C{i}", release, decision, "why" if decision == Decision.REJECTED else None)
        for i, (release, decision) in enumerate(decisions)
    ]
    result = signoff(*states, production=tuple(sorted(production)), aim=max(production))
    target = result.target
    # an instance getting the target runs every change cut up to it, whatever became of
    # the release it was cut into (the ledger's rule L3)
    for change in states:
        if target is not None and change.release_id <= target:
            assert change.decision == Decision.APPROVED
    # and it is the newest such release: the next production release brings a blocker
    later = [r for r in sorted(production) if target is None or r > target]
    if later:
        assert any(
            (target is None or c.release_id > target) and c.release_id <= later[0] and c.decision != Decision.APPROVED
            for c in states
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"target_status": None}, "OEM 'acme': release 2026.24 is not in the release database"),
        (
            {"target_status": "qa_rejected"},
            "OEM 'acme': release 2026.24 is 'qa_rejected', only releases deployed to the vendor production (and "
            "tested there) are delivered",
        ),
        (
            {"target": "2026.20"},
            "OEM 'acme': release 2026.20 is older than the installed 2026.22; a downgrade is not a delivery",
        ),
        (
            {"instance_version": "2026.21"},
            "OEM 'acme': the instance reports version '2026.21', which the release database does not know "
            "(recorded: '2026.22'); flagged, not overwritten: check the instance",
        ),
    ],
)
def test_refusals_are_said_in_full(overrides, message):
    """What the operator reads in the task log and the vendor's alert: the whole sentence."""
    with pytest.raises(DeliveryRefused) as caught:
        plan(**overrides)
    assert str(caught.value) == message


def test_a_plan_names_its_oem_and_a_corrected_record_in_full():
    assert (plan().oem_id, plan().notes) == ("acme", ())
    corrected = plan(oem_id="globex", instance_version="2026.20", recorded_version="2026.22")
    assert corrected.oem_id == "globex"
    assert corrected.notes == ("the release database recorded '2026.22' but the instance runs '2026.20'",)


def test_what_the_gate_says_is_said_in_full():
    """The gate's summary (task log, the delivery's record) and its reasons, word for word."""
    nothing = assess(installed="2026.24", aim=None, production=["2026.24"], states=[])
    assert (nothing.installed, nothing.reasons(), nothing.change_ids()) == ("2026.24", [], [])
    assert nothing.summary() == "nothing newer than 2026.24 has reached production"
    done = signoff(state("A", decision=Decision.APPROVED))
    assert (done.summary(), done.reasons()) == ("every change up to 2026.24 approved", [])
    waiting = signoff(state("B", "2026.22"), state("A", "2026.22"), state("C", "2026.23", Decision.APPROVED))
    assert waiting.reasons() == ["B, A (release 2026.22) not signed off"]
    blocked = signoff(
        state("A", "2026.22", Decision.REJECTED, "breaks SSO"),
        replace(state("B", "2026.22", Decision.REJECTED, "slow"), actor="bob"),
        state("C", "2026.22"),
    )
    assert blocked.summary() == (
        "A (release 2026.22) rejected by ann: breaks SSO; B (release 2026.22) rejected by bob: slow; "
        "C (release 2026.22) not signed off"
    )


def test_the_changes_of_the_installed_release_are_not_asked_again():
    """The instance runs 2026.22 and all its changes: a decision still missing on one of
    them (asked before it was installed by hand, say) blocks nothing newer."""
    result = signoff(
        state("OLD", "2026.22"),
        state("A", "2026.23", Decision.APPROVED),
        state("B", "2026.24", Decision.APPROVED),
        installed="2026.22",
    )
    assert result.complete and result.target == "2026.24" and result.change_ids() == ["A", "B"]


def test_an_assessment_keeps_what_the_instance_runs_and_names_no_approver_without_a_policy():
    """Without a sign-off policy no approver is waited for by name: ``waiting`` and
    ``missing`` stay empty (the forecast and the reminders then name the OEM itself)."""
    result = signoff(state("A", "2026.22"), state("B", "2026.24", Decision.APPROVED))
    assert (result.installed, result.aim) == ("2026.21", "2026.24")
    assert [(r.release_id, r.pending, r.waiting, r.missing) for r in result.releases] == [
        ("2026.22", ("A",), (), ()),
        ("2026.23", (), (), ()),
        ("2026.24", (), (), ()),
    ]
