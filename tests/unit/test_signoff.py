"""Sign-off rules, portal tokens and the status matrix on both release databases: the
rules the portal and the CLI share, so each refusal is checked once, here."""

import pytest

from release_pipeline.models import Decision, DeliveryStatus, ReleaseDbError, ReleaseStatus
from release_pipeline.signoff import Conflict, Invalid, NotFound, decide, override, release_for, releases_for
from release_pipeline.signoff_policy import SignoffPolicy
from release_pipeline.status import status_matrix
from release_pipeline.tokens import authenticate, hash_token, issue_token
from tests.builders import cut


@pytest.fixture
def two_releases(repo, calendar):
    """2026.23 (one change) and 2026.24 (two), asked of acme and globex."""
    cut(repo, calendar, "2026.22")
    repo.set_installed_version("acme", "2026.22")
    cut(repo, calendar, "2026.23", "CHG-1")
    cut(repo, calendar, "2026.24", "CHG-2", "CHG-3")
    for release in ("2026.22", "2026.23", "2026.24"):  # each in production: asked on its own
        repo.set_release_status(release, ReleaseStatus.DEPLOYED, actor="test")
    for release in ("2026.23", "2026.24"):
        repo.request_approvals(release, ["acme", "globex"])
    return repo


def approve(repo, release="2026.24", changes=None, oem="acme", actor="ann", decision="approved", **kw):
    return decide(
        repo,
        oem_id=oem,
        release_id=release,
        decision=decision,
        change_ids=changes,
        actor=actor,
        channel="portal",
        **kw,
    )


def events(repo, oem="acme"):
    return [(e.change_id, e.decision) for c in ("CHG-1", "CHG-2", "CHG-3") for e in repo.approval_history(oem, c)]


def test_approve_some_then_all_the_rest(two_releases):
    repo = two_releases
    assert len(approve(repo, changes=["CHG-2"])) == 1
    assert len(approve(repo)) == 1  # "all" = what is not approved yet
    release = release_for(repo, "acme", "2026.24")
    assert release.state == "approved" and release.counts == {"approved": 2, "rejected": 0, "pending": 0}
    assert [r.state for r in releases_for(repo, "acme")] == ["approved", "pending"]  # newest first
    assert release_for(repo, "globex", "2026.24").state == "pending"


