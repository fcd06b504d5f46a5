"""Sign-off rules shared by the OEM portal and the operator CLI.

Whoever records a decision (the OEM in the portal, staff on its behalf in the CLI),
the same checks apply, and a refused request writes nothing:

- only changes the OEM was asked to sign off, of a release it was asked about;
- under a policy that names its approvers, a decision is one approver's, and only an
  approver the policy names now may decide (a portal token is bound to one);
- a decision equal to the approver's current one (the change's, for an OEM that signs
  off as one) is a double submission;
- a release already installed (or being installed) on the OEM's instance is closed;
- a rejection says why, and so does a staff override of one.

What a change's decisions amount to is the OEM's sign-off policy's business
(``signoff_policy.verdict``). Errors carry a kind (:class:`NotFound`,
:class:`Conflict`, :class:`Invalid`, :class:`NotAllowed`) so the portal can answer
404/409/422/403 and the CLI exit 2, with the same message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.delivery import SignoffAssessment
from release_pipeline.models import Change, Decision, ReleaseDbError
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import RELEASE_ID_PATTERN
from release_pipeline.signoff_policy import DEFAULT_POLICY, Approver, ChangeVerdict, SignoffPolicy, verdict

CHANNELS = frozenset({"portal", "cli"})


class SignoffError(ValueError):
    """A sign-off request that is refused; nothing was recorded."""


class NotFound(SignoffError):
    """Unknown to this OEM: never says whether it exists for another one."""


class Conflict(SignoffError):
    """Valid, but the current state does not allow it (double submission, delivered)."""


class Invalid(SignoffError):
    """The request itself is incomplete (e.g. a rejection without a comment)."""


class NotAllowed(SignoffError):
    """The caller may not decide for the OEM (not an approver of its sign-off policy)."""


@dataclass(frozen=True)
class ApproverVote:
    """The latest decision of one approver (None: the OEM as one) on one change."""

    approver: str | None
    approver_role: str | None
    decision: Decision
    actor: str
    recorded_by: str | None
    channel: str
    comment: str | None
    decided_at: dt.datetime
    event_id: int


@dataclass(frozen=True)
class ChangeSignoff:
    """One change as the OEM signs it off. ``event_id`` ... ``decided_at`` describe the
    newest decision that counts under the policy (for a one-line display); ``votes`` are
    every approver's latest, ``verdict`` what they amount to."""

    change: Change
    event_id: int | None
    decision: Decision | None
    actor: str | None
    recorded_by: str | None
    channel: str | None
    comment: str | None
    decided_at: dt.datetime | None
    votes: tuple[ApproverVote, ...] = ()
    verdict: ChangeVerdict = ChangeVerdict("pending", needed=1)

    @property
    def state(self) -> str:
        return self.verdict.state

    def vote_of(self, approver: Approver | None) -> ApproverVote | None:
        """The approver's latest decision; for the OEM as one, the change's latest."""
        if approver is None:
            return max(self.votes, key=lambda v: v.event_id, default=None)
        return next((v for v in self.votes if v.approver == approver.name), None)


@dataclass(frozen=True)
class ReleaseSignoff:
    """One release as one OEM signs it off."""

    release_id: str
    release_at: dt.datetime
    changes: tuple[ChangeSignoff, ...]
    closed_reason: str | None  # why no decision can be taken any more (delivered)

    @property
    def state(self) -> str:
        """installed | rejected | pending | approved."""
        if self.closed_reason:
            return "installed"
        states = {c.state for c in self.changes}
        if "rejected" in states:
            return "rejected"
        if "pending" in states:
            return "pending"
        return "approved"

    @property
    def counts(self) -> dict[str, int]:
        counts = {"approved": 0, "rejected": 0, "pending": 0}
        for change in self.changes:
            counts[change.state] += 1
        return counts


