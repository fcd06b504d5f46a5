"""Deciding an OEM delivery: what to install, and whether the OEM's sign-off allows it.

Pure functions over what the release database and the instance report, so every
decision is tested without Airflow, SSH or a database.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from release_pipeline.db.repository import ChangeApproval
from release_pipeline.models import Decision, ReleaseStatus


class DeliveryRefused(ValueError):
    """The delivery cannot start; nothing has touched the instance."""


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
        raise DeliveryRefused(
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


class GateOutcome(enum.StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    PENDING = "pending"


@dataclass(frozen=True)
class GateDecision:
    outcome: GateOutcome
    rejected: tuple[ChangeApproval, ...] = ()
    pending: tuple[str, ...] = ()
    approved: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        """JSON for trigger events and XCom: the same whether the worker or the trigger decided."""
        return {
            "outcome": str(self.outcome),
            "summary": self.summary(),
            "rejected": [
                {"change_id": r.change_id, "release_id": r.release_id, "actor": r.actor, "comment": r.comment}
                for r in self.rejected
            ],
            "pending": list(self.pending),
            "approved": list(self.approved),
        }

    def summary(self) -> str:
        if self.outcome == GateOutcome.REJECTED:
            return "; ".join(f"{r.change_id} rejected by {r.actor}: {r.comment}" for r in self.rejected)
        if self.outcome == GateOutcome.PENDING:
            return f"{len(self.pending)} change(s) awaiting sign-off: {', '.join(self.pending)}"
        return f"all {len(self.approved)} change(s) approved"


def decide_gate(states: Sequence[ChangeApproval]) -> GateDecision:
    """Approved only when the OEM approved every change; one rejection decides at once."""
    rejected = tuple(s for s in states if s.decision == Decision.REJECTED)
    pending = tuple(s.change_id for s in states if s.decision is None)
    approved = tuple(s.change_id for s in states if s.decision == Decision.APPROVED)
    if rejected:
        return GateDecision(GateOutcome.REJECTED, rejected, pending, approved)
    if pending:
        return GateDecision(GateOutcome.PENDING, (), pending, approved)
    return GateDecision(GateOutcome.APPROVED, (), (), approved)
