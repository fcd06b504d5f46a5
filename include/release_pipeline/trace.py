"""Where one change has been: merged, cut into a release, carried through the releases
that did not reach production, shipped by the first that did (its *carrier*), and for
each OEM asked, decided and installed. One answer for ``release-train trace`` (staff:
"does OEM Y have fix X yet") and the OEM portal (an OEM's own instance only).

The rules, read from the release database as it stands:

- a change belongs to the release whose cut took it (``release_changes.release_id``);
- when that release does not reach production (rejected in QA, a failed deploy, or
  not yet deployed), the change is carried into each later recorded release until the
  first one that is ``deployed``: that release ships it to the vendor production
  (:func:`carry_path`);
- an OEM's instance runs the change once it was installed with a release at or after
  the carrier, and for as long as it still runs one (a rolled-back install installed
  nothing) (:func:`running_since`);
- an OEM's decisions are its sign-off events on the change; the latest of each
  approver counts, and its sign-off policy makes a state of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.models import Change, Decision, ReleaseStatus
from release_pipeline.registry import Oem
from release_pipeline.signoff import ApproverVote
from release_pipeline.signoff_policy import ChangeVerdict, verdict

# the events of a release that put it on the vendor production (a baseline was there already)
IN_PRODUCTION_EVENTS = frozenset({str(ReleaseStatus.DEPLOYED), "baseline"})


class UnknownChange(LookupError):
    """No change of that id is recorded (changes are recorded when a release is cut)."""


@dataclass(frozen=True)
class CarryPath:
    """The releases a change went through: the cut that took it, the later releases it
    was carried into (up to and including the carrier), and the carrier (None: no
    release containing it has reached production yet)."""

    release_id: str
    carried_into: tuple[str, ...]
    carrier: str | None

    @property
    def releases(self) -> tuple[str, ...]:
        return (self.release_id, *self.carried_into)


def carry_path(release_id: str, statuses: Mapping[str, str]) -> CarryPath:
    """The path of a change cut into ``release_id``, given every recorded release's
    status by id (release ids sort as strings: ``YYYY.NN``)."""
    if release_id not in statuses:
        raise ValueError(f"release {release_id!r} is not among the recorded releases")
    carried: list[str] = []
    for later in sorted(r for r in statuses if r >= release_id):
        if later != release_id:
            carried.append(later)
        if statuses[later] == ReleaseStatus.DEPLOYED:
            return CarryPath(release_id, tuple(carried), later)
    return CarryPath(release_id, tuple(carried), None)


@dataclass(frozen=True)
class Install:
    """A release put on an OEM's instance, and when."""

    release_id: str
    at: dt.datetime


def running_since(carrier: str | None, installs: Iterable[Install], current: Install | None) -> Install | None:
    """The install from which the instance has run a change shipped by ``carrier``
    without a break (None: it does not run it now).

    ``installs`` are the deliveries that installed a release, ``current`` the release
    the instance runs now (``installed_versions``): it decides whether the change is
    there at all; the installs say since when. When they do not reach that far (a
    version recorded by hand, a baseline), the current install is the answer."""
    if carrier is None or current is None or current.release_id < carrier:
        return None
    since = None
    for install in sorted(installs, key=lambda i: (i.at, i.release_id)):
        if install.release_id < carrier:
            since = None  # an older release put back: the change was gone from then on
        elif since is None:
            since = install
    return since or current


