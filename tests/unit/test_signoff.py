"""Sign-off rules, portal tokens and the status matrix on both release databases: the
rules the portal and the CLI share, so each refusal is checked once, here."""

import pytest

from release_pipeline.models import Decision, DeliveryStatus, ReleaseStatus
from release_pipeline.signoff import Conflict, Invalid, NotFound, decide, release_for, releases_for
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