@dataclass(frozen=True)
class OwedSignoff:
    """A change that cannot be installed yet, and who still has to approve it."""

    release_id: str
    change_id: str
    state: str  # pending | rejected
    approvers: tuple[str, ...]

    def as_json(self) -> dict:
        return {"release": self.release_id, "change": self.change_id, "state": self.state, "from": list(self.approvers)}


def still_owed(oem: Oem, assessment: SignoffAssessment) -> list[OwedSignoff]:
    """Who still owes which sign-off for the releases of ``assessment``, oldest first.

    Without a sign-off policy the OEM itself is the one approver. Under a policy a
    pending change is owed by the approvers whose approval would still count (the
    verdict's ``missing``), and a rejected one by whoever rejected it (until they
    approve, or staff override). The forecast, the reminders and the digest ask only
    this function."""
    anyone = (oem.display_name,)
    owed = []
    for release in assessment.releases:
        missing = dict(release.missing)
        owed += [OwedSignoff(release.release_id, c, "pending", missing.get(c) or anyone) for c in release.pending]
        rejecters: dict[str, list[str]] = {}
        for r in release.rejected:
            rejecters.setdefault(r.change_id, []).append(r.approver or oem.display_name)
        owed += [
            OwedSignoff(release.release_id, c, "rejected", tuple(dict.fromkeys(names)))
            for c, names in rejecters.items()
        ]
    return owed


def _change_signoff(rows, policy: SignoffPolicy) -> ChangeSignoff:
    """``rows``: the change's rows of ``signoff_states`` (one per approver who decided)."""
    row = rows[0]
    votes = tuple(
        ApproverVote(
            approver=r.approver or None,
            approver_role=r.approver_role,
            decision=Decision(r.decision),
            actor=r.actor,
            recorded_by=r.recorded_by,
            channel=r.channel,
            comment=r.comment,
            decided_at=r.decided_at,
            event_id=r.event_id,
        )
        for r in rows
        if r.event_id is not None
    )
    counting = [v for v in votes if not policy.named or policy.approver(v.approver)]
    shown = max(counting, key=lambda v: v.event_id, default=None)
    return ChangeSignoff(
        change=Change.from_row(row),
        event_id=shown.event_id if shown else None,
        decision=shown.decision if shown else None,
        actor=shown.actor if shown else None,
        recorded_by=shown.recorded_by if shown else None,
        channel=shown.channel if shown else None,
        comment=shown.comment if shown else None,
        decided_at=shown.decided_at if shown else None,
        votes=votes,
        verdict=verdict(policy, votes),
    )


def closed_reason(repo: ReleaseRepository, oem_id: str, release_id: str) -> str | None:
    """Why the OEM can no longer decide on ``release_id`` (installed, or being installed),
    as things stand; ``record_decisions`` checks it again under the lock an install takes."""
    return repo.signoff_closed_reason(oem_id, release_id)


def releases_for(repo: ReleaseRepository, oem_id: str, policy: SignoffPolicy = DEFAULT_POLICY) -> list[ReleaseSignoff]:
    """Every release the OEM was asked to sign off, newest first, under its ``policy``."""
    by_release: dict[str, list] = {}
    for row in repo.signoff_states(oem_id):
        by_release.setdefault(row.release_id, []).append(row)
    return [_release(repo, oem_id, rows, policy) for _, rows in sorted(by_release.items(), reverse=True)]


def release_for(
    repo: ReleaseRepository, oem_id: str, release_id: str, policy: SignoffPolicy = DEFAULT_POLICY
) -> ReleaseSignoff:
    if not RELEASE_ID_PATTERN.match(release_id or ""):
        raise NotFound(f"{release_id!r} is not a release id (expected YYYY.NN, e.g. 2026.24)")
    rows = repo.signoff_states(oem_id, release_id)
    if not rows:
        raise NotFound(f"release {release_id} has no changes waiting for sign-off by {oem_id}")
    return _release(repo, oem_id, rows, policy)


