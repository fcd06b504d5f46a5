"""What the release-acceptance DAGs do, step by step (production_release and
general_release_notes). The DAG files wire these functions; the domain does the
deciding and rendering, this module the talking to Airflow and remote systems.

Every step may be re-run for the same release: stored rows are upserts and every
outbound call is keyed in the idempotency ledger first.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from release_pipeline.change_feed import ChangeFeedError, parse_changes
from release_pipeline.models import ReleaseStatus
from release_pipeline.notes import Audience, ReleaseNotesInput, render, render_release_notes
from release_pipeline.release_calendar import Release, UnknownRelease
from release_pipeline.run_targets import newest_production_release, newest_settled_window
from release_pipeline.vendor import load_vendor
from release_train_airflow import outbound, run_targets
from release_train_airflow.outbound import alert_vendor
from release_train_airflow.resources import calendar, registry, repository

log = logging.getLogger(__name__)
ACTOR = "production_release"
# a release event (its status stays qa_approved): the deploy waits for a freeze to end
DEPLOY_POSTPONED = "deploy_postponed"


# -- production_release ----------------------------------------------------------------
def target_release(data_interval_end: dt.datetime, override: str | None) -> Release:
    """The release a run is for: the one named in the run's params, else for a manual
    run the newest release in production (``release_pipeline.run_targets``), else the one
    the run's data interval ends with. The task log says which, and why."""
    train = calendar()
    if override:
        try:
            release = train.release_by_id(override)
        except UnknownRelease as exc:
            raise AirflowFailException(f"param release_id: {exc}") from None
        log.info("acts on %s: given as param release_id", release.id)
        return release
    if run_targets.is_manual_run():
        return train.release_by_id(run_targets.choose(newest_production_release).key)
    release = train.release_at(data_interval_end)
    log.info("acts on %s: the release this scheduled run's data interval ends with", release.id)
    return release


def fetch_changes(release: Release):
    """The changes merged between the previous release and this one, from the feed."""
    from airflow.providers.http.hooks.http import HttpHook

    since, until = calendar().previous(release).at, release.at
    response = HttpHook("GET", http_conn_id="change_feed").run(
        "changes", data={"since": since.isoformat(), "until": until.isoformat()}, extra_options={"timeout": 60}
    )
    try:
        return parse_changes(response.content), since, until
    except ChangeFeedError as exc:
        raise AirflowFailException(f"release {release.id}: {exc}; nothing of this release was recorded") from None


def cut_release(data_interval_end: dt.datetime, override: str | None, dry_run: bool) -> dict[str, Any]:
    release = target_release(data_interval_end, override)
    changes, since, until = fetch_changes(release)
    notes = render_release_notes([ReleaseNotesInput(release.id, release.at, changes)], Audience.vendor(load_vendor()))
    if dry_run:
        oems = [o.id for o in registry().enabled]
        raise AirflowSkipException(
            f"dry run: release {release.id} would ship {len(changes)} change(s) to production and ask "
            f"{len(oems)} OEM(s) ({', '.join(oems)}) to sign off; nothing recorded, deployed or sent.\n"
            f"{notes.markdown}"
        )
    repo = repository()
    new = repo.record_release(release, changes, changes_since=since, changes_until=until, actor=ACTOR)
    stored = repo.release(release.id)
    if stored.status == ReleaseStatus.EMPTY:
        raise AirflowSkipException(f"release {release.id}: {stored.status_reason}; nothing to deploy")
    summary = (
        "\n".join(f"- {'**BREAKING** ' if c.breaking else ''}{c.type}: {c.title} ({c.id})" for c in changes)
        or "(recorded earlier)"
    )
    return {
        "release_id": release.id,
        "changes": len(changes),
        "new": new,
        "summary": f"Release {release.id}: {len(changes)} change(s) from the change feed.\n\n{summary}",
    }


def earlier_qa_approval(release_id: str) -> str | None:
    row = repository().release(release_id)
    if row is not None and row.status in (ReleaseStatus.QA_APPROVED, ReleaseStatus.DEPLOYED):
        return f"status {row.status}"
    return None


def check_qa_verdict(release_id: str, verdict: str) -> None:
    """The QA system's verdict: a failed QA run blocks the release before any human is asked."""
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


