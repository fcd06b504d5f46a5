"""Deciding an OEM delivery: what to install, and whether the OEM's sign-off allows it.

Pure functions over what the release database and the instance report, so every
decision is tested without Airflow, SSH or a database.

The rules (README, "Release delivery"):

- only releases that reached the vendor production are delivered; builds are
  cumulative (``release_pipeline.ledger``), so installing R brings every change of every
  recorded release between the instance's version and R: a release that never reached
  production is never installed, but its changes ship with the next one that did, are
  asked about and can block it there;
- a run aims at the newest production release of its cycle and settles on install
  day: the target is the newest production release up to which the OEM approved
  every change (one rejection or one pending change stops the count there), each
  change's state given by the OEM's sign-off policy (``signoff_policy.verdict``);
- sign-off is due when install day's maintenance window opens; an OEM that opted in
  (``install_when_approved``) is installed as soon as it approves within the cycle.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from release_pipeline.ledger import cancelled, carrier
from release_pipeline.models import ChangeApproval, ReleaseStatus
from release_pipeline.signoff_policy import DEFAULT_POLICY, SignoffPolicy, verdict


class DeliveryRefused(ValueError):
    """The delivery cannot start; nothing has touched the instance."""


class UnknownInstanceVersion(DeliveryRefused):
    """The instance runs a version the release database does not know: flag it."""


@dataclass(frozen=True)
class DeliveryPlan:
    oem_id: str
    target: str
    installed: str
    change_ids: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what the operator should know (e.g. a corrected record)

    @property
    def noop(self) -> bool:
        return self.target == self.installed


def plan_delivery(
    *,
    oem_id: str,
    target: str,
    target_status: str | None,
    instance_version: str,
    recorded_version: str | None,
    known_releases: set[str],
    delta_change_ids: Sequence[str],
) -> DeliveryPlan:
    """Check a delivery before it starts.

    The instance is the truth about what runs; the release database must know that
    version, or the instance is flagged rather than overwritten blindly.
    """
    if target_status is None:
        raise DeliveryRefused(f"OEM {oem_id!r}: release {target} is not in the release database")
    if target_status != ReleaseStatus.DEPLOYED:
        raise DeliveryRefused(
            f"OEM {oem_id!r}: release {target} is {target_status!r}, only releases deployed to the "
            "vendor production (and tested there) are delivered"
        )
    if instance_version not in known_releases:
        raise UnknownInstanceVersion(
            f"OEM {oem_id!r}: the instance reports version {instance_version!r}, which the release database "
            f"does not know (recorded: {recorded_version!r}); flagged, not overwritten: check the instance"
        )
    if target < instance_version:
        raise DeliveryRefused(
            f"OEM {oem_id!r}: release {target} is older than the installed {instance_version}; "
            "a downgrade is not a delivery"
        )
    notes = ()
    if recorded_version != instance_version:
        notes = (f"the release database recorded {recorded_version!r} but the instance runs {instance_version!r}",)
    return DeliveryPlan(oem_id, target, instance_version, tuple(delta_change_ids), notes)


def aim(production: Iterable[str], *, installed: str, cycle_release: str) -> str | None:
    """The release a run aims at as things stand: the newest production release of
    the cycle (or before it) newer than what the instance runs."""
    newer = [r for r in production if installed < r <= cycle_release]
    return max(newer) if newer else None


@dataclass(frozen=True)
class ReleaseApproval:
    """One production release's changes, those it carries included, as one OEM signed
    them off."""

    release_id: str
    approved: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    rejected: tuple[ChangeApproval, ...] = ()  # each blocking rejection (several people may reject one change)
    waiting: tuple[tuple[str, str], ...] = ()  # (pending change, who it waits for) under a named policy
    # (pending change, the approvers whose approval would still count) under a named policy
    missing: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def complete(self) -> bool:
        return not self.pending and not self.rejected

    @property
    def rejected_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.change_id for r in self.rejected))

    def reasons(self) -> list[str]:
        said = [
            f"{r.change_id} (release {r.release_id}) rejected by {r.approver or r.actor}: {r.comment}"
            for r in self.rejected
        ]
        if self.waiting:
            said.extend(f"{change} (release {self.release_id}) waits for {who}" for change, who in self.waiting)
        elif self.pending:
            said.append(f"{', '.join(self.pending)} (release {self.release_id}) not signed off")
        return said


@dataclass(frozen=True)
class SignoffAssessment:
    """Where an OEM's sign-off of ``(installed, aim]`` stands."""

    installed: str
    aim: str | None
    # production releases in (installed, aim], oldest first, each with what it ships
    releases: tuple[ReleaseApproval, ...]

    @property
    def blocking(self) -> ReleaseApproval | None:
        """The oldest release not approved in full: nothing from it on can be installed."""
        return next((r for r in self.releases if not r.complete), None)

    @property
    def target(self) -> str | None:
        """The newest release up to which every change is approved (None: none is)."""
        best = None
        for release in self.releases:
            if not release.complete:
                break
            best = release.release_id
        return best

    @property
    def complete(self) -> bool:
        return self.aim is not None and self.blocking is None

    @property
    def rejected(self) -> bool:
        blocking = self.blocking
        return bool(blocking and blocking.rejected)

    def change_ids(self, through: str | None = None) -> list[str]:
        through = through or self.aim
        return [
            c
            for r in self.releases
            if through is not None and r.release_id <= through
            for c in (*r.approved, *r.pending, *r.rejected_ids)
        ]

    def reasons(self) -> list[str]:
        blocking = self.blocking
        return blocking.reasons() if blocking else []

    def summary(self) -> str:
        if self.aim is None:
            return f"nothing newer than {self.installed} has reached production"
        if self.complete:
            return f"every change up to {self.aim} approved"
        return "; ".join(self.reasons())


