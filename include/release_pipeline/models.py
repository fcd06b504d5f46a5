"""The vocabulary shared by the release database, the DAGs, the portal and the CLI."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass


class ChangeType(enum.StrEnum):
    FEATURE = "feature"
    IMPROVEMENT = "improvement"
    FIX = "fix"
    COMPONENT = "component"


class ReleaseStatus(enum.StrEnum):
    CUT = "cut"  # changes recorded, waiting for QA
    EMPTY = "empty"  # nothing merged since the previous release
    QA_APPROVED = "qa_approved"
    QA_REJECTED = "qa_rejected"
    DEPLOYED = "deployed"  # on the vendor production
    DEPLOY_FAILED = "deploy_failed"


class Decision(enum.StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    # staff lifted an approver's rejection (with a reason); it no longer counts either way
    OVERRIDDEN = "overridden"
    # an approval that no longer stands: the OEM had the change rolled back off its
    # instance (release_pipeline.rollbacks); the change is pending again for that approver
    WITHDRAWN = "withdrawn"


class DeliveryStatus(enum.StrEnum):
    WAITING = "waiting"  # run started, waiting for the install date or approvals
    INSTALLING = "installing"
    INSTALLED = "installed"
    NOOP = "noop"  # the OEM already runs the target release
    REJECTED = "rejected"  # an OEM rejected a change; nothing installed
    SKIPPED = "skipped"  # no decision by the deadline, or a freeze; rolls over
    ROLLED_BACK = "rolled_back"  # install or verification failed, previous version restored
    FAILED = "failed"
    NOT_ATTEMPTED = "not_attempted"  # the release database was unreachable while the gate waited


class RollbackStatus(enum.StrEnum):
    REQUESTED = "requested"  # by the OEM; staff decide
    APPROVED = "approved"  # runs in the OEM's next maintenance window outside a freeze
    REFUSED = "refused"
    DONE = "done"  # the instance runs the version it ran before
    FAILED = "failed"  # the rollback command ran and the instance did not come back: needs attention


class FeedbackCategory(enum.StrEnum):
    GENERAL = "general_feedback"
    SUGGESTED_COMPONENT = "suggested_component_improvement"
    SUGGESTED_FUNCTIONALITY = "suggested_functionality_improvement"
    REQUIRED_FUNCTIONALITY = "required_functionality"
    REQUIRED_COMPONENT = "required_component"
    USAGE_EXPERIENCE = "usage_experience"
    FUTURE_PROJECTS = "future_projects"
    USE_CASES = "use_cases"


class SideEffectStatus(enum.StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Change:
    """One change merged into the platform, as the change feed reports it."""

    id: str
    type: ChangeType
    component: str
    title: str
    description: str
    breaking: bool
    merged_at: dt.datetime
    release_id: str | None = None
    roadmap_items: tuple[str, ...] = ()  # the roadmap items it delivers (their ids)
    reverts: str | None = None  # the id of the change this one reverts

    @classmethod
    def from_row(cls, row) -> Change:
        """A change as the release database stores it (a ``release_changes`` row, or a
        query selecting its columns)."""
        return cls(
            id=row.change_id,
            type=ChangeType(row.type),
            component=row.component,
            title=row.title,
            description=row.description,
            breaking=row.breaking,
            merged_at=row.merged_at,
            release_id=row.release_id,
            reverts=row.reverts,
        )


@dataclass(frozen=True)
class ChangeApproval:
    """The latest decision of one approver of an OEM on one change (``decision`` None: no
    one decided yet); the OEM's sign-off policy makes the change's state of them."""

    change_id: str
    release_id: str
    decision: Decision | None
    actor: str | None
    comment: str | None
    decided_at: dt.datetime | None
    approver: str | None = None  # None: no approver named (the OEM as one)
    event_id: int | None = None
    recorded_by: str | None = None
    reverts: str | None = None  # the change's own: the change it reverts (the ledger's rule L4)


@dataclass(frozen=True)
class SideEffectClaim:
    """What the idempotency ledger answers before a side effect is performed."""

    key: str
    done: bool  # True: performed by an earlier attempt, do not repeat
    attempt: int
    result: dict | None


class ReleaseDbError(ValueError):
    """A write the release database refuses; the message names what and why."""


class SignoffClosed(ReleaseDbError):
    """A decision on a release already installed, or being installed, on the OEM's instance."""
