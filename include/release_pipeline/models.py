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