def test_reject_needs_a_comment_and_can_follow_an_approval(two_releases):
    repo = two_releases
    approve(repo)
    with pytest.raises(Invalid, match="needs a comment"):
        decide(repo, oem_id="acme", release_id="2026.24", decision="rejected", actor="ann", channel="portal")
    decide(
        repo,
        oem_id="acme",
        release_id="2026.24",
        decision=Decision.REJECTED,
        change_ids=["CHG-3"],
        actor="Acme Corp",
        channel="cli",
        comment="breaks our SSO",
        recorded_by="cs.bob",
    )
    (latest,) = [c for c in release_for(repo, "acme", "2026.24").changes if c.change.id == "CHG-3"]
    assert (latest.decision, latest.recorded_by, latest.channel, latest.comment) == (
        Decision.REJECTED,
        "cs.bob",
        "cli",
        "breaks our SSO",
    )
    assert release_for(repo, "acme", "2026.24").state == "rejected"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"release": "2026.30"}, NotFound, "release 2026.30 has no changes waiting for sign-off by acme"),
        ({"release": "latest"}, NotFound, "'latest' is not a release id"),
        ({"changes": ["CHG-1"]}, NotFound, "change 'CHG-1' is not among the changes of release 2026.24"),
        ({"changes": ["CHG-9"]}, NotFound, "change 'CHG-9'"),
        ({"changes": ["CHG-2", "CHG-2"]}, Invalid, "listed twice"),
        ({"changes": []}, Invalid, "name at least one change"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(two_releases, kwargs, error, message):
    with pytest.raises(error, match=message):
        approve(two_releases, **kwargs)
    assert events(two_releases) == []


def test_double_submission_is_a_conflict(two_releases):
    repo = two_releases
    approve(repo, changes=["CHG-2"])
    with pytest.raises(Conflict, match="'CHG-2' is already approved"):
        approve(repo, changes=["CHG-2", "CHG-3"])
    approve(repo)
    with pytest.raises(Conflict, match="every change of release 2026.24 is already approved"):
        approve(repo)
    assert events(repo) == [("CHG-2", "approved"), ("CHG-3", "approved")]


def test_another_oems_release_is_not_found(two_releases, calendar):
    repo = two_releases
    cut(repo, calendar, "2026.25", "CHG-4")
    repo.request_approvals("2026.25", ["globex"])
    with pytest.raises(NotFound, match="release 2026.25 has no changes waiting for sign-off by acme"):
        approve(repo, release="2026.25")
    assert repo.approval_history("globex", "CHG-4") == []


def test_a_delivered_release_is_closed(two_releases):
    repo = two_releases
    repo.upsert_delivery("acme", "2026.24", status=DeliveryStatus.INSTALLING)
    with pytest.raises(Conflict, match=r"the install of 2026.24 on the instance has started: its sign-off is closed"):
        approve(repo, release="2026.23")  # releases are cumulative: 2026.24 brings 2026.23 too
    repo.set_installed_version("acme", "2026.24")
    with pytest.raises(Conflict, match="already installed"):
        approve(repo)
    assert release_for(repo, "acme", "2026.24").state == "installed"
    assert events(repo) == []
    approve(repo, oem="globex")  # not installed there


def test_a_decision_that_landed_meanwhile_wins(two_releases):
    """Two people approve at once: the second sees its basis changed and writes nothing."""
    repo = two_releases
    approve(repo, changes=["CHG-2"])
    stale = {"CHG-2": None}
    with pytest.raises(Exception, match="decided on meanwhile"):
        repo.record_decisions(
            oem_id="acme", release_id="2026.24", expected=stale, decision="approved", actor="x", channel="portal"
        )
    assert len(repo.approval_history("acme", "CHG-2")) == 1


def test_tokens_are_stored_hashed_and_revocable(repo):
    issued = issue_token(repo, oem_id="acme", label="ann@acme", created_by="ops")
    (row,) = repo.portal_tokens()
    assert row.token_hash == hash_token(issued.token) != issued.token
    assert issued.token not in repr(tuple(row))
    identity = authenticate(repo, issued.token)
    assert (identity.oem_id, identity.label) == ("acme", "ann@acme")
    assert repo.portal_tokens()[0].last_used_at is not None
    assert authenticate(repo, issued.token + "x") is None
    assert authenticate(repo, None) is None
    repo.revoke_portal_token(issued.id)
    assert authenticate(repo, issued.token) is None
    with pytest.raises(ValueError, match="label"):
        issue_token(repo, oem_id="acme", label=" ", created_by="ops")


def test_status_matrix(two_releases, calendar):
    repo = two_releases
    cut(repo, calendar, "2026.25", "CHG-4")
    repo.request_approvals("2026.25", ["acme", "globex", "initech"])
    approve(repo, release="2026.23")
    approve(repo, release="2026.24", oem="globex")
    decide(repo, oem_id="globex", release_id="2026.23", decision="rejected", actor="g", channel="portal", comment="no")
    repo.upsert_delivery("initech", "2026.24", status=DeliveryStatus.ROLLED_BACK)
    repo.set_installed_version("hooli", "2026.24")

    matrix = status_matrix(repo, ["acme", "globex", "initech", "hooli"])

    assert matrix.releases == ["2026.22", "2026.23", "2026.24", "2026.25"]
    assert matrix.cells == {
        "acme": {"2026.22": "installed", "2026.23": "approved", "2026.24": "pending", "2026.25": "pending"},
        "globex": {"2026.22": "-", "2026.23": "rejected", "2026.24": "approved", "2026.25": "pending"},
        "initech": {"2026.22": "-", "2026.23": "-", "2026.24": "failed", "2026.25": "pending"},
        "hooli": {"2026.22": "installed", "2026.23": "installed", "2026.24": "installed", "2026.25": "-"},
    }
    assert status_matrix(repo, ["acme"], last=2).releases == ["2026.24", "2026.25"]
    assert status_matrix(repo, ["acme"], releases=["2026.23"]).rows() == [{"oem": "acme", "2026.23": "approved"}]


def test_a_token_works_until_it_expires(repo):
    import pendulum

    t0 = pendulum.datetime(2026, 1, 5, 12, tz="UTC")
    issued = issue_token(
        repo, oem_id="acme", label="ann", created_by="ops", now=t0, valid_for=pendulum.duration(days=1)
    )
    assert issued.expires_at == t0.add(days=1) == repo.portal_tokens()[0].expires_at
    assert authenticate(repo, issued.token, now=t0.add(hours=23, minutes=59)).oem_id == "acme"
    assert authenticate(repo, issued.token, now=t0.add(days=1)) is None
    with pytest.raises(ValueError, match="valid for 1 to 366 days"):
        issue_token(repo, oem_id="acme", label="ann", created_by="ops", valid_for=pendulum.duration(days=400))


def reject(repo, changes, **kw):
    return approve(repo, changes=changes, decision="rejected", comment="breaks our SSO", **kw)


TWO_APPROVERS = SignoffPolicy(approvers=[{"name": "Ann", "role": "qa"}, {"name": "Bob", "role": "product"}], quorum=2)


def test_the_newest_counting_decision_is_the_one_shown(two_releases):
    """The one-line display of a change (portal, CLI) is its newest decision that counts."""
    repo = two_releases
    for person in ("Ann", "Bob"):
        approve(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver=person, actor=f"{person.lower()}@acme")
    (shown,) = [c for c in release_for(repo, "acme", "2026.24", TWO_APPROVERS).changes if c.change.id == "CHG-2"]
    assert (shown.state, shown.actor) == ("approved", "bob@acme")


def test_an_oem_signing_off_as_one_decides_on_top_of_the_latest_decision_by_anyone(two_releases):
    """Ann approved, then Bob rejected; the OEM then signs off as one (its policy no longer
    names approvers): the change stands rejected, the latest decision, and approving it
    is a new decision, rejecting it again a double submission."""
    repo = two_releases
    approve(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver="Ann")
    reject(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver="Bob")
    (change,) = [c for c in release_for(repo, "acme", "2026.24").changes if c.change.id == "CHG-2"]
    assert change.state == "rejected"
    with pytest.raises(Conflict, match="already rejected"):
        reject(repo, changes=["CHG-2"])
    assert len(approve(repo, changes=["CHG-2"])) == 1


DECISION = {"oem_id": "acme", "release_id": "2026.24", "decision": "approved", "actor": "ann", "channel": "portal"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decision": "overridden"}, "decision must be 'approved' or 'rejected', not 'overridden'"),
        ({"channel": "email"}, "unknown channel 'email'"),
        ({"decision": "rejected", "comment": "  "}, "a rejection needs a comment saying why"),
        ({"actor": "  "}, "a decision needs the name of who took it"),
    ],
)
def test_an_invalid_decision_says_what_is_wrong_word_for_word(two_releases, kwargs, message):
    """What the portal answers (422) and the CLI prints: the whole sentence."""
    with pytest.raises(Invalid) as refused:
        decide(two_releases, **{**DECISION, **kwargs})
    assert str(refused.value) == message
    assert events(two_releases) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": "  "}, "an override needs a reason"),
        ({"reason": None}, "an override needs a reason"),
        ({"by": "  "}, "an override needs the name of the staff member recording it"),
    ],
)
def test_an_invalid_override_says_what_is_wrong_word_for_word(two_releases, kwargs, message):
    reject(two_releases, changes=["CHG-2"])
    with pytest.raises(Invalid) as refused:
        override(two_releases, **{"oem_id": "acme", "release_id": "2026.24", "reason": "ok", "by": "cs.bob", **kwargs})
    assert str(refused.value) == message
    assert events(two_releases) == [("CHG-2", "rejected")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expected": {}}, "no changes to decide on"),
        ({"decision": "rejected"}, "a rejection needs a comment saying why"),
        ({"decision": "overridden", "comment": " "}, "an override needs a comment saying why"),
        ({"expected": {"CHG-1": None}}, "OEM 'acme' has no sign-off request for change 'CHG-1' in 2026.24"),
    ],
)
def test_the_database_refuses_an_incomplete_decision_word_for_word(two_releases, kwargs, message):
    """``record_decisions`` checks again what the callers check: seeding and staff tools
    write through it too."""
    base = {"oem_id": "acme", "release_id": "2026.24", "expected": {"CHG-2": None}, "decision": "approved"}
    with pytest.raises(ReleaseDbError) as refused:
        two_releases.record_decisions(**{**base, **kwargs}, actor="ann", channel="cli")
    assert str(refused.value) == message
    assert events(two_releases) == []


