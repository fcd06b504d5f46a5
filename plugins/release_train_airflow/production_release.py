"""The tasks of a production_release run, defined once: the DAG file wires them and
sets pools and retries. The domain does the deciding and rendering, this module the
talking to Airflow and remote systems. ``notify_oem_of_release`` and
``report_publications`` serve the deliveries too.

Every step may be re-run for the same release: stored rows are upserts and every
outbound call is keyed in the idempotency ledger first. The tasks take the cut
(``cut_release``'s XCom) and return what the next ones read.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk import TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from release_pipeline.cut import TrainMovedOn, changes_to_cut, hold_the_record
from release_pipeline.deadlines import signoff_deadline
from release_pipeline.ledger import carried
from release_pipeline.models import ReleaseStatus
from release_pipeline.notes import Audience, ReleaseNotesInput, render, render_release_notes
from release_pipeline.roadmap import UnknownRoadmapItems, check_item_ids, load_roadmap_config, planned_items
from release_pipeline.vendor import load_vendor
from release_train_airflow import outbound
from release_train_airflow.change_sources import change_feed
from release_train_airflow.outbound import alert_vendor
from release_train_airflow.resources import calendar, registry, repository
from release_train_airflow.run_targets import target_release

log = logging.getLogger(__name__)
ACTOR = "production_release"
# a release event (its status stays qa_approved): the deploy waits for a freeze to end
DEPLOY_POSTPONED = "deploy_postponed"


def roadmap_links(repo, changes) -> dict[str, tuple[str, ...]]:
    """Change id -> the roadmap items the feed says it delivers, every id checked."""
    planned = planned_items(load_roadmap_config(), repo.planned_items())
    for change in changes:
        check_item_ids(f"change {change.id!r}, field 'roadmap_items'", change.roadmap_items, planned)
    return {c.id: c.roadmap_items for c in changes if c.roadmap_items}


@task(multiple_outputs=True)
def cut_release(params=None, data_interval_end=None) -> dict[str, Any]:
    """The run's release (the task log says which, and why), its changes from the feed
    stored with it; returns what the following tasks read."""
    release, dry_run = target_release(data_interval_end, params["release_id"]), params["dry_run"]
    repo = repository()
    stored = repo.release(release.id)
    feed = change_feed(release.id)
    if stored is not None:  # a rerun, or a manual run resuming it: the record holds
        if said := hold_the_record(repo, stored, feed, actor=ACTOR):
            log.warning("release %s: %s", release.id, said)
        changes, new = repo.changes_of([release.id]), False
    else:
        try:
            since, until, changes = changes_to_cut(repo, calendar(), release, feed)
        except TrainMovedOn as exc:
            raise AirflowSkipException(str(exc)) from None
    notes = render_release_notes([ReleaseNotesInput(release.id, release.at, changes)], Audience.vendor(load_vendor()))
    if dry_run:
        oems = [o.id for o in registry().enabled]
        raise AirflowSkipException(
            f"dry run: release {release.id} would ship {len(changes)} change(s) to production and ask "
            f"{len(oems)} OEM(s) ({', '.join(oems)}) to sign off; nothing recorded, deployed or sent.\n"
            f"{notes.markdown}"
        )
    if stored is None:
        try:  # a change naming an item on no roadmap refuses the feed answer, like any bad field
            links = roadmap_links(repo, changes)
        except UnknownRoadmapItems as exc:
            raise AirflowFailException(f"release {release.id}: {exc}; nothing of this release was recorded") from None
        new = repo.record_release(release, changes, changes_since=since, changes_until=until, actor=ACTOR)
        for change_id, item_ids in links.items():
            repo.link_change_roadmap_items(change_id, item_ids, by=ACTOR)
        stored = repo.release(release.id)
    if stored.status == ReleaseStatus.EMPTY:
        raise AirflowSkipException(f"release {release.id}: {stored.status_reason}; nothing to deploy")
    # the build holds what earlier releases that never reached production carry (L2)
    shipped = repo.changes_shipped_by(release.id)
    summary = "\n".join(
        f"- {'**BREAKING** ' if c.breaking else ''}{c.type}: {c.title} ({c.id}"
        f"{f', carried from {c.release_id}' if carried(release.id, c.release_id) else ''})"
        for c in shipped
    )
    return {
        "release_id": release.id,
        "changes": len(changes),
        "new": new,
        "summary": f"Release {release.id}: {len(shipped)} change(s) from the change feed.\n\n{summary}",
        "qa_endpoint": f"releases/{release.id}",
        "signoff_subject": f"QA sign-off: release {release.id}",
    }


def earlier_qa_approval(release_id: str) -> str | None:
    row = repository().release(release_id)
    if row is not None and row.status in (ReleaseStatus.QA_APPROVED, ReleaseStatus.DEPLOYED):
        return f"status {row.status}"
    return None


@task
def check_qa_verdict(cut: dict, verdict: str) -> None:
    """The QA system's verdict: a failed QA run blocks the release before any human is asked."""
    release_id = cut["release_id"]
    if verdict == "passed":
        return
    reason = f"QA system reported {verdict!r} for {release_id}"
    repository().set_release_status(release_id, ReleaseStatus.QA_REJECTED, actor="qa_system", reason=reason)
    alert_vendor(
        f"Release {release_id} blocked by QA",
        [reason, "Nothing was deployed."],
        key=f"qa_rejected:{release_id}:qa_system",
    )
    raise AirflowSkipException(f"{reason}: recorded; nothing is deployed")