def assess(
    *,
    installed: str,
    aim: str | None,
    production: Iterable[str],
    states: Sequence[ChangeApproval],
    policy: SignoffPolicy = DEFAULT_POLICY,
) -> SignoffAssessment:
    """``production``: release ids that reached production; ``states``: the latest
    decision of each of the OEM's approvers on every change of the recorded releases in
    ``(installed, aim]`` (a change no one decided on has one row without a decision; a
    release without changes is approved as it stands); ``policy``: the OEM's sign-off
    policy, which makes a state of them. Each change counts with the production release
    that ships it (its own, or the one it is carried into), and a change and its revert
    that both ship cancel out (the ledger's rules L2 to L4)."""
    if aim is None:
        return SignoffAssessment(installed, None, ())
    shipping = sorted(r for r in production if installed < r <= aim)
    by_release: dict[str, dict[str, list[ChangeApproval]]] = {r: {} for r in shipping}
    in_span = [s for s in states if installed < s.release_id <= aim]
    # a change and its revert cancel for an instance getting a release that holds both,
    # not for one getting a release between them: each release's own prefix decides
    gone = {r: cancelled({s.change_id: s.reverts for s in in_span if s.release_id <= r}) for r in shipping}
    for state in in_span:
        home = carrier(state.release_id, shipping)
        if home is not None and state.change_id not in gone[home]:
            by_release[home].setdefault(state.change_id, []).append(state)
    releases = []
    for release_id, changes in sorted(by_release.items()):
        verdicts = {change_id: verdict(policy, votes) for change_id, votes in changes.items()}
        pending = tuple(c for c, v in verdicts.items() if v.state == "pending")
        releases.append(
            ReleaseApproval(
                release_id,
                approved=tuple(c for c, v in verdicts.items() if v.state == "approved"),
                pending=pending,
                rejected=tuple(r for v in verdicts.values() for r in v.rejections),
                waiting=tuple((c, verdicts[c].waiting_for()) for c in pending) if policy.named else (),
                missing=tuple((c, tuple(a.name for a in verdicts[c].missing)) for c in pending) if policy.named else (),
            )
        )
    return SignoffAssessment(installed, aim, tuple(releases))


class GateVerdict(enum.StrEnum):
    WAIT = "wait"
    SETTLED = "settled"  # the target is decided (fully approved, or install day came)
    DEADLINE = "deadline"  # the cycle's time for sign-off is over


def gate_verdict(
    assessment: SignoffAssessment, *, now: dt.datetime, settle_at: dt.datetime, deadline: dt.datetime
) -> GateVerdict:
    """Whether the approval gate may stop waiting.

    Sign-off is taken until install day's window opens (``settle_at``): until then an
    OEM may still change its mind, and the install cannot start before the window
    anyway, so the gate settles then on what is approved; a full sign-off or a
    rejection does not settle it sooner (the simulated year found an OEM that approved
    2030.05 in full, rejected a change of 2030.06 before the window opened, and got
    nothing, because the gate had settled on a full sign-off of 2030.06 the moment
    install day began). Nothing to aim at ends the wait at once. For most OEMs
    ``deadline`` is ``settle_at``; an OEM that installs as soon as it approves keeps
    waiting (until the cycle ends) while nothing at all is installable yet, and settles
    as soon as its sign-off is full or a rejection decides it.
    """
    if assessment.aim is None:
        return GateVerdict.SETTLED
    if now < settle_at:
        return GateVerdict.WAIT
    if assessment.complete or assessment.rejected:
        return GateVerdict.SETTLED
    if now >= deadline:
        return GateVerdict.DEADLINE
    return GateVerdict.WAIT if assessment.target is None else GateVerdict.SETTLED
