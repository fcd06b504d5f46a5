"""Sign-off policies: who at an OEM signs a change off, and how many of them must.

An OEM is a company: its QA lead and its product owner may both have to approve. Its
entry in ``config/oems.yaml`` may name its approvers (a name and a role each) and a
quorum per change (N of them, optionally at least one of certain roles). Without a
``signoff_policy`` the OEM signs off as one: the latest decision on a change, by
anyone of the OEM, is its state (the behaviour before policies existed).

:func:`verdict` is the one place the policy is applied. The approval gate, the last
look before an install, the portal, ``release-train status`` / ``explain`` and the
sign-off export all call it with the latest decision of each approver on a change:

- a change is approved when the quorum holds: at least ``quorum`` of the policy's
  approvers approved it, and each role of ``require_roles`` is among them;
- one rejection blocks it, whatever the others decided, until the person who
  rejected it approves (their own latest decision is what counts) or staff record an
  override with a reason (``release-train signoff override``), after which that
  person's rejection counts for nothing and the quorum is needed as before;
- only the approvers the policy names *now* count. An approver removed from the
  policy while a release waits takes their decisions with them, approvals and
  rejections alike: they no longer speak for the OEM. Decisions taken before the OEM
  had a policy (no approver recorded) do not count under one either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from release_pipeline import inputs

ROLE_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
APPROVED, REJECTED, OVERRIDDEN = "approved", "rejected", "overridden"
State = Literal["approved", "rejected", "pending"]


class Approver(BaseModel):
    """A person who signs off for the OEM; portal tokens are bound to one by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=inputs.MAX_NAME, pattern=inputs.NONBLANK_LINE)
    role: str = Field(pattern=ROLE_PATTERN, description="e.g. qa, product")

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class SignoffPolicy(BaseModel):
    """``quorum`` of ``approvers`` approve each change, with ``require_roles`` among them.

    No approvers: the default, one decision by anyone of the OEM settles a change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approvers: tuple[Approver, ...] = ()
    quorum: int = Field(1, ge=1, description="how many approvers must approve each change")
    require_roles: tuple[str, ...] = Field((), description="roles of which at least one approver must approve")

    @field_validator("approvers")
    @classmethod
    def _distinct_names(cls, approvers: tuple[Approver, ...]) -> tuple[Approver, ...]:
        seen: set[str] = set()
        for approver in approvers:
            if approver.name.casefold() in seen:
                raise ValueError(f"approver {approver.name!r} is listed twice")
            seen.add(approver.name.casefold())
        return approvers

    @field_validator("quorum")
    @classmethod
    def _quorum_reachable(cls, quorum: int, info: ValidationInfo) -> int:
        approvers = info.data.get("approvers")
        if approvers is None:  # approvers itself is invalid: reported there
            return quorum
        if quorum > max(len(approvers), 1):
            named = f"only {len(approvers)} approver(s) are named" if approvers else "no approvers are named"
            raise ValueError(f"a quorum of {quorum} can never be reached: {named}")
        return quorum

    @field_validator("require_roles")
    @classmethod
    def _known_roles(cls, roles: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        approvers, quorum = info.data.get("approvers"), info.data.get("quorum")
        if approvers is None:
            return roles
        known = sorted({a.role for a in approvers})
        for role in roles:
            if role not in known:
                have = f"the approvers' roles are {', '.join(known)}" if known else "no approvers are named"
                raise ValueError(f"role {role!r} is required but no approver has it ({have})")
        if len(set(roles)) != len(roles):
            raise ValueError("a role is listed twice")
        if quorum is not None and len(roles) > quorum:
            raise ValueError(f"{len(roles)} roles are required but the quorum is {quorum}: raise the quorum")
        return roles

    @property
    def named(self) -> bool:
        """True when the policy names its approvers (False: the default policy)."""
        return bool(self.approvers)

    def approver(self, name: str | None) -> Approver | None:
        if not name:
            return None
        return next((a for a in self.approvers if a.name.casefold() == name.casefold()), None)

    def describe(self) -> str:
        if not self.named:
            return "one approval by anyone of the OEM"
        roles = f", including {' and '.join(self.require_roles)}" if self.require_roles else ""
        return f"{self.quorum} of {', '.join(map(str, self.approvers))}{roles}"


DEFAULT_POLICY = SignoffPolicy()


class Vote(Protocol):
    """The latest decision of one approver on one change, as the release database has it.
    ``approver`` is None for a decision no approver was named for (the default policy)."""

    @property
    def approver(self) -> str | None: ...
    @property
    def decision(self) -> str | None: ...  # approved | rejected | overridden | None (no decision)
    @property
    def event_id(self) -> int | None: ...
    @property
    def actor(self) -> str | None: ...
    @property
    def comment(self) -> str | None: ...
    @property
    def decided_at(self) -> dt.datetime | None: ...


@dataclass(frozen=True)
class ChangeVerdict:
    """Where one change stands under the policy."""

    state: State
    approvals: tuple = ()  # the votes that count as approvals
    rejections: tuple = ()  # the rejections that block it
    missing: tuple[Approver, ...] = ()  # approvers whose approval would still count
    needed: int = 0  # how many more approvals the quorum needs
    missing_roles: tuple[str, ...] = ()  # required roles no approval came from yet
    ignored: tuple = ()  # decisions of people the policy does not name (any more)

    def waiting_for(self) -> str | None:
        """Who still has to approve, in a sentence; None when nothing is missing."""
        if self.state != "pending":
            return None
        if not self.missing and not self.missing_roles:
            return "an approval"
        said = []
        if self.needed:
            names = ", ".join(map(str, self.missing))
            said.append(f"{self.needed} more approval{'s' if self.needed > 1 else ''} of {names}")
        for role in self.missing_roles:
            names = ", ".join(a.name for a in self.missing if a.role == role)
            said.append(f"an approval by a {role} approver ({names})")
        return "; ".join(said)


def _order(vote) -> tuple:
    return (vote.event_id or 0, vote.decided_at or dt.datetime.min.replace(tzinfo=dt.UTC))


def verdict(policy: SignoffPolicy, votes: Iterable[Vote]) -> ChangeVerdict:
    """The state of one change given each approver's latest decision on it (rows without
    a decision are ignored): approved only when the quorum holds, rejected while a
    rejection stands, else pending with who is still missing."""
    decided = [v for v in votes if v.decision is not None]
    if not policy.named:
        latest = max(decided, key=_order) if decided else None
        if latest is not None and latest.decision == APPROVED:
            return ChangeVerdict("approved", approvals=(latest,))
        if latest is not None and latest.decision == REJECTED:
            return ChangeVerdict("rejected", rejections=(latest,))
        return ChangeVerdict("pending", needed=1)
    counted, ignored = {}, []
    for vote in decided:
        approver = policy.approver(vote.approver)
        if approver is None:
            ignored.append(vote)
            continue
        # one vote per approver: the latest wins should a caller pass several
        if approver.name not in counted or _order(vote) > _order(counted[approver.name][1]):
            counted[approver.name] = (approver, vote)
    rejections = tuple(v for _, v in counted.values() if v.decision == REJECTED)
    if rejections:
        return ChangeVerdict("rejected", rejections=rejections, ignored=tuple(ignored))
    approving = [(a, v) for a, v in counted.values() if v.decision == APPROVED]
    approvals = tuple(v for _, v in approving)
    approved_by = {a.name for a, _ in approving}
    roles = {a.role for a, _ in approving}
    missing_roles = tuple(r for r in policy.require_roles if r not in roles)
    needed = max(policy.quorum - len(approving), 0)
    if not needed and not missing_roles:
        return ChangeVerdict("approved", approvals=approvals, ignored=tuple(ignored))
    missing = tuple(a for a in policy.approvers if a.name not in approved_by)
    return ChangeVerdict(
        "pending",
        approvals=approvals,
        missing=missing,
        needed=needed,
        missing_roles=missing_roles,
        ignored=tuple(ignored),
    )