def record_qa_signoff(release_id: str, *, approved: bool, actor: str, reason: str | None) -> None:
    repo = repository()
    if approved:
        repo.set_release_status(release_id, ReleaseStatus.QA_APPROVED, actor=actor, reason=reason)
        return
    why = reason or "no reason given"
    repo.set_release_status(release_id, ReleaseStatus.QA_REJECTED, actor=actor, reason=why)
    alert_vendor(
        f"Release {release_id} rejected in QA sign-off",
        [f"Rejected by {actor}: {why}", "Nothing was deployed."],
        key=f"qa_rejected:{release_id}:signoff",
    )


def _deploy_key(release_id: str) -> str:
    """A new key after each recorded failed deploy, so a rerun after a failure deploys
    again while a rerun after an unknown outcome does not."""
    failures = sum(e.event == ReleaseStatus.DEPLOY_FAILED for e in repository().release_events(release_id))
    return f"deploy:{release_id}:attempt-{failures + 1}"


def _when(moment: dt.datetime) -> str:
    return pendulum.instance(moment).format("ddd D MMM YYYY HH:mm zz")


def deploy_hold(release_id: str) -> str | None:
    """None when ``release_id`` may go to the vendor production now. Inside a freeze:
    the first moment after it (ISO), with the postponement recorded in the release's
    events and told to the vendor once. The QA sign-off stays valid meanwhile."""
    train = calendar()
    now = pendulum.now(train.tz)
    moment = train.first_moment_after_freeze(now)
    if moment <= now:
        return None
    freeze = train.freeze_at(now)
    release = train.release_by_id(release_id)
    detail = (
        f"production deploy held by the freeze {freeze.name!r} ({freeze.start} to {freeze.end}): "
        f"release moment {_when(release.at)}, deploys at {_when(moment)}"
    )
    repo = repository()
    if not any(e.event == DEPLOY_POSTPONED and e.detail == detail for e in repo.release_events(release_id)):
        repo.record_release_event(release_id, DEPLOY_POSTPONED, actor=ACTOR, detail=detail)
    alert_vendor(
        f"Release {release_id} waits for the end of the {freeze.name}",
        [detail, "Its QA sign-off stays valid; the deploy starts by itself."],
        key=f"{DEPLOY_POSTPONED}:{release_id}:{moment.isoformat()}",
    )
    return moment.in_timezone("UTC").isoformat()


