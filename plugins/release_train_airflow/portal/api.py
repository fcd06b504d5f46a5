"""The portal's JSON API (``/api/v1``): the same actions as the pages, for OEM tooling."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from release_pipeline import inputs
from release_pipeline.models import FeedbackCategory
from release_pipeline.roadmap import FeedbackLimitReached
from release_pipeline.signoff import SignoffError, release_for, releases_for
from release_train_airflow.portal import views
from release_train_airflow.portal.auth import Caller, api_caller


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="where: `body`, `path` or `query`, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """Every refusal: one readable sentence, and for malformed input the fields at fault."""

    detail: str
    errors: list[FieldProblem] | None = Field(None, description="for 422 on malformed input: each field at fault")


def problem(description: str) -> dict:
    return {"description": description, "model": Problem}


ERRORS = {
    400: problem("a body that cannot be read (not UTF-8)"),
    401: problem("missing, unknown, expired or revoked token"),
    422: problem("malformed input: the detail names the field"),
    429: problem("too many failed sign-ins with this token from your address: retry after `Retry-After` seconds"),
    503: problem("withheld: the response did not pass the portal's white-label check"),
}
router = APIRouter(prefix="/api/v1", tags=["OEM portal"], responses=ERRORS)
ReleaseId = Annotated[
    str, Path(max_length=7, pattern=inputs.RELEASE_ID, description="a release id like 2026.24", examples=["2026.24"])
]
ChangeId = Annotated[str, Field(**inputs.CHANGE.field()), inputs.CHANGE.validator("change")]
ChangePath = Annotated[str, Path(**inputs.CHANGE.field(), description="a change id", examples=["CHG-1"])]


def http_error(exc: SignoffError) -> HTTPException:
    return HTTPException(views.signoff_status(exc), str(exc))


# -- models (the OpenAPI schema) ----------------------------------------------------------------
class Me(BaseModel):
    oem_id: str
    organisation: str
    product: str
    timezone: str
    signed_in_as: str
    approver: str | None = Field(
        description="the approver of your organisation's sign-off policy you decide as (null: your organisation "
        "signs off as one, or this token is bound to no approver and cannot decide)"
    )
    signoff_policy: str = Field(description="who signs off each change, e.g. '2 of Olga (qa), Pat (product)'")


class ApprovalOut(BaseModel):
    approver: str
    role: str | None
    decided_at: str | None


class ChangeOut(BaseModel):
    id: str
    type: str
    component: str
    title: str
    description: str
    breaking: bool
    state: Literal["pending", "approved", "rejected"]
    decided_by: str | None
    recorded_by: str | None = Field(description="vendor staff who recorded the decision on your behalf")
    channel: str | None
    comment: str | None
    decided_at: str | None
    approvals: list[ApprovalOut] = Field(description="the approvals that count under your sign-off policy so far")
    waiting_for: str | None = Field(description="who still has to approve (null unless pending)")


class ReleaseSummary(BaseModel):
    release_id: str
    released_at: str
    signoff_due: str | None = Field(description="your sign-off deadline for it (none once it is installed)")
    state: Literal["pending", "approved", "rejected", "installed"]
    counts: dict[str, int]
    open: bool = Field(description="false once the release is installed: decisions are closed")
    closed_reason: str | None


class Notes(BaseModel):
    subject: str
    markdown: str
    html: str


class ReleaseDetail(ReleaseSummary):
    changes: list[ChangeOut]
    notes: Notes


# the changes a decision names; omitted: every change not yet so decided
ChangeIds = Annotated[
    list[ChangeId] | None,
    Field(
        min_length=1,
        max_length=inputs.MAX_CHANGES,
        description="change ids, each once; omit to decide on every change not yet so decided",
        json_schema_extra={"uniqueItems": True},
    ),
]


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Approval")

    decision: Literal["approved"]
    changes: ChangeIds = None
    comment: Annotated[str | None, inputs.COMMENT.validator("comment")] = Field(None, **inputs.COMMENT.field())


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Rejection")

    decision: Literal["rejected"]
    changes: ChangeIds = None
    comment: Annotated[str, inputs.COMMENT.validator("comment")] = Field(
        max_length=inputs.MAX_COMMENT, pattern=inputs.NONBLANK_TEXT, description="why: a rejection needs a comment"
    )


DecisionIn = Approval | Rejection


class DecisionOut(BaseModel):
    release_id: str
    decision: str
    event_ids: list[int]
    release: ReleaseDetail


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: FeedbackCategory
    title: Annotated[str, inputs.TITLE.validator("title")] = Field(**inputs.TITLE.field())
    body: Annotated[str, inputs.BODY.validator("body")] = Field("", **inputs.BODY.field())
    component: Annotated[str | None, inputs.COMPONENT.validator("component")] = Field(None, **inputs.COMPONENT.field())


class FeedbackOut(BaseModel):
    id: int
    category: FeedbackCategory
    category_label: str
    title: str
    body: str
    component: str | None
    submitted_by: str
    channel: str
    created_at: str
    on_roadmap: str | None = Field(description="the published roadmap item it counts for; null: not (yet) on one")


class ScheduledDelivery(BaseModel):
    release_id: str
    releases: list[str]
    install_from: str
    signoff_due: str = Field(description="the sign-off deadline: the install window's opening minus your margin")
    freeze: str | None
    signoff: dict[str, str]


class DeliveryRecord(BaseModel):
    release_id: str
    status: str
    reason: str | None
    from_release_id: str | None
    started_at: str | None
    finished_at: str | None


class Installed(BaseModel):
    release_id: str
    installed_at: str


class Deliveries(BaseModel):
    installed: Installed | None
    schedule: list[ScheduledDelivery]
    history: list[DeliveryRecord]


class RoadmapItem(BaseModel):
    rank: int
    id: str
    title: str = Field(description="the vendor's words")
    description: str | None = Field(description="the vendor's public description")
    kind: str
    component: str | None
    target_release_id: str | None
    asked_by: int = Field(description="how many customers ask for it (yours included)")
    planned_for: str | None = Field(description="the release that brings it to your instance; null: not yet planned")
    public_reason: str
    yours: bool = Field(description="your organisation asked for it")


class Move(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    title: str
    from_: int = Field(alias="from")
    to: int


class RoadmapChanges(BaseModel):
    first: bool
    added: list[str]
    removed: list[str]
    moved: list[Move]


class ShippedItem(BaseModel):
    id: str
    title: str
    release_id: str = Field(description="the release that shipped it")
    yours: bool = Field(description="your organisation asked for it")


class Roadmap(BaseModel):
    horizon: list[str] = Field(description="the release each of the next two delivery cycles installs")
    generated_at: str
    items: list[RoadmapItem]
    changes: RoadmapChanges
    shipped: list[ShippedItem] = Field(default_factory=list, description="items shipped, newest release first")


class Released(BaseModel):
    release_id: str = Field(description="the release that brought it to production")
    at: str | None = Field(description="when that release reached production")


class Asked(BaseModel):
    release_id: str = Field(description="the release whose sign-off asked you about it")
    at: str


class DecisionRecord(BaseModel):
    decision: Literal["approved", "rejected", "overridden", "withdrawn"] = Field(
        description="withdrawn: your approval no longer stands since the change was rolled back off your instance"
    )
    by: str | None
    role: str | None
    recorded_by: str | None = Field(description="vendor staff who recorded it on your behalf")
    channel: str
    at: str | None
    comment: str | None
    counts: bool = Field(description="the latest decision of its approver: the one that counts")


class Running(BaseModel):
    release_id: str = Field(description="the install that brought it to your instance")
    since: str


class ChangeTrace(BaseModel):
    id: str
    type: str
    component: str | None
    title: str | None
    description: str | None
    breaking: bool
    released: Released | None = Field(description="null: not in production yet")
    asked: Asked | None = Field(description="null: you were not asked to sign it off")
    state: Literal["pending", "approved", "rejected"] | None = Field(description="under your sign-off policy")
    decisions: list[DecisionRecord] = Field(description="every decision of your organisation on it, oldest first")
    waiting_for: str | None
    runs: str | None = Field(description="the release your instance runs")
    running_since: Running | None = Field(description="null: your instance does not run it (yet)")
    answer: str = Field(description="does your instance have it, in one line")


class RegressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release_id: str = Field(
        max_length=7, pattern=inputs.RELEASE_ID, description="the release your instance runs", examples=["2026.24"]
    )
    description: Annotated[str, inputs.COMMENT.validator("description")] = Field(
        max_length=inputs.MAX_COMMENT, pattern=inputs.NONBLANK_TEXT, description="what broke, and since when"
    )


class RegressionOut(BaseModel):
    id: int
    release_id: str
    description: str
    reported_by: str
    reported_at: str
    release_team_alerted: bool = Field(description="false: recorded; the release team is alerted within a minute")


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release_id: str = Field(
        max_length=7, pattern=inputs.RELEASE_ID, description="the release your instance runs", examples=["2026.24"]
    )
    reason: Annotated[str, inputs.COMMENT.validator("reason")] = Field(
        max_length=inputs.MAX_COMMENT, pattern=inputs.NONBLANK_TEXT, description="why you need to go back"
    )
    regression_id: int | None = Field(None, ge=1, le=2**31 - 1, description="the regression report it follows, if any")


class RollbackOut(BaseModel):
    id: int
    from_release_id: str
    to_release_id: str = Field(description="the version your instance ran before")
    status: Literal["requested", "approved", "refused", "done", "failed"]
    outcome: str
    reason: str
    requested_by: str
    requested_at: str
    regression_id: int | None
    decided_at: str | None
    decision_reason: str | None = Field(description="the release team's reason for its decision")
    finished_at: str | None


class Rollbacks(BaseModel):
    runs: str | None = Field(description="the release your instance runs")
    can_roll_back_to: str | None = Field(
        description="the version a rollback would take it back to (null: none, or a request is open)"
    )
    regressions: list[RegressionOut]
    requests: list[RollbackOut]


# -- routes ---------------------------------------------------------------------------------
@router.get("/me", response_model=Me)
def get_me(caller: Caller = Depends(api_caller)):
    return views.me(caller)


@router.get("/releases", response_model=list[ReleaseSummary])
def list_releases(caller: Caller = Depends(api_caller)):
    """Releases you were asked to sign off, newest first."""
    return [views.release_summary(caller, r) for r in releases_for(caller.repo, caller.oem.id, views.policy(caller))]


@router.get("/releases/{release_id}", response_model=ReleaseDetail, responses={404: problem("not yours")})
def get_release(release_id: ReleaseId, caller: Caller = Depends(api_caller)):
    """One release: its changes with your decisions, and its release notes."""
    try:
        return views.release_detail(caller, release_for(caller.repo, caller.oem.id, release_id, views.policy(caller)))
    except SignoffError as exc:
        raise http_error(exc) from None


@router.post(
    "/releases/{release_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    responses={
        403: problem("your token is bound to no approver of your organisation's sign-off policy"),
        404: problem("release or change not yours"),
        409: problem("double or too late"),
    },
)
def post_decision(
    release_id: ReleaseId,
    body: Annotated[DecisionIn, Body(discriminator="decision")],
    caller: Caller = Depends(api_caller),
):
    """Approve or reject changes of a release (all of them when ``changes`` is omitted)."""
    try:
        event_ids = views.decide(caller, release_id, body.decision, body.changes, body.comment)
        release = release_for(caller.repo, caller.oem.id, release_id, views.policy(caller))
    except SignoffError as exc:
        raise http_error(exc) from None
    return {
        "release_id": release_id,
        "decision": body.decision,
        "event_ids": event_ids,
        "release": views.release_detail(caller, release),
    }


@router.get(
    "/changes/{change_id}",
    response_model=ChangeTrace,
    responses={404: problem("never asked of you, and not on your instance")},
)
def get_change(change_id: ChangePath, caller: Caller = Depends(api_caller)):
    """One change and your instance: when it reached production, whether you were asked,
    your decisions, and whether and since when your instance runs it."""
    try:
        return views.change_trace(caller, change_id)
    except SignoffError as exc:
        raise http_error(exc) from None


@router.get("/deliveries", response_model=Deliveries)
def get_deliveries(caller: Caller = Depends(api_caller)):
    """Your next delivery dates and the history of deliveries to your instance."""
    return views.deliveries(caller)


@router.get("/feedback", response_model=list[FeedbackOut])
def list_feedback(caller: Caller = Depends(api_caller)):
    """The feedback your organisation gave, newest first."""
    return views.feedback(caller)


@router.post(
    "/feedback",
    response_model=FeedbackOut,
    status_code=201,
    responses={429: {"description": "your organisation gave its day's worth of feedback (see config)"}},
)
def post_feedback(body: FeedbackIn, caller: Caller = Depends(api_caller)):
    """Tell the vendor what you need. Only your organisation ever sees its text; other
    customers see only the vendor's published roadmap items and how many ask for each."""
    try:
        feedback_id = views.record_feedback(
            caller, category=body.category, title=body.title, body=body.body, component=body.component
        )
    except FeedbackLimitReached as exc:
        retry_after = max(int((exc.retry_at - caller.portal.now()).total_seconds()), 1)
        raise HTTPException(429, str(exc), {"Retry-After": str(retry_after)}) from None
    return views.feedback_entry(caller, caller.repo.feedback_item(feedback_id))