def _release(repo: ReleaseRepository, oem_id: str, rows, policy: SignoffPolicy) -> ReleaseSignoff:
    release_id = rows[0].release_id
    by_change: dict[str, list] = {}
    for row in rows:
        by_change.setdefault(row.change_id, []).append(row)
    return ReleaseSignoff(
        release_id=release_id,
        release_at=rows[0].release_at,
        changes=tuple(_change_signoff(r, policy) for r in by_change.values()),
        closed_reason=closed_reason(repo, oem_id, release_id),
    )


def approver_for(policy: SignoffPolicy, name: str | None, oem_id: str) -> Approver | None:
    """The policy's approver a decision is for (None: the OEM as one); refuses a name the
    policy does not name, and a missing one when it names its approvers."""
    if not policy.named:
        if name:
            raise NotAllowed(f"{oem_id} signs off as one (its sign-off policy names no approvers): name no approver")
        return None
    known = ", ".join(map(str, policy.approvers))
    if not name:
        raise NotAllowed(
            f"{oem_id}'s sign-off policy names its approvers ({known}): a decision must be one of theirs "
            "(a portal token bound to an approver, or --approver)"
        )
    approver = policy.approver(name)
    if approver is None:
        raise NotAllowed(f"{name!r} is not an approver in {oem_id}'s sign-off policy (approvers: {known})")
    return approver


def decide(
    repo: ReleaseRepository,
    *,
    oem_id: str,
    release_id: str,
    decision: Decision | str,
    change_ids: Sequence[str] | None = None,
    actor: str,
    channel: str,
    comment: str | None = None,
    recorded_by: str | None = None,
    policy: SignoffPolicy = DEFAULT_POLICY,
    approver: str | None = None,
) -> list[int]:
    """Record ``decision`` on the named changes of a release, or on all of them, as
    ``approver``'s of the OEM's ``policy`` (None: the OEM's as one).

    "All" means every change where the approver's current decision differs from
    ``decision`` (approving the rest after approving some one by one is not a double
    submission); naming a change that already has this decision is. Returns the new
    event ids.
    """
    if decision not in (Decision.APPROVED, Decision.REJECTED):  # an override is staff's, not a decision
        raise Invalid(f"decision must be 'approved' or 'rejected', not {str(decision)!r}")
    decision = Decision(decision)
    if channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r}")
    comment = (comment or "").strip() or None
    if decision == Decision.REJECTED and comment is None:
        raise Invalid("a rejection needs a comment saying why")
    if not actor.strip():
        raise Invalid("a decision needs the name of who took it")
    person = approver_for(policy, approver, oem_id)
    release = release_for(repo, oem_id, release_id, policy)
    if release.closed_reason:
        raise Conflict(f"{release.closed_reason}: its sign-off is closed")
    current = {c.change.id: c for c in release.changes}
    mine = {c.change.id: c.vote_of(person) for c in release.changes}

    def decided(change_id: str) -> Decision | None:
        return mine[change_id].decision if mine[change_id] else None

    whose = f" by {person.name}" if person else ""
    if change_ids is None:
        targets = [c for c in release.changes if decided(c.change.id) != decision]
        if not targets:
            raise Conflict(f"every change of release {release_id} is already {decision}{whose}")
    else:
        if not change_ids:
            raise Invalid("name at least one change, or none to decide on all of them")
        if len(set(change_ids)) != len(change_ids):
            raise Invalid("a change is listed twice")
        unknown = [c for c in change_ids if c not in current]
        if unknown:
            raise NotFound(f"change {unknown[0]!r} is not among the changes of release {release_id} {oem_id} signs off")
        same = [c for c in change_ids if decided(c) == decision]
        if same:
            raise Conflict(f"change {same[0]!r} is already {decision}{whose} (double submission)")
        targets = [current[c] for c in change_ids]
    try:
        return repo.record_decisions(
            oem_id=oem_id,
            release_id=release_id,
            expected={c.change.id: getattr(mine[c.change.id], "event_id", None) for c in targets},
            decision=decision,
            actor=actor.strip(),
            channel=channel,
            comment=comment,
            recorded_by=recorded_by,
            approver=person.name if person else None,
            approver_role=person.role if person else None,
        )
    except ReleaseDbError as exc:  # lost a race with another decision
        raise Conflict(str(exc)) from None


