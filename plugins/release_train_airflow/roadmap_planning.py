"""The ``roadmap_planning`` DAG's work: ask the OEMs that are due for feedback, rank the
roadmap for the next two delivery cycles, send every OEM its white-labelled update (every
run, saying so when nothing changed), report.

Every outcome per OEM is recorded as a publication (``feedback_request`` per ISO week,
``roadmap_update`` per snapshot), failures too, so the report reads what happened from
the release database rather than from task states, and a rerun sends nothing twice
(each message has an idempotency key).
"""

from __future__ import annotations

import datetime as dt
import logging

import pendulum
from airflow.sdk import TriggerRule, task

from release_pipeline.models import ReleaseStatus
from release_pipeline.notes import Audience
from release_pipeline.registry import Oem, load_registry
from release_pipeline.release_calendar import ReleaseCalendar, load_calendar
from release_pipeline.roadmap import (
    Horizon,
    load_roadmap_config,
    plan_roadmap,
    render_feedback_request,
    render_roadmap_update,
    roadmap_horizon,
)
from release_pipeline.vendor import load_vendor
from release_train_airflow.outbound import SENT, recorded_publication, send_message
from release_train_airflow.resources import repository
from release_train_airflow.run_targets import run_moment

log = logging.getLogger(__name__)
FEEDBACK_REQUEST, ROADMAP_UPDATE = "feedback_request", "roadmap_update"


@task
def planning_horizon() -> list[str]:
    """The run's first word: the moment it plans at, the deliveries that makes its
    horizon, and why (the releases in production do not move it: the horizon is the
    cycles whose release is not cut yet)."""
    from airflow.sdk import get_current_context

    moment, _ = run_moment()
    why = "its logical date" if get_current_context().get("logical_date") else "when it was triggered"
    planned = horizon(load_calendar(), moment).release_ids
    in_production = repository().release_ids([ReleaseStatus.DEPLOYED])
    log.info(
        "plans at %s (%s) for the deliveries of %s: the next %d cycles whose release is not cut yet; "
        "newest release in production: %s",
        moment.isoformat(),
        why,
        ", ".join(planned),
        len(planned),
        max(in_production, default="none"),
    )
    return list(planned)


def period_key(moment: dt.datetime) -> str:
    year, week, _ = pendulum.instance(moment).in_timezone("UTC").isocalendar()
    return f"{year}-W{week:02d}"


def weeks_between(earlier_key: str, later_key: str) -> int:
    def monday(key: str) -> dt.date:
        year, week = key.split("-W")
        return dt.date.fromisocalendar(int(year), int(week), 1)

    return (monday(later_key) - monday(earlier_key)).days // 7


def horizon(calendar: ReleaseCalendar, moment: dt.datetime) -> Horizon:
    return roadmap_horizon(calendar, moment)


# -- feedback requests ------------------------------------------------------------------------
def due_oems(moment: dt.datetime) -> list[str]:
    """Enabled OEMs never asked, or asked at least their cadence (in ISO weeks) ago.
    One asked in this very week stays due: its (idempotent) request is redone on a
    rerun, and sends nothing twice."""
    repo, this_week = repository(), period_key(moment)
    due = []
    for oem in load_registry().enabled:
        last = repo.last_feedback_request(oem.id)
        if (
            last is None
            or last.period_key == this_week
            or weeks_between(last.period_key, this_week) >= oem.feedback_cadence_weeks
        ):
            due.append(oem.id)
    return due


@task
def oems_due_for_feedback() -> list[str]:
    return due_oems(run_moment()[0])


@task
def request_feedback(oem_id: str) -> str:
    repo, vendor, oem = repository(), load_vendor(), load_registry().get(oem_id)
    moment = run_moment()[0]
    period = period_key(moment)

    def send() -> None:
        message = render_feedback_request(
            Audience.oem(oem, vendor),
            horizon(load_calendar(), moment).release_ids,
            oem.feedback_cadence_weeks,
            portal_url=vendor.portal_url,
        )
        send_message(
            repo,
            oem.connections.notify,
            message.as_message(kind=FEEDBACK_REQUEST, period=period),
            key=f"{FEEDBACK_REQUEST}:{period}:{oem.id}",
        )
        # only once sent: an OEM whose channel was down stays due next week
        repo.record_feedback_request(oem.id, period)

    return _recorded(oem, FEEDBACK_REQUEST, period, send)


# -- the roadmap -----------------------------------------------------------------------------
def prioritise_roadmap(moment: dt.datetime, run_id: str) -> int:
    """Store this run's roadmap snapshot (once: a rerun reuses it) and return its id."""
    repo = repository()
    if (existing := repo.roadmap_snapshot_for_run(run_id)) is not None:
        return existing.id
    snapshot = plan_roadmap(
        repo,
        registry=load_registry(),
        vendor=load_vendor(),
        calendar=load_calendar(),
        config=load_roadmap_config(),
        moment=moment,
        previous=repo.latest_roadmap_snapshot(),
    )
    return repo.save_roadmap_snapshot(
        horizon=snapshot.horizon,
        items=snapshot.items,
        changes=snapshot.changes,
        candidates=snapshot.candidates,
        run_id=run_id,
    )


@task
def prioritise() -> int:
    return prioritise_roadmap(*run_moment())


@task
def send_roadmap_update(oem_id: str, snapshot_id: int) -> str:
    repo, vendor, oem = repository(), load_vendor(), load_registry().get(oem_id)
    snapshot = repo.roadmap_snapshot(snapshot_id)

    def send() -> None:
        message = render_roadmap_update(
            Audience.oem(oem, vendor), snapshot.horizon, snapshot.items, snapshot.changes, portal_url=vendor.portal_url
        )
        send_message(
            repo,
            oem.connections.notify,
            message.as_message(kind=ROADMAP_UPDATE, snapshot=snapshot_id),
            key=f"{ROADMAP_UPDATE}:{snapshot_id}:{oem.id}",
        )

    return _recorded(oem, ROADMAP_UPDATE, str(snapshot_id), send)


def _recorded(oem: Oem, kind: str, scope_key: str, send) -> str:
    return recorded_publication(repository(), send, kind=kind, scope_key=scope_key, audience=oem.id, channel="notify")


# -- the report ------------------------------------------------------------------------------
@task(trigger_rule=TriggerRule.ALL_DONE)
def report() -> dict:
    """What this run did per OEM; raises naming every OEM that failed, after the others
    were served."""
    moment, run_id = run_moment()
    repo = repository()
    snapshot = repo.roadmap_snapshot_for_run(run_id)
    expected = {(FEEDBACK_REQUEST, period_key(moment), oem) for oem in due_oems(moment)}
    if snapshot is not None:
        expected |= {(ROADMAP_UPDATE, str(snapshot.id), oem.id) for oem in load_registry().enabled}
    outcomes = {
        (p.kind, p.scope_key, p.audience): (p.status, p.detail)
        for kind in (FEEDBACK_REQUEST, ROADMAP_UPDATE)
        for p in repo.publications(kind=kind)
    }
    summary: dict = {"snapshot_id": snapshot.id if snapshot else None, FEEDBACK_REQUEST: {}, ROADMAP_UPDATE: {}}
    failures = [] if snapshot else ["no roadmap snapshot was stored (see the prioritise task)"]
    for kind, scope, oem in sorted(expected):
        status, detail = outcomes.get((kind, scope, oem), ("not done", "its task did not run"))
        summary[kind][oem] = status
        if status != SENT:
            failures.append(f"{kind} to {oem}: {status} ({detail})")
    if failures:
        raise RuntimeError("roadmap planning failed for: " + "; ".join(failures))
    return summary
