"""Sign-off policies as pure decisions (``signoff_policy.verdict``) and as validated
config: quorum edge cases, rejections, overrides, approvers removed from a policy."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.registry import load_registry
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy, verdict

_ids = itertools.count(1)


@dataclass(frozen=True)
class Vote:
    approver: str | None
    decision: str | None
    actor: str = "someone"
    comment: str | None = None
    decided_at: dt.datetime | None = None
    event_id: int | None = None


def vote(approver, decision, comment=None):
    """Each vote newer than the one before."""
    return Vote(approver, decision, approver or "someone", comment, None, next(_ids))


def policy(quorum=1, require_roles=(), **approvers) -> SignoffPolicy:
    return SignoffPolicy(
        approvers=[{"name": name, "role": role} for name, role in approvers.items()],
        quorum=quorum,
        require_roles=list(require_roles),
    )


QA_PRODUCT_QA = {"ann": "qa", "pat": "product", "sam": "qa"}


def test_two_of_three_needs_two_approvals():
    two_of_three = policy(2, **QA_PRODUCT_QA)
    one = verdict(two_of_three, [vote("ann", "approved")])
    assert (one.state, one.needed, [a.name for a in one.missing]) == ("pending", 1, ["pat", "sam"])
    assert one.waiting_for() == "1 more approval of pat (product), sam (qa)"
    two = verdict(two_of_three, [vote("ann", "approved"), vote("sam", "approved")])
    assert two.state == "approved" and [v.approver for v in two.approvals] == ["ann", "sam"]


def test_a_required_role_is_waited_for_even_when_the_quorum_is_met_by_other_roles():
    needs_product = policy(2, ["product"], **QA_PRODUCT_QA)
    qa_only = verdict(needs_product, [vote("ann", "approved"), vote("sam", "approved")])
    assert (qa_only.state, qa_only.needed, qa_only.missing_roles) == ("pending", 0, ("product",))
    assert qa_only.waiting_for() == "an approval by a product approver (pat)"
    with_product = verdict(needs_product, [vote("ann", "approved"), vote("sam", "approved"), vote("pat", "approved")])
    assert with_product.state == "approved"


def test_one_rejection_blocks_whatever_the_others_approved():
    two_of_three = policy(2, **QA_PRODUCT_QA)
    blocked = verdict(
        two_of_three, [vote("ann", "approved"), vote("sam", "approved"), vote("pat", "rejected", "breaks SSO")]
    )
    assert blocked.state == "rejected" and [v.approver for v in blocked.rejections] == ["pat"]


def test_a_rejection_ends_when_the_person_who_rejected_approves():
    both = policy(2, ann="qa", pat="product")
    # each approver's LATEST decision is what the database hands over
    assert verdict(both, [vote("ann", "approved"), vote("pat", "approved")]).state == "approved"
    # should a caller pass a person's history, their latest still wins
    history = [vote("pat", "rejected", "no"), vote("ann", "approved"), vote("pat", "approved")]
    assert verdict(both, history).state == "approved"


def test_an_approval_by_someone_else_does_not_lift_a_rejection():
    two_of_three = policy(2, **QA_PRODUCT_QA)
    still = verdict(two_of_three, [vote("pat", "rejected", "no"), vote("ann", "approved"), vote("sam", "approved")])
    assert still.state == "rejected"


def test_a_staff_override_lifts_the_rejection_and_the_quorum_still_decides():
    two_of_three = policy(2, **QA_PRODUCT_QA)
    overridden = [vote("pat", "overridden", "contract says so"), vote("ann", "approved")]
    lifted = verdict(two_of_three, overridden)
    assert (lifted.state, lifted.needed) == ("pending", 1)  # pat's rejection no longer blocks, nor counts
    assert verdict(two_of_three, [*overridden, vote("sam", "approved")]).state == "approved"
    # a new rejection after the override blocks again
    assert verdict(two_of_three, [vote("pat", "rejected", "again"), vote("ann", "approved")]).state == "rejected"


def test_an_approver_removed_from_the_policy_no_longer_counts_either_way():
    """Decided and documented (signoff_policy's docstring, README): only the approvers the
    policy names now speak for the OEM, so a removed approver's approval stops counting
    toward the quorum, and their rejection stops blocking."""
    votes = [vote("ann", "approved"), vote("pat", "approved")]
    assert verdict(policy(2, ann="qa", pat="product"), votes).state == "approved"
    without_pat = policy(2, ann="qa", sam="qa")  # pat left while the release waits
    after = verdict(without_pat, votes)
    assert (after.state, after.needed, [a.name for a in after.missing]) == ("pending", 1, ["sam"])
    assert [v.approver for v in after.ignored] == ["pat"]
    rejected_by_pat = [vote("ann", "approved"), vote("pat", "rejected", "no")]
    assert verdict(policy(1, ann="qa"), rejected_by_pat).state == "approved"


def test_decisions_without_an_approver_do_not_count_under_a_named_policy():
    assert verdict(policy(1, ann="qa"), [vote(None, "approved")]).state == "pending"


def test_the_default_policy_is_the_latest_decision_by_anyone():
    assert verdict(DEFAULT_POLICY, []).state == "pending"
    assert verdict(DEFAULT_POLICY, [Vote(None, None)]).state == "pending"  # the outer join's "no decision" row
    assert verdict(DEFAULT_POLICY, [vote(None, "rejected", "no"), vote(None, "approved")]).state == "approved"
    assert verdict(DEFAULT_POLICY, [vote(None, "approved"), vote(None, "rejected", "no")]).state == "rejected"
    assert verdict(DEFAULT_POLICY, [vote(None, "rejected", "no"), vote(None, "overridden", "ok")]).state == "pending"
    assert verdict(DEFAULT_POLICY, [vote(None, "approved")]).waiting_for() is None
    assert DEFAULT_POLICY.describe() == "one approval by anyone of the OEM"


def test_names_match_case_insensitively_and_describe_says_who():
    two = policy(2, ["product"], **QA_PRODUCT_QA)
    assert two.approver("ANN").name == "ann" and two.approver("bob") is None
    assert two.describe() == "2 of ann (qa), pat (product), sam (qa), including product"
    both = policy(2, ["qa", "product"], **QA_PRODUCT_QA)
    assert both.describe() == "2 of ann (qa), pat (product), sam (qa), including qa and product"


NAMES = ["ann", "pat", "sam", "kim"]


@st.composite
def policies_and_votes(draw):
    roles = draw(st.lists(st.sampled_from(["qa", "product", "legal"]), min_size=1, max_size=4))
    approvers = dict(zip(NAMES, roles, strict=False))
    quorum = draw(st.integers(1, len(approvers)))
    required = draw(st.sets(st.sampled_from(sorted(set(approvers.values()))), max_size=quorum))
    chosen = policy(quorum, sorted(required), **approvers)
    history = draw(
        st.lists(
            st.tuples(st.sampled_from([*NAMES, None, "gone"]), st.sampled_from(["approved", "rejected", "overridden"])),
            max_size=12,
        )
    )
    return chosen, [vote(who, what, "why") for who, what in history]


@given(policies_and_votes())
def test_a_change_is_never_approved_unless_the_quorum_holds(drawn):
    chosen, history = drawn
    result = verdict(chosen, history)
    latest = {}
    for v in history:  # each named approver's latest decision
        if chosen.approver(v.approver):
            latest[v.approver] = v.decision
    approving = [name for name, decision in latest.items() if decision == "approved"]
    quorum_holds = (
        len(approving) >= chosen.quorum
        and all(any(chosen.approver(n).role == r for n in approving) for r in chosen.require_roles)
        and "rejected" not in latest.values()
    )
    assert (result.state == "approved") == quorum_holds
    assert (result.state == "rejected") == ("rejected" in latest.values())
    if result.state == "pending":
        assert result.waiting_for()


# -- the policy in config/oems.yaml ----------------------------------------------------------------
ENTRY = """oems:
  - id: acme
    display_name: Acme Corp
    brand_name: Acme Link
    timezone: Europe/Berlin
    tier: gold
    docs_strategy: ava
    feedback_cadence_weeks: 2
    maintenance_window: {start: "00:00", end: "00:00"}
"""


def load(tmp_path, policy_yaml: str):
    path = tmp_path / "oems.yaml"
    path.write_text(ENTRY + "    signoff_policy:\n" + "".join(f"      {line}\n" for line in policy_yaml.splitlines()))
    return load_registry(path)


def test_a_valid_policy_loads(tmp_path):
    registry = load(
        tmp_path,
        "approvers:\n  - {name: Olga Berg, role: qa}\n  - {name: Pat Kim, role: product}\n"
        "quorum: 2\nrequire_roles: [product]",
    )
    assert not registry.errors
    loaded = registry.get("acme").signoff_policy
    assert (loaded.quorum, loaded.require_roles, str(loaded.approvers[1])) == (2, ("product",), "Pat Kim (product)")


def test_no_policy_is_the_default(tmp_path):
    path = tmp_path / "oems.yaml"
    path.write_text(ENTRY)
    assert load_registry(path).get("acme").signoff_policy == DEFAULT_POLICY


@pytest.mark.parametrize(
    ("policy_yaml", "field", "message"),
    [
        (
            "approvers: [{name: Ann, role: qa}]\nquorum: 2",
            "signoff_policy.quorum",
            "a quorum of 2 can never be reached: only 1 approver(s) are named",
        ),
        ("quorum: 2", "signoff_policy.quorum", "no approvers are named"),
        (
            "approvers: [{name: Ann, role: qa}, {name: Bob, role: qa}]\nrequire_roles: [legal]",
            "signoff_policy.require_roles",
            "role 'legal' is required but no approver has it (the approvers' roles are qa)",
        ),
        (
            "approvers: [{name: Ann, role: qa}, {name: ann, role: product}]",
            "signoff_policy.approvers",
            "approver 'ann' is listed twice",
        ),
        (
            "approvers: [{name: Ann, role: qa}, {name: Pat, role: product}]\nrequire_roles: [qa, product]",
            "signoff_policy.require_roles",
            "2 roles are required but the quorum is 1: raise the quorum",
        ),
        ("approvers: [{name: Ann, role: QA}]", "signoff_policy.approvers.0.role", "should match pattern"),
        ("approvers: [{name: Ann, role: qa}]\nquorom: 1", "signoff_policy.quorom", "unknown field (did you mean"),
    ],
)
def test_a_bad_policy_is_reported_with_the_oem_and_the_field(tmp_path, policy_yaml, field, message):
    registry = load(tmp_path, policy_yaml)
    (error,) = registry.errors
    assert (error.entity, error.field) == ("OEM 'acme'", field)
    assert message in error.message
    assert error.line is not None and error.line >= 10
    with pytest.raises(InvalidConfig, match="signoff_policy"):
        registry.raise_for_errors()