def refuse_frozen_deploy(release_id: str) -> None:
    """The last look right before the deploy call: never deploy inside a freeze, even
    when the calendar changed while the run waited."""
    train = calendar()
    now = pendulum.now(train.tz)
    freeze = train.freeze_at(now)
    if freeze is not None:
        raise AirflowFailException(
            f"release {release_id}: not deployed: {_when(now)} is inside the freeze {freeze.name!r} "
            f"({freeze.start} to {freeze.end}); clear wait_for_freeze to wait until "
            f"{_when(train.first_moment_after_freeze(now))}"
        )


def deployed_at(release_id: str) -> pendulum.DateTime | None:
    """When ``release_id`` was (last) recorded as deployed to the vendor production."""
    events = [e for e in repository().release_events(release_id) if e.event == ReleaseStatus.DEPLOYED]
    return pendulum.instance(events[-1].created_at) if events else None


@task(multiple_outputs=True)
def deploy(cut: dict) -> dict[str, str]:
    """Start the vendor production deploy; returns the deployment and where to watch it."""
    from airflow.providers.http.hooks.http import HttpHook

    release_id = cut["release_id"]
    refuse_frozen_deploy(release_id)

    def start(idempotency_key: str) -> dict:
        answer = HttpHook("POST", http_conn_id="ava_production").run(
            "deployments",
            json={"release_id": release_id},
            headers={"Idempotency-Key": idempotency_key},
            extra_options={"timeout": 60},
        )
        return {"deployment_id": answer.json()["id"]}

    from release_pipeline.idempotency import perform_once

    performed, result = perform_once(repository(), _deploy_key(release_id), "deploy", start)
    if not performed:
        log.info("release %s: deploy already started earlier (%s); not starting another", release_id, result)
    return {"deployment_id": result["deployment_id"], "status_endpoint": f"deployments/{result['deployment_id']}"}


@task
def verify_production(cut: dict, deployment_status: str) -> None:
    """Smoke check of the vendor production after the deploy; any failure is recorded,
    alerted and fails the run."""
    from airflow.providers.http.hooks.http import HttpHook

    release_id = cut["release_id"]
    problem = None
    if deployment_status != "succeeded":
        problem = f"deployment ended {deployment_status!r}"
    else:
        answer = HttpHook("GET", http_conn_id="ava_production").run(
            "health", extra_options={"timeout": 30, "check_response": False}
        )
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        if answer.status_code != 200 or body.get("status") != "ok":
            problem = f"smoke check failed: health answered {answer.status_code} {body or answer.text[:200]}"
        elif body.get("version") != release_id:
            problem = f"smoke check failed: production reports version {body.get('version')!r}"
    repo = repository()
    if problem is None:
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor=ACTOR)
        return
    attempt = _deploy_key(release_id)
    repo.set_release_status(release_id, ReleaseStatus.DEPLOY_FAILED, actor=ACTOR, reason=problem)
    alert_vendor(
        f"Production deploy of {release_id} failed",
        [problem, "OEMs were not asked to sign off."],
        key=f"deploy_failed:{attempt}",
    )
    raise AirflowFailException(f"release {release_id}: {problem}")


@task.branch
def steps_left(cut: dict) -> list[str]:
    """The tasks that follow the cut: a release already in production (a rerun, or a
    manual run with no parameters) repeats neither QA nor the freeze nor the deploy;
    its sign-off is (re)opened and its OEMs told, once each."""
    release_id = cut["release_id"]
    row = repository().release(release_id)
    if row is not None and row.status == ReleaseStatus.DEPLOYED:
        log.info("release %s is in production already: (re)opening its sign-off only", release_id)
        return ["open_signoff"]
    return ["wait_for_qa", "open_signoff"]


@task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
def open_signoff(cut: dict) -> list[str]:
    """Record a pending sign-off request for every enabled OEM x change of a release in
    production (one QA or the deploy stopped is never asked about)."""
    release_id = cut["release_id"]
    row = repository().release(release_id)
    if row is None or row.status != ReleaseStatus.DEPLOYED:
        status = row.status if row is not None else "not recorded"
        raise AirflowSkipException(f"release {release_id} is {status}, not in production: no OEM is asked")
    oem_ids = [o.id for o in registry().enabled]
    created = repository().request_approvals(release_id, oem_ids)
    log.info("release %s: %d new sign-off request(s) for %d OEM(s)", release_id, created, len(oem_ids))
    return oem_ids