@router.get("/roadmap", response_model=Roadmap, responses={404: problem("no roadmap computed yet")})
def get_roadmap(caller: Caller = Depends(api_caller)):
    """The current roadmap for the next two delivery cycles (about two months)."""
    roadmap = views.roadmap(caller)
    if roadmap is None:
        raise HTTPException(404, "no roadmap has been computed yet")
    return roadmap


def rollback_error(exc: SignoffError) -> HTTPException:
    return HTTPException(views.rollback_status(exc), str(exc))


@router.get("/rollbacks", response_model=Rollbacks)
def get_rollbacks(caller: Caller = Depends(api_caller)):
    """What your instance runs, your regression reports and rollback requests with the decisions."""
    return views.rollbacks_view(caller)


@router.post(
    "/regressions",
    response_model=RegressionOut,
    status_code=201,
    responses={
        404: problem("no release is recorded on your instance"),
        409: problem("not the release your instance runs"),
        429: problem("a day's worth of reports"),
    },
)
def post_regression(body: RegressionIn, caller: Caller = Depends(api_caller)):
    """Report a regression on the release your instance runs; our release team is alerted at once."""
    try:
        return views.report_regression(caller, body.release_id, body.description, "api")
    except SignoffError as exc:
        raise rollback_error(exc) from None


@router.post(
    "/rollback-requests",
    response_model=RollbackOut,
    status_code=201,
    responses={
        404: problem("no release is recorded on your instance, or the regression report is not yours"),
        409: problem("not the release your instance runs, nothing to go back to, or a request is open"),
    },
)
def post_rollback_request(body: RollbackIn, caller: Caller = Depends(api_caller)):
    """Ask to go back to the version your instance ran before; the release team decides."""
    try:
        return views.request_rollback(caller, body.release_id, body.reason, body.regression_id, "api")
    except SignoffError as exc:
        raise rollback_error(exc) from None
