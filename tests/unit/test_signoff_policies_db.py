"""Sign-off policies on both release databases, through the CLI staff use and the
domain the gate, the portal and the status views share: tokens bound to approvers,
decisions per approver, overrides, an approver removed while a release waits, the
status matrix and the CSV export."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pendulum
import pytest
import time_machine

from release_pipeline.delivery_process import signoff_of
from release_pipeline.models import ReleaseStatus
from release_pipeline.registry import load_registry
from release_pipeline.signoff import Conflict, Invalid, NotAllowed, decide, release_for
from release_pipeline.status import status_matrix
from release_pipeline.tokens import authenticate
from tests.builders import TWO_OF_TWO, cut, with_policy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(tmp_path) -> Path:
    """The shipped config, with orbitel signing off by two people (Olga for QA, Pat for product)."""
    copy = tmp_path / "config"
    shutil.copytree(REPO / "config", copy)
    with_policy(copy, "orbitel", TWO_OF_TWO)
    assert not load_registry(copy / "oems.yaml").errors
    return copy


@pytest.fixture
def staff(cli, config):
    """``staff(*argv)``: the CLI with the test's config."""
    return lambda *argv: cli("--config-dir", str(config), *argv)


@pytest.fixture
def waiting(repo, calendar):
    """2026.24 (CHG-1, CHG-2) in production, asked of orbitel and nimbus; both run 2026.23."""
    cut(repo, calendar, "2026.23")
    repo.set_release_status("2026.23", ReleaseStatus.DEPLOYED, actor="test")
    cut(repo, calendar, "2026.24", "CHG-1", "CHG-2")
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals("2026.24", ["orbitel", "nimbus"])
    for oem in ("orbitel", "nimbus"):
        repo.set_installed_version(oem, "2026.23")
    return repo


def policy_of(config: Path, oem: str = "orbitel"):
    return load_registry(config / "oems.yaml").get(oem).signoff_policy


def gate(repo, config, oem: str = "orbitel"):
    """What the approval gate and the last look see."""
    return signoff_of(repo, oem, "2026.23", "2026.24", policy_of(config, oem))