def test_who_may_decide_is_refused_word_for_word():
    """``approver_for``: what staff read at ``--approver`` and an OEM at a token bound to no one."""
    from release_pipeline.signoff import NotAllowed, approver_for

    assert approver_for(SignoffPolicy(), None, "acme") is None
    assert approver_for(SignoffPolicy(), "", "acme") is None
    assert approver_for(TWO_APPROVERS, "bob", "acme") == TWO_APPROVERS.approvers[1]
    refusals = [
        (SignoffPolicy(), "Ann", "acme signs off as one (its sign-off policy names no approvers): name no approver"),
        (
            TWO_APPROVERS,
            None,
            "acme's sign-off policy names its approvers (Ann (qa), Bob (product)): a decision must be one of "
            "theirs (a portal token bound to an approver, or --approver)",
        ),
        (
            TWO_APPROVERS,
            "",
            "acme's sign-off policy names its approvers (Ann (qa), Bob (product)): a decision must be one of "
            "theirs (a portal token bound to an approver, or --approver)",
        ),
        (
            TWO_APPROVERS,
            "Mallory",
            "'Mallory' is not an approver in acme's sign-off policy (approvers: Ann (qa), Bob (product))",
        ),
    ]
    for policy, name, message in refusals:
        with pytest.raises(NotAllowed) as refused:
            approver_for(policy, name, "acme")
        assert str(refused.value) == message