def override(
    repo: ReleaseRepository,
    *,
    oem_id: str,
    release_id: str,
    reason: str,
    by: str,
    change_ids: Sequence[str] | None = None,
    approver: str | None = None,
    policy: SignoffPolicy = DEFAULT_POLICY,
) -> list[int]:
    """Staff lift the rejections blocking the named changes of a release (all of them
    when none are named), or only ``approver``'s: each is recorded as an ``overridden``
    decision of that approver, with ``reason``. The rejection then counts for nothing,
    and the change needs its quorum of approvals as before. Returns the new event ids."""
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("an override needs a reason")
    if not by.strip():
        raise Invalid("an override needs the name of the staff member recording it")
    if approver is not None:
        approver_for(policy, approver, oem_id)
    release = release_for(repo, oem_id, release_id, policy)
    if release.closed_reason:
        raise Conflict(f"{release.closed_reason}: its sign-off is closed")
    current = {c.change.id: c for c in release.changes}
    if change_ids:
        if unknown := [c for c in change_ids if c not in current]:
            raise NotFound(f"change {unknown[0]!r} is not among the changes of release {release_id} {oem_id} signs off")
        chosen = [current[c] for c in dict.fromkeys(change_ids)]
    else:
        chosen = list(release.changes)
    wanted = policy.approver(approver).name if approver and policy.named else None
    by_slot: dict[str | None, dict[str, ApproverVote]] = {}
    for change in chosen:
        blocking = [v for v in change.verdict.rejections if wanted is None or v.approver == wanted]
        if change_ids and not blocking:
            whose = f" by {wanted}" if wanted else ""
            raise Conflict(f"change {change.change.id!r} has no rejection{whose} to override")
        for vote in blocking:
            by_slot.setdefault(vote.approver, {})[change.change.id] = vote
    if not by_slot:
        raise Conflict(f"no rejection blocks release {release_id} for {oem_id}: nothing to override")
    ids: list[int] = []
    try:
        for slot, votes in by_slot.items():
            person = policy.approver(slot) if policy.named else None
            ids += repo.record_decisions(
                oem_id=oem_id,
                release_id=release_id,
                expected={change_id: vote.event_id for change_id, vote in votes.items()},
                decision=Decision.OVERRIDDEN,
                actor=by.strip(),
                channel="cli",
                comment=reason,
                recorded_by=by.strip(),
                approver=person.name if person else None,
                approver_role=person.role if person else None,
            )
    except ReleaseDbError as exc:
        raise Conflict(str(exc)) from None
    return ids


EXPORT_COLUMNS = (
    "oem",
    "release",
    "change",
    "who",
    "approver",
    "role",
    "decision",
    "at_utc",
    "comment",
    "channel",
    "recorded_by",
)


def signoff_export(repo: ReleaseRepository, oem_id: str, release_id: str) -> list[dict[str, str]]:
    """The OEM's sign-off record of a release, every decision oldest first (the CSV of
    ``release-train signoff export``): who decided, as which approver and role (as they
    were when they decided), what, when, why, and the staff member who recorded it."""
    release_for(repo, oem_id, release_id)  # NotFound for a release the OEM was not asked about
    return [
        {
            "oem": e.oem_id,
            "release": e.release_id,
            "change": e.change_id,
            "who": e.actor,
            "approver": e.approver,
            "role": e.approver_role or "",
            "decision": e.decision,
            "at_utc": e.created_at.isoformat(),
            "comment": e.comment or "",
            "channel": e.channel,
            "recorded_by": e.recorded_by or "",
        }
        for e in repo.signoff_record(oem_id, release_id)
    ]
