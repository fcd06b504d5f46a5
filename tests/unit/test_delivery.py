import pendulum
import pytest

from release_pipeline.db.repository import ChangeApproval
from release_pipeline.delivery import DeliveryRefused, GateOutcome, decide_gate, plan_delivery
from release_pipeline.models import Decision

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


def test_the_instance_is_the_truth_about_a_known_version():
    result = plan(instance_version="2026.20", recorded_version="2026.22")
    assert result.installed == "2026.20"
    assert "recorded '2026.22' but the instance runs '2026.20'" in result.notes[0]


def state(change_id, decision=None, comment=None):
    at = pendulum.now("UTC") if decision else None
    return ChangeApproval(change_id, "2026.24", decision, "ann" if decision else None, comment, at)


def test_gate_needs_every_change_approved():
    assert decide_gate([state("A", Decision.APPROVED), state("B", Decision.APPROVED)]).outcome == GateOutcome.APPROVED
    pending = decide_gate([state("A", Decision.APPROVED), state("B")])
    assert (pending.outcome, pending.pending) == (GateOutcome.PENDING, ("B",))


def test_one_rejection_ends_the_wait_at_once():
    decision = decide_gate([state("A"), state("B", Decision.REJECTED, "breaks SSO"), state("C", Decision.APPROVED)])
    assert decision.outcome == GateOutcome.REJECTED
    assert decision.summary() == "B rejected by ann: breaks SSO"
