"""Sign-off rules shared by the OEM portal and the operator CLI.

Whoever records a decision (the OEM in the portal, staff on its behalf in the CLI),
the same checks apply, and a refused request writes nothing:

- only changes the OEM was asked to sign off, of a release it was asked about;
- a decision equal to the change's current one is a double submission;
- a release already installed (or being installed) on the OEM's instance is closed;
- a rejection says why.

Errors carry a kind (:class:`NotFound`, :class:`Conflict`, :class:`Invalid`) so the
portal can answer 404/409/422 and the CLI exit 2, with the same message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.delivery import SignoffAssessment
from release_pipeline.models import Change, Decision, DeliveryStatus, ReleaseDbError
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import RELEASE_ID_PATTERN

# a delivery in one of these states has put (or is putting) the release on the instance
CLOSED_DELIVERIES = frozenset({DeliveryStatus.INSTALLING, DeliveryStatus.INSTALLED, DeliveryStatus.NOOP})
CHANNELS = frozenset({"portal", "cli"})


class SignoffError(ValueError):
    """A sign-off request that is refused; nothing was recorded."""


class NotFound(SignoffError):
    """Unknown to this OEM: never says whether it exists for another one."""


class Conflict(SignoffError):
    """Valid, but the current state does not allow it (double submission, delivered)."""


class Invalid(SignoffError):
    """The request itself is incomplete (e.g. a rejection without a comment)."""


@dataclass(frozen=True)
class ChangeSignoff:
    change: Change
    event_id: int | None
    decision: Decision | None
    actor: str | None
    recorded_by: str | None
    channel: str | None
    comment: str | None
    decided_at: dt.datetime | None

    @property
    def state(self) -> str:
        return str(self.decision) if self.decision else "pending"


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
        decisions = {c.decision for c in self.changes}
        if Decision.REJECTED in decisions:
            return "rejected"
        if None in decisions:
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

    Today's rule has one approver, the OEM itself: a pending change needs its approval,
    and so does a rejected one (the OEM changing its mind). The forecast, the reminders
    and the digest ask only this function, so a sign-off policy with named approvers
    and quorums plugs in here."""
    approvers = (oem.display_name,)
    owed = []
    for release in assessment.releases:
        owed += [OwedSignoff(release.release_id, c, "pending", approvers) for c in release.pending]
        owed += [OwedSignoff(release.release_id, r.change_id, "rejected", approvers) for r in release.rejected]
    return owed


def _change_signoff(row) -> ChangeSignoff:
    return ChangeSignoff(
        change=Change.from_row(row),
        event_id=row.event_id,
        decision=Decision(row.decision) if row.decision else None,
        actor=row.actor,
        recorded_by=row.recorded_by,
        channel=row.channel,
        comment=row.comment,
        decided_at=row.decided_at,
    )


def closed_reason(repo: ReleaseRepository, oem_id: str, release_id: str) -> str | None:
    """Why the OEM can no longer decide on ``release_id``: releases are cumulative, so
    an installed later release (or one being installed) delivered it too."""
    installed = repo.installed_version(oem_id)
    if installed is not None and installed.release_id >= release_id:
        return f"release {release_id} is already installed (the instance runs {installed.release_id})"
    for delivery in repo.deliveries(oem_id):
        if delivery.release_id >= release_id and delivery.status == DeliveryStatus.INSTALLING:
            return f"the install of {delivery.release_id} on the instance has started"
        if delivery.release_id >= release_id and delivery.status in CLOSED_DELIVERIES:
            return f"release {release_id} is already delivered (delivery of {delivery.release_id}: {delivery.status})"
    return None


def releases_for(repo: ReleaseRepository, oem_id: str) -> list[ReleaseSignoff]:
    """Every release the OEM was asked to sign off, newest first."""
    by_release: dict[str, list] = {}
    for row in repo.signoff_states(oem_id):
        by_release.setdefault(row.release_id, []).append(row)
    return [_release(repo, oem_id, rows) for _, rows in sorted(by_release.items(), reverse=True)]


def release_for(repo: ReleaseRepository, oem_id: str, release_id: str) -> ReleaseSignoff:
    if not RELEASE_ID_PATTERN.match(release_id or ""):
        raise NotFound(f"{release_id!r} is not a release id (expected YYYY.NN, e.g. 2026.24)")
    rows = repo.signoff_states(oem_id, release_id)
    if not rows:
        raise NotFound(f"release {release_id} has no changes waiting for sign-off by {oem_id}")
    return _release(repo, oem_id, rows)


def _release(repo: ReleaseRepository, oem_id: str, rows) -> ReleaseSignoff:
    release_id = rows[0].release_id
    return ReleaseSignoff(
        release_id=release_id,
        release_at=rows[0].release_at,
        changes=tuple(_change_signoff(r) for r in rows),
        closed_reason=closed_reason(repo, oem_id, release_id),
    )


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
) -> list[int]:
    """Record ``decision`` on the named changes of a release, or on all of them.

    "All" means every change whose current state differs from ``decision`` (approving
    the rest after approving some one by one is not a double submission); naming a
    change that already has this decision is. Returns the new event ids.
    """
    try:
        decision = Decision(decision)
    except ValueError:
        raise Invalid(f"decision must be 'approved' or 'rejected', not {decision!r}") from None
    if channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r}")
    comment = (comment or "").strip() or None
    if decision == Decision.REJECTED and comment is None:
        raise Invalid("a rejection needs a comment saying why")
    if not actor.strip():
        raise Invalid("a decision needs the name of who took it")
    release = release_for(repo, oem_id, release_id)
    if release.closed_reason:
        raise Conflict(f"{release.closed_reason}: its sign-off is closed")
    current = {c.change.id: c for c in release.changes}
    if change_ids is None:
        targets = [c for c in release.changes if c.decision != decision]
        if not targets:
            raise Conflict(f"every change of release {release_id} is already {decision}")
    else:
        if not change_ids:
            raise Invalid("name at least one change, or none to decide on all of them")
        if len(set(change_ids)) != len(change_ids):
            raise Invalid("a change is listed twice")
        unknown = [c for c in change_ids if c not in current]
        if unknown:
            raise NotFound(f"change {unknown[0]!r} is not among the changes of release {release_id} {oem_id} signs off")
        same = [c for c in change_ids if current[c].decision == decision]
        if same:
            raise Conflict(f"change {same[0]!r} is already {decision} (double submission)")
        targets = [current[c] for c in change_ids]
    try:
        return repo.record_decisions(
            oem_id=oem_id,
            release_id=release_id,
            expected={c.change.id: c.event_id for c in targets},
            decision=decision,
            actor=actor.strip(),
            channel=channel,
            comment=comment,
            recorded_by=recorded_by,
        )
    except ReleaseDbError as exc:  # lost a race with another decision
        raise Conflict(str(exc)) from None