def test_the_export_of_an_oem_signing_off_as_one_leaves_no_field_unsaid(two_releases):
    """The CSV staff hand to an auditor: no approver, role, comment or recorder is an empty
    field, never a placeholder."""
    from release_pipeline.signoff import EXPORT_COLUMNS, signoff_export

    approve(two_releases, changes=["CHG-3"], actor="ann@acme")
    reject(two_releases, changes=["CHG-2"], actor="Acme Corp")
    two_releases.record_decision(
        oem_id="acme", change_id="CHG-3", decision=Decision.REJECTED, actor="Acme Corp", channel="cli",
        comment="found a bug", recorded_by="cs.bob",
    )  # fmt: skip
    history = [e for c in ("CHG-2", "CHG-3") for e in two_releases.approval_history("acme", c)]
    at = [e.created_at.isoformat() for e in sorted(history, key=lambda e: e.id)]
    rows = signoff_export(two_releases, "acme", "2026.24")
    assert all(tuple(row) == EXPORT_COLUMNS for row in rows)
    assert rows == [
        {"oem": "acme", "release": "2026.24", "change": "CHG-3", "who": "ann@acme", "approver": "", "role": "",
         "decision": "approved", "at_utc": at[0], "comment": "", "channel": "portal", "recorded_by": ""},
        {"oem": "acme", "release": "2026.24", "change": "CHG-2", "who": "Acme Corp", "approver": "", "role": "",
         "decision": "rejected", "at_utc": at[1], "comment": "breaks our SSO", "channel": "portal", "recorded_by": ""},
        {"oem": "acme", "release": "2026.24", "change": "CHG-3", "who": "Acme Corp", "approver": "", "role": "",
         "decision": "rejected", "at_utc": at[2], "comment": "found a bug", "channel": "cli", "recorded_by": "cs.bob"},
    ]  # fmt: skip
    assert signoff_export(two_releases, "acme", "2026.23") == []
    with pytest.raises(NotFound):
        signoff_export(two_releases, "acme", "2026.22")