APPROVE = ["approve", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob"]


def test_tokens_are_bound_to_an_approver_of_the_policy(staff, repo):
    code, _, err = staff("token", "issue", "--oem", "orbitel", "--label", "olga@orbitel")
    assert code == 2 and "orbitel's sign-off policy names its approvers (Olga Berg (qa), Pat Kim (product))" in err
    code, _, err = staff("token", "issue", "--oem", "orbitel", "--label", "x@orbitel", "--approver", "Mallory")
    assert code == 2 and "'Mallory' is not an approver in orbitel's sign-off policy" in err
    code, _, err = staff("token", "issue", "--oem", "nimbus", "--label", "n@nimbus", "--approver", "Olga Berg")
    assert code == 2 and "nimbus signs off as one" in err
    assert repo.portal_tokens() == []  # nothing was issued

    code, out, err = staff("token", "issue", "--oem", "orbitel", "--label", "olga@orbitel", "--approver", "olga berg")
    assert code == 0 and "approver Olga Berg" in err
    identity = authenticate(repo, out.strip())
    assert (identity.oem_id, identity.label, identity.approver) == ("orbitel", "olga@orbitel", "Olga Berg")
    token_id = identity.token_id
    code, out, _ = staff("token", "rotate", str(token_id))  # the replacement keeps its approver
    assert code == 0 and authenticate(repo, out.strip()).approver == "Olga Berg"
    code, out, _ = staff("token", "rotate", str(token_id + 1), "--approver", "Pat Kim")
    assert code == 0 and authenticate(repo, out.strip()).approver == "Pat Kim"
    code, out, _ = staff("token", "list")
    assert "olga@orbitel [approver Pat Kim]" in out
    assert json.loads(staff("token", "list", "--json")[1])[-1]["approver"] == "Pat Kim"


def test_a_two_of_two_change_waits_for_the_second_approver(staff, waiting, config):
    repo = waiting
    code, _, err = staff(*APPROVE)
    assert code == 2 and "a decision must be one of theirs" in err
    assert staff(*APPROVE, "--approver", "Olga Berg")[0] == 0
    release = release_for(repo, "orbitel", "2026.24", policy_of(config))
    assert release.state == "pending"
    (first, _) = release.changes
    assert [(v.approver, v.approver_role) for v in first.verdict.approvals] == [("Olga Berg", "qa")]
    assert first.verdict.waiting_for() == "1 more approval of Pat Kim (product)"
    assert not gate(repo, config).complete
    assert gate(repo, config).reasons() == [
        "CHG-1 (release 2026.24) waits for 1 more approval of Pat Kim (product)",
        "CHG-2 (release 2026.24) waits for 1 more approval of Pat Kim (product)",
    ]
    code, _, err = staff(*APPROVE, "--approver", "Olga Berg")  # her own decision again: a double submission
    assert code == 2 and "already approved by Olga Berg" in err

    with time_machine.travel(pendulum.datetime(2026, 12, 1, 12, tz="UTC"), tick=False):
        code, out, _ = staff("explain", "orbitel", "--json")
    answer = json.loads(out)
    assert answer["signoff_policy"] == "2 of Olga Berg (qa), Pat Kim (product)"
    assert answer["releases"][0]["waiting_for"][0] == {
        "change": "CHG-1",
        "for": "1 more approval of Pat Kim (product)",
    }
    assert staff("status", "--json")[1] and json.loads(staff("status", "--json")[1])["oems"]["orbitel"]["2026.24"] == (
        "pending"
    )

    assert staff(*APPROVE, "--approver", "Pat Kim", "--on-behalf-of", "Pat (phone call)")[0] == 0
    assert release_for(repo, "orbitel", "2026.24", policy_of(config)).state == "approved"
    assert gate(repo, config).complete
    assert json.loads(staff("status", "--json")[1])["oems"]["orbitel"]["2026.24"] == "approved"
    # nimbus (no policy) is untouched: one decision by anyone
    assert release_for(repo, "nimbus", "2026.24").state == "pending"


def test_a_rejection_blocks_until_its_author_approves(staff, waiting, config):
    repo = waiting
    reject = ["reject", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob", "--change", "CHG-1"]
    assert staff(*reject, "--approver", "Pat Kim", "--comment", "breaks our SSO")[0] == 0
    assert staff(*APPROVE, "--approver", "Olga Berg")[0] == 0
    assert release_for(repo, "orbitel", "2026.24", policy_of(config)).state == "rejected"
    assert gate(repo, config).reasons() == [
        "CHG-1 (release 2026.24) rejected by Pat Kim: breaks our SSO",
        "CHG-2 (release 2026.24) waits for 1 more approval of Pat Kim (product)",
    ]
    assert json.loads(staff("status", "--json")[1])["oems"]["orbitel"]["2026.24"] == "rejected"
    assert staff(*APPROVE, "--approver", "Pat Kim")[0] == 0  # Pat changed their mind
    assert release_for(repo, "orbitel", "2026.24", policy_of(config)).state == "approved"


def test_staff_override_a_rejection_with_a_reason(staff, waiting, config):
    repo = waiting
    reject = ["reject", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob", "--change", "CHG-1"]
    assert staff(*reject, "--approver", "Pat Kim", "--comment", "breaks our SSO")[0] == 0
    assert staff(*APPROVE, "--approver", "Olga Berg")[0] == 0
    override = ["signoff", "override", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob"]
    code, _, err = staff(*override, "--reason", " ")
    assert code == 2 and "--reason" in err
    code, _, err = staff(*override, "--change", "CHG-2", "--reason", "contract")
    assert code == 2 and "change 'CHG-2' has no rejection to override" in err
    code, out, _ = staff(*override, "--reason", "agreed with their CTO: SSO fix follows in 2026.25")
    assert code == 0 and "overrode 1 rejection(s)" in out
    release = release_for(repo, "orbitel", "2026.24", policy_of(config))
    # no longer blocked, but two of two still means Pat's approval is needed
    assert release.state == "pending" and release.changes[0].verdict.waiting_for() == (
        "1 more approval of Pat Kim (product)"
    )
    code, _, err = staff(*override, "--reason", "again")
    assert code == 2 and "nothing to override" in err
    assert staff(*APPROVE, "--approver", "Pat Kim")[0] == 0
    assert gate(repo, config).complete

    code, out, _ = staff("signoff", "export", "--oem", "orbitel", "--release", "2026.24")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["change"], r["approver"], r["role"], r["decision"], r["recorded_by"]) for r in rows] == [
        ("CHG-1", "Pat Kim", "product", "rejected", "cs.bob"),
        ("CHG-1", "Olga Berg", "qa", "approved", "cs.bob"),
        ("CHG-2", "Olga Berg", "qa", "approved", "cs.bob"),
        ("CHG-1", "Pat Kim", "product", "overridden", "cs.bob"),
        ("CHG-1", "Pat Kim", "product", "approved", "cs.bob"),
        ("CHG-2", "Pat Kim", "product", "approved", "cs.bob"),
    ]
    assert rows[0]["comment"] == "breaks our SSO" and rows[0]["who"] == "Pat Kim"
    assert rows[3]["comment"] == "agreed with their CTO: SSO fix follows in 2026.25" and rows[3]["who"] == "cs.bob"
    assert pendulum.parse(rows[0]["at_utc"]).tzinfo is not None
    assert list(rows[0]) == [
        "oem", "release", "change", "who", "approver", "role", "decision", "at_utc", "comment", "channel", "recorded_by"
    ]  # fmt: skip


def test_export_to_a_file_and_refusals(staff, waiting, tmp_path):
    out_file = tmp_path / "signoff.csv"
    assert staff(*APPROVE, "--approver", "Olga Berg")[0] == 0
    code, out, err = staff("signoff", "export", "--oem", "orbitel", "--release", "2026.24", "--out", str(out_file))
    assert code == 0 and out == "" and "wrote 2 decision(s)" in err
    assert len(list(csv.DictReader(out_file.open()))) == 2
    code, _, err = staff("signoff", "export", "--oem", "orbitel", "--release", "2026.20")
    assert code == 2 and "release 2026.20 has no changes waiting for sign-off by orbitel" in err
    code, _, err = staff("signoff", "export", "--oem", "acme", "--release", "2026.24")
    assert code == 2 and "no such OEM" in err


def test_an_approver_removed_while_the_release_waits_no_longer_counts(staff, waiting, config):
    repo = waiting
    assert staff(*APPROVE, "--approver", "Olga Berg")[0] == 0
    assert staff(*APPROVE, "--approver", "Pat Kim")[0] == 0
    assert gate(repo, config).complete
    # Pat leaves the company; Sam takes the product role: Pat's approvals stop counting
    with_policy(
        config,
        "orbitel",
        "    signoff_policy:\n      approvers:\n        - {name: Olga Berg, role: qa}\n"
        "        - {name: Sam Lee, role: product}\n      quorum: 2\n",
    )
    assert not gate(repo, config).complete
    release = release_for(repo, "orbitel", "2026.24", policy_of(config))
    assert release.state == "pending"
    assert release.changes[0].verdict.waiting_for() == "1 more approval of Sam Lee (product)"
    assert [v.approver for v in release.changes[0].verdict.ignored] == ["Pat Kim"]
    assert json.loads(staff("status", "--json")[1])["oems"]["orbitel"]["2026.24"] == "pending"
    with pytest.raises(NotAllowed, match="'Pat Kim' is not an approver"):
        decide(
            repo,
            oem_id="orbitel",
            release_id="2026.24",
            decision="approved",
            actor="pat@orbitel",
            channel="portal",
            policy=policy_of(config),
            approver="Pat Kim",
        )


def test_the_gate_query_returns_each_approvers_latest_decision(waiting, config):
    repo = waiting
    policy = policy_of(config)
    for who, decision, comment in (("Olga Berg", "rejected", "no"), ("Olga Berg", "approved", None)):
        decide(
            repo,
            oem_id="orbitel",
            release_id="2026.24",
            decision=decision,
            change_ids=["CHG-1"],
            actor=who,
            channel="portal",
            comment=comment,
            policy=policy,
            approver=who,
        )
    states = repo.approval_states("orbitel", "2026.23", "2026.24")
    assert [(s.change_id, s.approver, s.decision) for s in states] == [
        ("CHG-1", "Olga Berg", "approved"),
        ("CHG-2", None, None),
    ]
    decide(
        repo,
        oem_id="orbitel",
        release_id="2026.24",
        decision="approved",
        change_ids=["CHG-1"],
        actor="pat",
        channel="portal",
        policy=policy,
        approver="Pat Kim",
    )
    states = repo.approval_states("orbitel", "2026.23", "2026.24")
    assert [(s.change_id, s.approver) for s in states] == [
        ("CHG-1", "Olga Berg"),
        ("CHG-1", "Pat Kim"),
        ("CHG-2", None),
    ]
    assert all(s.event_id for s in states[:2])
    matrix = status_matrix(repo, ["orbitel", "nimbus"], policies={"orbitel": policy})
    assert matrix.cells == {
        "orbitel": {"2026.23": "installed", "2026.24": "pending"},
        "nimbus": {"2026.23": "installed", "2026.24": "pending"},
    }


def test_a_decision_racing_the_same_approver_is_refused(waiting, config):
    repo = waiting
    policy = policy_of(config)
    before = release_for(repo, "orbitel", "2026.24", policy)
    decide(repo, oem_id="orbitel", release_id="2026.24", decision="approved", actor="o", channel="portal",
           policy=policy, approver="Olga Berg")  # fmt: skip
    with pytest.raises(Exception, match="decided on meanwhile"):
        repo.record_decisions(
            oem_id="orbitel",
            release_id="2026.24",
            expected={"CHG-1": before.changes[0].vote_of(policy.approver("Olga Berg"))},
            decision="approved",
            actor="o",
            channel="portal",
            approver="Olga Berg",
        )
    # another approver's decision is not a race: Pat decides on what Pat saw
    decide(repo, oem_id="orbitel", release_id="2026.24", decision="approved", actor="p", channel="portal",
           policy=policy, approver="Pat Kim")  # fmt: skip
    assert release_for(repo, "orbitel", "2026.24", policy).state == "approved"
    with pytest.raises(Conflict):
        decide(repo, oem_id="orbitel", release_id="2026.24", decision="approved", actor="p", channel="portal",
               policy=policy, approver="Pat Kim")  # fmt: skip


def test_an_override_is_no_decision_an_oem_user_can_take(waiting):
    with pytest.raises(Invalid, match="decision must be 'approved' or 'rejected', not 'overridden'"):
        decide(waiting, oem_id="nimbus", release_id="2026.24", decision="overridden", actor="x", channel="portal",
               comment="lifting my own block")  # fmt: skip
    assert waiting.signoff_record("nimbus", "2026.24") == []