def notify_oem_of_release(release_id: str, oem_id: str) -> None:
    """Send the OEM its white-labelled notes and what to test, how to sign off."""
    repo, vendor, train = repository(), load_vendor(), calendar()
    oem = registry().get(oem_id)
    audience = Audience.oem(oem, vendor)
    release = train.release_by_id(release_id)
    changes = repo.changes_shipped_by(release_id)  # its own and those it carries (the ledger)
    # the real date: a freeze may have held the deploy back from the release day
    released = deployed_at(release_id) or release.at
    notes = render_release_notes([ReleaseNotesInput(release_id, released, changes)], audience)
    install = audience.local(train.delivery_cycle_of(release).install_at)
    released_on = audience.local(released).format("dddd D MMMM YYYY")
    planned_on = audience.local(release.at).format("dddd D MMMM YYYY")
    message = render(
        "signoff_request",
        audience,
        subject=f"{audience.product} {release_id} is ready for your sign-off",
        release_id=release_id,
        production_url=vendor.production_url,
        portal_url=vendor.portal_url,
        install_date=install.format("dddd D MMMM YYYY"),
        signoff_deadline=signoff_deadline(oem, train.delivery_cycle_of(release)).shown(),
        released_on=released_on,
        planned_on=planned_on if planned_on != released_on else None,
        timezone=oem.timezone,
        changes=[
            {"id": c.id, "title": c.title, "component": c.component, "breaking": c.breaking}
            for c in sorted(changes, key=lambda c: (not c.breaking, c.id))
        ],
        notes_markdown=notes.markdown,
        notes_html=notes.html,
    )

    def send() -> None:
        outbound.send_message(
            repo,
            oem.connections.notify,
            message.as_message(kind="signoff_request", release_id=release_id),
            key=f"release_notes:{release_id}:{oem_id}",
        )

    outbound.recorded_publication(
        repo, send, kind="release_notes", scope_key=release_id, audience=oem_id, channel="notification"
    )


@task
def notify_oem(cut: dict, oem_id: str) -> None:
    """One OEM's notes and sign-off request: one task per OEM, so one channel being
    down never holds up the others."""
    notify_oem_of_release(cut["release_id"], oem_id)


@task(trigger_rule=TriggerRule.ALL_DONE)
def report_notifications(cut: dict | None, oem_ids: list[str] | None) -> dict:
    return report_publications("release_notes", cut["release_id"] if cut else None, oem_ids, "Release notes")


def report_publications(kind: str, scope_key: str | None, oem_ids: list[str] | None, what: str) -> dict[str, str]:
    """After the per-OEM fan-out: which OEMs did not get ``what``. They are reported to
    the vendor and fail the run (the others were served regardless)."""
    if scope_key is None or oem_ids is None:
        raise AirflowSkipException(f"{what}: the per-OEM step never started (an earlier step stopped the run)")
    rows = {r.audience: r for r in repository().publications(kind=kind, scope_key=scope_key)}
    outcome = {oem: rows[oem].status if oem in rows else "not attempted" for oem in oem_ids}
    failed = {oem: status for oem, status in outcome.items() if status in ("failed", "not attempted")}
    if failed:
        lines = [
            f"{oem}: {status}" + (f" ({rows[oem].detail})" if oem in rows and rows[oem].detail else "")
            for oem, status in sorted(failed.items())
        ]
        alert_vendor(
            f"{what} for {scope_key} not delivered to {len(failed)} OEM(s)",
            lines,
            key=f"undelivered:{kind}:{scope_key}:{','.join(sorted(failed))}",
        )
        raise AirflowFailException(f"{what} for {scope_key} not delivered to: {'; '.join(lines)}")
    return outcome