def test_an_override_lifts_only_the_named_approvers_rejection_and_says_what_it_cannot(two_releases):
    """Ann and Bob both rejected CHG-2; staff override Bob's only. The refusals are what
    staff read at the CLI, whole."""
    from release_pipeline.signoff import NotAllowed

    repo = two_releases
    reject(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver="Ann", actor="ann@acme")
    reject(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver="Bob", actor="bob@acme")
    lift = {"oem_id": "acme", "release_id": "2026.24", "by": " cs.bob ", "policy": TWO_APPROVERS}
    refusals = [
        (
            {"change_ids": ["CHG-9"]},
            NotFound,
            "change 'CHG-9' is not among the changes of release 2026.24 acme signs off",
        ),
        ({"change_ids": ["CHG-3"]}, Conflict, "change 'CHG-3' has no rejection to override"),
        ({"change_ids": ["CHG-3"], "approver": "bob"}, Conflict, "change 'CHG-3' has no rejection by Bob to override"),
        ({"approver": "Mallory"}, NotAllowed, "'Mallory' is not an approver in acme's sign-off policy"),
        ({"release_id": "2026.23"}, Conflict, "no rejection blocks release 2026.23 for acme: nothing to override"),
    ]
    for kwargs, error, message in refusals:
        with pytest.raises(error) as refused:
            override(repo, **{**lift, "reason": "contract", **kwargs})
        assert str(refused.value).startswith(message)
    assert len(repo.approval_history("acme", "CHG-2")) == 2

    ids = override(repo, **lift, change_ids=["CHG-2", "CHG-2"], approver="bob", reason=" agreed with their CTO ")
    assert len(ids) == 1
    lifted = repo.approval_history("acme", "CHG-2")[-1]
    assert lifted.id == ids[0]
    assert (lifted.decision, lifted.approver, lifted.approver_role, lifted.actor, lifted.recorded_by) == (
        "overridden",
        "Bob",
        "product",
        "cs.bob",
        "cs.bob",
    )
    assert (lifted.channel, lifted.comment, lifted.release_id) == ("cli", "agreed with their CTO", "2026.24")
    (change,) = [c for c in release_for(repo, "acme", "2026.24", TWO_APPROVERS).changes if c.change.id == "CHG-2"]
    assert [v.approver for v in change.verdict.rejections] == ["Ann"]  # Ann's still blocks
    with pytest.raises(Conflict) as refused:
        override(repo, **lift, change_ids=["CHG-2"], approver="Bob", reason="again")
    assert str(refused.value) == "change 'CHG-2' has no rejection by Bob to override"

    # every rejection of the release at once, each recorded as its approver's
    reject(repo, changes=["CHG-3"], policy=TWO_APPROVERS, approver="Bob", actor="bob@acme")
    ids = override(repo, **lift, reason="all of them")
    assert sorted((e.change_id, e.approver) for c in ("CHG-2", "CHG-3") for e in repo.approval_history("acme", c)
                  if e.id in ids) == [("CHG-2", "Ann"), ("CHG-3", "Bob")]  # fmt: skip
    assert release_for(repo, "acme", "2026.24", TWO_APPROVERS).state == "pending"
    repo.upsert_delivery("acme", "2026.24", status=DeliveryStatus.INSTALLING)
    with pytest.raises(Conflict) as refused:
        override(repo, **lift, reason="late")
    assert str(refused.value) == "the install of 2026.24 on the instance has started: its sign-off is closed"


def test_an_oem_signing_off_as_one_has_its_rejection_overridden_as_its_own(two_releases):
    repo = two_releases
    reject(repo, changes=["CHG-2", "CHG-3"], actor="Acme Corp")
    ids = override(repo, oem_id="acme", release_id="2026.24", reason="contract", by="cs.bob", change_ids=["CHG-3"])
    (lifted,) = [e for e in repo.approval_history("acme", "CHG-3") if e.id in ids]
    assert (lifted.decision, lifted.approver, lifted.approver_role) == ("overridden", "", None)
    assert release_for(repo, "acme", "2026.24").counts == {"approved": 0, "rejected": 1, "pending": 1}


def test_a_decision_or_override_that_lost_a_race_is_a_conflict_saying_so(two_releases, monkeypatch):
    """Another decision lands between the read and the write: the database refuses, and
    the caller (portal 409, CLI exit 2) reads the database's sentence."""
    repo = two_releases
    reject(repo, changes=["CHG-2"])
    record = repo.record_decisions

    def meanwhile(**kwargs):
        """bob approves the change on the same basis first"""
        [(change, basis)] = kwargs["expected"].items()
        record(oem_id="acme", release_id="2026.24", expected={change: basis}, decision="approved", actor="bob",
               channel="portal")  # fmt: skip
        return record(**kwargs)

    monkeypatch.setattr(repo, "record_decisions", meanwhile)
    with pytest.raises(Conflict) as refused:
        override(repo, oem_id="acme", release_id="2026.24", reason="contract", by="cs.bob")
    assert str(refused.value) == "change 'CHG-2' was decided on meanwhile; reload and decide again"
    with pytest.raises(Conflict) as refused:
        reject(repo, changes=["CHG-3"])
    assert str(refused.value) == "change 'CHG-3' was decided on meanwhile; reload and decide again"
    assert events(repo) == [("CHG-2", "rejected"), ("CHG-2", "approved"), ("CHG-3", "approved")]