def deploy(release_id: str) -> str:
    """Start the vendor production deploy; returns the deployment id."""
    from airflow.providers.http.hooks.http import HttpHook

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
        print(f"release {release_id}: deploy already started earlier ({result}); not starting another")
    return result["deployment_id"]


def verify_production(release_id: str, deployment_status: str) -> None:
    """Smoke check of the vendor production after the deploy; any failure is recorded,
    alerted and fails the run."""
    from airflow.providers.http.hooks.http import HttpHook

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


def steps_left(release_id: str) -> list[str]:
    """The tasks that follow the cut: a release already in production (a rerun, or a
    manual run with no parameters) repeats neither QA nor the freeze nor the deploy;
    its sign-off is (re)opened and its OEMs told, once each."""
    row = repository().release(release_id)
    if row is not None and row.status == ReleaseStatus.DEPLOYED:
        log.info("release %s is in production already: (re)opening its sign-off only", release_id)
        return ["open_signoff"]
    return ["wait_for_qa", "open_signoff"]


def open_signoff(release_id: str) -> list[str]:
    """Record a pending sign-off request for every enabled OEM x change of a release in
    production (one QA or the deploy stopped is never asked about)."""
    row = repository().release(release_id)
    if row is None or row.status != ReleaseStatus.DEPLOYED:
        status = row.status if row is not None else "not recorded"
        raise AirflowSkipException(f"release {release_id} is {status}, not in production: no OEM is asked")
    oem_ids = [o.id for o in registry().enabled]
    created = repository().request_approvals(release_id, oem_ids)
    print(f"release {release_id}: {created} new sign-off request(s) for {len(oem_ids)} OEM(s)")
    return oem_ids


def notify_oem_of_release(release_id: str, oem_id: str) -> None:
    """Send the OEM its white-labelled notes and what to test, how to sign off."""
    repo, vendor, train = repository(), load_vendor(), calendar()
    oem = registry().get(oem_id)
    audience = Audience.oem(oem, vendor)
    release = train.release_by_id(release_id)
    changes = repo.changes_of([release_id])
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
    record = {"kind": "release_notes", "scope_key": release_id, "audience": oem_id, "channel": "notification"}
    try:
        outbound.send_message(
            repo,
            oem.connections.notify,
            message.as_message(kind="signoff_request", release_id=release_id),
            key=f"release_notes:{release_id}:{oem_id}",
        )
    except Exception as exc:
        repo.record_publication(**record, status="failed", detail=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    repo.record_publication(**record, status="sent")


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


# -- general_release_notes --------------------------------------------------------------
def notes_window(data_interval_end: dt.datetime, override: str | None) -> dict[str, Any]:
    """The window a run publishes: the window of the release named in the params, else
    for a manual run the newest window whose releases are settled, else this run's."""
    train = calendar()
    if not override and run_targets.is_manual_run():
        choice = run_targets.choose(newest_settled_window, train)
        return {"key": choice.key, "release_ids": list(choice.release_ids)}
    window = train.notes_window_of(target_release(data_interval_end, override))
    return {"key": window.key, "release_ids": [r.id for r in window.releases]}


def _window_notes(window: dict[str, Any], audience: Audience):  # the vendor's audience only
    """The notes of the window's releases that reached production (None: none did)."""
    repo, train = repository(), calendar()
    deployed = [r for r in window["release_ids"] if getattr(repo.release(r), "status", None) == ReleaseStatus.DEPLOYED]
    if not deployed:
        return None
    changes = repo.changes_of(deployed)
    sections = [
        ReleaseNotesInput(r, train.release_by_id(r).at, [c for c in changes if c.release_id == r]) for r in deployed
    ]
    return render_release_notes(sections, audience)


def publish_general_notes(window: dict[str, Any]) -> str:
    """Publish the vendor's general notes on its documentation portal; returns where.
    OEM docs are not touched here: they follow each OEM's instance (oem_delivery)."""
    repo = repository()
    notes = _window_notes(window, Audience.vendor(load_vendor()))
    if notes is None:
        raise AirflowSkipException(f"no release of {window['key']} reached production; nothing to publish")
    page = f"release-notes/{window['key']}"
    location = outbound.publish_page(repo, "ava_docs_portal", page, notes, key=f"general_notes:{window['key']}:vendor")
    repo.record_publication(
        kind="general_notes",
        scope_key=window["key"],
        audience="vendor",
        channel="docs_portal",
        status="published",
        location=location,
    )
    return location