@dataclass(frozen=True)
class OemTrace:
    """One OEM and the change: asked (for which release, when), every decision (oldest
    first), what they amount to under its sign-off policy, what its instance runs and
    since when it runs the change."""

    oem: Oem
    carrier: str | None
    asked_for: str | None
    asked_at: dt.datetime | None
    decisions: tuple[ApproverVote, ...]
    verdict: ChangeVerdict | None  # None: not asked
    runs: str | None
    running: Install | None

    @property
    def counting(self) -> frozenset[int]:
        """The ids of the decisions that count: each approver's latest."""
        latest: dict[str, int] = {}
        for vote in self.decisions:
            latest[vote.approver or ""] = vote.event_id
        return frozenset(latest.values())

    def answer(self, when: Callable[[dt.datetime], str]) -> str:
        """Does the OEM have the change, in one line ("running since ...", "asked, not
        approved", ...); ``when`` shows a moment."""
        if self.running is not None:
            return f"running since {when(self.running.at)} (installed with {self.running.release_id})"
        if self.verdict is None:
            said = "in production, not asked yet" if self.carrier else "not asked"
        elif self.verdict.state == "approved":
            said = "approved, not installed yet" if self.carrier else "asked, approved"
        elif self.verdict.state == "rejected":
            who = ", ".join(v.approver or v.actor for v in self.verdict.rejections)
            said = f"asked, rejected by {who}"
        else:
            waits = self.verdict.waiting_for()
            said = "asked, not approved" + (f" (waits for {waits})" if self.oem.signoff_policy.named else "")
        if self.carrier is None:
            said += "; not in production yet"
        return said + (f"; runs {self.runs}" if self.runs else "")


@dataclass(frozen=True)
class ChangeTrace:
    """A change's whole path (see the module's rules)."""

    change: Change
    path: CarryPath
    statuses: Mapping[str, str]  # of the path's releases
    events: Mapping[str, tuple]  # release id -> its events (release_events rows), oldest first
    in_production_at: dt.datetime | None  # when the carrier reached production
    oems: tuple[OemTrace, ...]


def _vote(row) -> ApproverVote:
    return ApproverVote(
        approver=row.approver or None,
        approver_role=row.approver_role,
        decision=Decision(row.decision),
        actor=row.actor,
        recorded_by=row.recorded_by,
        channel=row.channel,
        comment=row.comment,
        decided_at=row.created_at,
        event_id=row.id,
    )


def trace(repo: ReleaseRepository, change_id: str, oems: Sequence[Oem]) -> ChangeTrace:
    """The path of ``change_id`` and where each of ``oems`` stands with it; raises
    :class:`UnknownChange` for an id no release recorded."""
    change = repo.changes_by_id([change_id]).get(change_id)
    if change is None:
        raise UnknownChange(f"no change {change_id!r} is recorded (changes are recorded when a release is cut)")
    statuses = repo.release_statuses()
    path = carry_path(change.release_id, statuses)
    events: dict[str, list] = {r: [] for r in path.releases}
    for event in repo.release_events_of(path.releases):
        # another change's text corrected in the same release is no part of this one's path
        if event.event != "change_edited" or (event.detail or "").startswith(f"{change_id}:"):
            events[event.release_id].append(event)
    shipped = [e.created_at for e in events.get(path.carrier, ()) if e.event in IN_PRODUCTION_EVENTS]
    ids = [o.id for o in oems]
    asked = {r.oem_id: r for r in repo.change_requests(change_id, ids)}
    decisions: dict[str, list[ApproverVote]] = {}
    for row in repo.change_decisions(change_id, ids):
        decisions.setdefault(row.oem_id, []).append(_vote(row))
    installs: dict[str, list[Install]] = {}
    for row in repo.installs(ids):
        installs.setdefault(row.oem_id, []).append(Install(row.release_id, row.finished_at or row.updated_at))
    current = repo.installed_versions()
    per_oem = []
    for oem in oems:
        request, votes, now = asked.get(oem.id), tuple(decisions.get(oem.id, ())), current.get(oem.id)
        running_now = Install(now.release_id, now.installed_at) if now else None
        per_oem.append(
            OemTrace(
                oem=oem,
                carrier=path.carrier,
                asked_for=request.release_id if request else None,
                asked_at=request.requested_at if request else None,
                decisions=votes,
                verdict=verdict(oem.signoff_policy, votes) if request else None,
                runs=now.release_id if now else None,
                running=running_since(path.carrier, installs.get(oem.id, ()), running_now),
            )
        )
    return ChangeTrace(
        change=change,
        path=path,
        statuses={r: statuses[r] for r in path.releases},
        events={r: tuple(e) for r, e in events.items()},
        in_production_at=max(shipped, default=None),
        oems=tuple(per_oem),
    )