def test_every_release_of_an_oem_says_whether_its_sign_off_is_closed(two_releases):
    """The portal's list: an installed release is closed for the OEM it was installed on only."""
    repo = two_releases
    repo.set_installed_version("acme", "2026.23")
    assert [(r.release_id, r.state, r.closed_reason) for r in releases_for(repo, "acme")] == [
        ("2026.24", "pending", None),
        ("2026.23", "installed", "release 2026.23 is already installed (the instance runs 2026.23)"),
    ]
    assert [r.state for r in releases_for(repo, "globex")] == ["pending", "pending"]


def test_a_changes_one_line_display_and_its_votes_are_the_recorded_decisions(two_releases):
    """What the portal shows of a change: its newest counting decision (id, who, when, how,
    why) and each approval with its time, as the release database recorded them."""
    repo = two_releases
    approve(repo, changes=["CHG-2"], policy=TWO_APPROVERS, approver="Ann", actor="ann@acme")
    decide(
        repo, oem_id="acme", release_id="2026.24", decision="approved", change_ids=["CHG-2"], actor="Bob (phone)",
        channel="cli", comment="ok by phone", recorded_by="cs.bob", policy=TWO_APPROVERS, approver="Bob",
    )  # fmt: skip
    ann, bob = repo.approval_history("acme", "CHG-2")
    (shown,) = [c for c in release_for(repo, "acme", "2026.24", TWO_APPROVERS).changes if c.change.id == "CHG-2"]
    assert (shown.event_id, shown.decision, shown.actor, shown.recorded_by, shown.channel, shown.comment) == (
        bob.id,
        Decision.APPROVED,
        "Bob (phone)",
        "cs.bob",
        "cli",
        "ok by phone",
    )
    assert shown.decided_at == bob.created_at
    assert [(v.approver, v.event_id, v.decided_at) for v in shown.votes] == [
        ("Ann", ann.id, ann.created_at),
        ("Bob", bob.id, bob.created_at),
    ]
    (undecided,) = [c for c in release_for(repo, "acme", "2026.24", TWO_APPROVERS).changes if c.change.id == "CHG-3"]
    assert (undecided.event_id, undecided.decision, undecided.decided_at, undecided.votes) == (None, None, None, ())


def test_a_refused_choice_of_changes_or_approver_says_so_word_for_word(two_releases):
    """The portal's 409/422/403 and the CLI's exit 2 carry these sentences whole."""
    from release_pipeline.signoff import NotAllowed

    repo = two_releases
    approve(repo, changes=["CHG-2"])
    refusals = [
        ({"changes": []}, Invalid, "name at least one change, or none to decide on all of them"),
        ({"changes": ["CHG-3", "CHG-3"]}, Invalid, "a change is listed twice"),
        ({"changes": ["CHG-3", "CHG-2"]}, Conflict, "change 'CHG-2' is already approved (double submission)"),
        (
            {"approver": "Ann"},
            NotAllowed,
            "acme signs off as one (its sign-off policy names no approvers): name no approver",
        ),
    ]
    for kwargs, error, message in refusals:
        with pytest.raises(error) as refused:
            approve(repo, **kwargs)
        assert str(refused.value) == message
    approve(repo)
    with pytest.raises(Conflict) as refused:
        approve(repo)
    assert str(refused.value) == "every change of release 2026.24 is already approved"
    with pytest.raises(Conflict) as refused:
        approve(repo, policy=TWO_APPROVERS, approver="Ann", changes=["CHG-2"])
        approve(repo, policy=TWO_APPROVERS, approver="Ann", changes=["CHG-2"])
    assert str(refused.value) == "change 'CHG-2' is already approved by Ann (double submission)"
    assert events(repo) == [("CHG-2", "approved"), ("CHG-2", "approved"), ("CHG-3", "approved")]
