"""What an OEM sees, built once for the JSON API and the HTML pages alike: always scoped
to the caller's OEM, white-labelled, times in the OEM's timezone.

Every string field that is not the OEM's own words passes the white-label step and then
the guard (the vendor's names and hosts, other OEMs' names); a field that fails is
shown as :data:`REDACTED`, never raw. Release notes that fail are withheld whole. Ids
that carry the vendor's name (a Jira key ``AVA-1234``) are shown by their OEM-neutral id
(``CHANGE-1234``), the same the notes show, and decisions that name it reach the real
change (:func:`real_change_ids`). Behind all of it, the portal's response filter
(:mod:`release_train_airflow.portal.guarded`) checks every response whole."""

from __future__ import annotations

import datetime as dt
import logging

from release_pipeline import rollbacks, signoff
from release_pipeline.deadlines import signoff_deadline
from release_pipeline.forecast import forecast, next_install_cycle
from release_pipeline.models import Change
from release_pipeline.notes import Guard, ReleaseNotesInput, render_release_notes
from release_pipeline.notes.whitelabel import NEUTRAL_ITEM_PREFIX
from release_pipeline.release_calendar import UnknownRelease
from release_pipeline.roadmap import CATEGORY_LABELS, FeedbackLimitReached, check_feedback_allowance, oem_view
from release_pipeline.signoff import (
    ChangeSignoff,
    Conflict,
    Invalid,
    NotAllowed,
    NotFound,
    ReleaseSignoff,
    SignoffError,
    release_for,
    releases_for,
)
from release_pipeline.trace import UnknownChange, trace
from release_train_airflow.portal.auth import Caller

log = logging.getLogger(__name__)
REDACTED = "[redacted]"
SIGNOFF_STATUS = {NotFound: 404, Conflict: 409, Invalid: 422, NotAllowed: 403}


def signoff_status(exc: SignoffError) -> int:
    """The HTTP status a refused sign-off answers with, on a page and in the API alike."""
    return SIGNOFF_STATUS.get(type(exc), 400)


def guard(caller: Caller) -> Guard:
    return caller.portal.guard(caller.oem.id)


def branded(caller: Caller, text: str | None) -> str | None:
    """``text`` white-labelled for the caller's OEM, or :data:`REDACTED` if it leaks."""
    if text is None:
        return None
    text = caller.audience.whitelabel.apply(text)
    if leaks := guard(caller).scan(text):
        log.warning("portal for %s: a field was redacted: %s", caller.oem.id, "; ".join(leak.passage for leak in leaks))
        return REDACTED
    return text


def shown_id(caller: Caller, key: str, prefix: str | None = None) -> str:
    """The id the caller's OEM knows ``key`` by (its OEM-neutral id if it carries the vendor's name)."""
    label = caller.audience.whitelabel
    return label.neutral_id(key) if prefix is None else label.neutral_id(key, prefix)


def real_change_ids(caller: Caller, release_id: str, shown: list[str] | None) -> list[str] | None:
    """The changes of ``release_id`` that the caller named by the ids it is shown."""
    if not shown:
        return shown
    keys = [c.change.id for c in release_for(caller.repo, caller.oem.id, release_id, policy(caller)).changes]
    return [caller.audience.whitelabel.real_id(change_id, keys) for change_id in shown]


def decide(caller: Caller, release_id: str, decision: str, shown: list[str] | None, comment: str | None) -> list[int]:
    """The caller's decision on the changes it names by the ids it is shown (all pending
    ones: None), from the portal; a refusal names the changes by those ids too."""
    real = real_change_ids(caller, release_id, shown)
    try:
        return signoff.decide(
            caller.repo,
            oem_id=caller.oem.id,
            release_id=release_id,
            decision=decision,
            change_ids=real,
            actor=caller.identity.label,
            channel="portal",
            comment=comment,
            policy=policy(caller),
            approver=caller.identity.approver,
        )
    except SignoffError as exc:
        message = str(exc)
        for key in real or ():
            message = message.replace(repr(key), repr(shown_id(caller, key)))
        raise type(exc)(message) from None


def local(caller: Caller, moment: dt.datetime | None) -> str | None:
    return caller.audience.local(moment).to_iso8601_string() if moment else None


def me(caller: Caller) -> dict:
    return {
        "oem_id": caller.oem.id,
        "organisation": caller.oem.display_name,
        "product": caller.oem.brand_name,
        "timezone": caller.oem.timezone,
        "signed_in_as": caller.identity.label,
        "approver": _approver(caller),
        "signoff_policy": branded(caller, caller.oem.signoff_policy.describe()),
    }


def _approver(caller: Caller) -> str | None:
    """The approver of the OEM's policy the caller signs as (None: the OEM as one, or
    a token bound to no approver of its policy, which cannot decide)."""
    approver = caller.oem.signoff_policy.approver(caller.identity.approver)
    return branded(caller, str(approver)) if approver else None


def policy(caller: Caller):
    return caller.oem.signoff_policy


def change_texts(caller: Caller, c: Change) -> dict:
    """A change as the OEM reads it: its id and kind, its texts white-labelled."""
    return {
        "id": shown_id(caller, c.id),
        "type": str(c.type),
        "component": branded(caller, c.component),
        "title": branded(caller, c.title),
        "description": branded(caller, c.description),
        "breaking": c.breaking,
    }


def change(caller: Caller, signoff: ChangeSignoff) -> dict:
    return {
        **change_texts(caller, signoff.change),
        "state": signoff.state,
        "decided_by": branded(caller, signoff.actor),
        "recorded_by": branded(caller, signoff.recorded_by),
        "channel": branded(caller, signoff.channel),
        "comment": branded(caller, signoff.comment),
        "decided_at": local(caller, signoff.decided_at),
        # under the OEM's policy: the approvals that count so far, and who is still missing
        "approvals": [
            {
                "approver": branded(caller, vote.approver or vote.actor),
                "role": vote.approver_role,
                "decided_at": local(caller, vote.decided_at),
            }
            for vote in sorted(signoff.verdict.approvals, key=lambda v: v.event_id)
        ],
        "waiting_for": branded(caller, signoff.verdict.waiting_for()),
    }


def signoff_due(caller: Caller, release_id: str) -> str | None:
    """When the OEM's sign-off of ``release_id`` is due: the deadline of the install that
    can bring it, its own cycle's, or the next install's once that one is over (None: a
    release the calendar does not know)."""
    train = caller.portal.calendar()
    try:
        cycle = train.delivery_cycle_by_release_id(release_id)
    except UnknownRelease:
        return None
    upcoming = next_install_cycle(caller.repo, train, caller.oem.id, caller.portal.now(), caller.oem)
    return local(caller, signoff_deadline(caller.oem, max(cycle, upcoming, key=lambda c: c.index)).due)


def release_summary(caller: Caller, release: ReleaseSignoff) -> dict:
    return {
        "release_id": release.release_id,
        "released_at": local(caller, release.release_at),
        "signoff_due": None if release.closed_reason else signoff_due(caller, release.release_id),
        "state": release.state,
        "counts": release.counts,
        "open": release.closed_reason is None,
        "closed_reason": branded(caller, release.closed_reason),
    }


def release_detail(caller: Caller, release: ReleaseSignoff) -> dict:
    notes = render_release_notes(
        [ReleaseNotesInput(release.release_id, release.release_at, [c.change for c in release.changes])],
        caller.audience,
    )
    shown = {"subject": notes.subject, "markdown": notes.markdown, "html": notes.html}
    if leaks := guard(caller).scan_value(shown):
        log.warning("portal for %s: notes of %s withheld: %s", caller.oem.id, release.release_id, leaks[0].passage)
        withheld = "These release notes are being reviewed; see each change below."
        shown = {"subject": REDACTED, "markdown": withheld, "html": f"<p>{withheld}</p>"}
    return {
        **release_summary(caller, release),
        "changes": [change(caller, c) for c in release.changes],
        "notes": shown,
    }


def deliveries(caller: Caller) -> dict:
    """The OEM's next two delivery dates (first maintenance-window opening on or after
    the train's install day, from the portal's clock) and its delivery history."""
    now = caller.portal.now()
    calendar = caller.portal.calendar()
    states = {r.release_id: r.state for r in releases_for(caller.repo, caller.oem.id, policy(caller))}
    cycle = calendar.delivery_cycle_at(now)
    schedule = []
    while len(schedule) < 2:
        if cycle.install_at > now:
            freeze = calendar.freeze_at(cycle.install_at)
            schedule.append(
                {
                    "release_id": cycle.release.id,
                    "releases": [r.id for r in cycle.window.releases],
                    "install_from": local(caller, caller.oem.next_maintenance_opening(cycle.install_at)),
                    "signoff_due": local(caller, signoff_deadline(caller.oem, cycle).due),
                    "freeze": branded(caller, freeze.name) if freeze else None,
                    "signoff": {r.id: states.get(r.id, "not requested") for r in cycle.window.releases},
                }
            )
        cycle = calendar.next_cycle(cycle)
    installed = caller.repo.installed_version(caller.oem.id)
    history = [
        {
            "release_id": d.release_id,
            "status": d.status,
            # why, in one line: the first line of the recorded reason (never an install log)
            "reason": branded(caller, d.detail.splitlines()[0]) if d.detail else None,
            "from_release_id": d.from_release_id,
            "started_at": local(caller, d.started_at),
            "finished_at": local(caller, d.finished_at),
        }
        for d in sorted(caller.repo.deliveries(caller.oem.id), key=lambda d: d.release_id, reverse=True)
    ]
    return {
        "installed": {"release_id": installed.release_id, "installed_at": local(caller, installed.installed_at)}
        if installed
        else None,
        "schedule": schedule,
        "history": history,
    }


def change_trace(caller: Caller, change_id: str) -> dict:
    """One change as the caller's own instance sees it: when it reached production (the
    release that shipped it), whether the OEM was asked, its own decisions, and whether
    and since when its instance runs it. Raises ``NotFound`` for a change the OEM was
    never asked about and does not run, in the same words as for an unknown id: never
    says whether it exists for another OEM. Nothing of other OEMs is read."""
    not_yours = NotFound(f"change {change_id!r} was never asked of {caller.oem.id} and does not run on its instance")
    try:
        found = trace(caller.repo, change_id, [caller.oem])
    except UnknownChange:
        raise not_yours from None
    (mine,) = found.oems
    if mine.asked_for is None and mine.running is None:
        raise not_yours
    carrier = found.path.carrier
    return {
        **change_texts(caller, found.change),
        "released": {"release_id": carrier, "at": local(caller, found.in_production_at)} if carrier else None,
        "asked": {"release_id": mine.asked_for, "at": local(caller, mine.asked_at)} if mine.asked_for else None,
        "state": mine.verdict.state if mine.verdict else None,
        "decisions": [
            {
                "decision": str(d.decision),
                "by": branded(caller, d.approver or d.actor),
                "role": d.approver_role,
                "recorded_by": branded(caller, d.recorded_by),
                "channel": d.channel,
                "at": local(caller, d.decided_at),
                "comment": branded(caller, d.comment),
                "counts": d.event_id in mine.counting,
            }
            for d in mine.decisions
        ],
        "waiting_for": branded(caller, mine.verdict.waiting_for()) if mine.verdict else None,
        "runs": mine.runs,
        "running_since": {"release_id": mine.running.release_id, "since": local(caller, mine.running.at)}
        if mine.running
        else None,
        "answer": branded(caller, mine.answer(lambda moment: caller.audience.local(moment).format("YYYY-MM-DD HH:mm"))),
    }


def next_install(caller: Caller) -> dict:
    """The forecast of the caller's next install (its own OEM only): the release it gets
    if nothing changes and when, the sign-off deadline, what is still owed and by whom,
    freeze or window conflicts, and what happens if nothing changes."""
    ahead = forecast(caller.repo, caller.portal.calendar(), caller.oem, caller.portal.now())
    titles = {c.id: c.title for c in caller.repo.changes_of(sorted({o.release_id for o in ahead.owed}))}
    return {
        "cycle": ahead.cycle_key,
        "running": ahead.running,
        "aims_at": ahead.aims_at,
        "installs": ahead.installs,
        "install_at": local(caller, ahead.install_at),
        "signoff_due": local(caller, ahead.deadline.due),
        "timezone": caller.oem.timezone,
        "owed": [
            {
                "change_id": shown_id(caller, o.change_id),
                "release_id": o.release_id,
                "title": branded(caller, titles.get(o.change_id, o.change_id)),
                "state": o.state,
                "approvers": [branded(caller, a) for a in o.approvers],
            }
            for o in ahead.owed
        ],
        "conflicts": [branded(caller, c) for c in ahead.conflicts],
        "if_nothing_changes": branded(caller, ahead.outcome),
        # its own wave, and only whether its install is postponed: never the halt's cause,
        # which names the release's trouble on another OEM's instance
        "wave": ahead.wave,
        "postponed": ahead.halt is not None,
    }


def feedback_entry(caller: Caller, row, on_roadmap: dict[int, str] | None = None) -> dict:
    if on_roadmap is None:
        on_roadmap = _on_roadmap(caller)
    return {
        "id": row.id,
        "category": row.category,
        "category_label": CATEGORY_LABELS[row.category],
        # the OEM's own words, shown back through the same white-label step as everything
        # else: a competitor's name it typed is redacted here rather than the page withheld
        "title": branded(caller, row.title),
        "body": branded(caller, row.body),
        "component": branded(caller, row.component),
        "submitted_by": branded(caller, row.submitted_by),
        "channel": row.channel,
        "created_at": local(caller, row.created_at),
        "on_roadmap": on_roadmap.get(row.id),
    }


def feedback(caller: Caller) -> list[dict]:
    rows = caller.repo.feedback(oem_id=caller.oem.id)
    on_roadmap = _on_roadmap(caller)
    return [feedback_entry(caller, row, on_roadmap) for row in sorted(rows, key=lambda r: r.id, reverse=True)]


def _on_roadmap(caller: Caller) -> dict[int, str]:
    """Feedback id -> the title of the published item it counts for, in the latest
    roadmap (its own asks only are ever looked up)."""
    snapshot = caller.repo.latest_roadmap_snapshot()
    if snapshot is None:
        return {}
    return {
        feedback_id: branded(caller, item["title"])
        for item in snapshot.items
        if item.get("public") is True and caller.oem.id in item.get("oems", ())
        for feedback_id in item.get("feedback_ids", ())
    }


def check_feedback_quota(caller: Caller) -> None:
    """Raise ``FeedbackLimitReached`` when the OEM gave its day's worth of feedback."""
    now = caller.portal.now()
    limit = caller.portal.roadmap_config().feedback_per_oem_per_day
    recent = caller.repo.feedback_times_since(caller.oem.id, now.subtract(hours=24))
    try:
        check_feedback_allowance(recent, limit, now)
    except FeedbackLimitReached as exc:  # say when, in the OEM's own time
        raise FeedbackLimitReached(exc.limit, caller.audience.local(exc.retry_at)) from None


def record_feedback(caller: Caller, *, category, title: str, body: str, component: str | None) -> int:
    """Record the caller's feedback as its OEM's, within the day's allowance."""
    check_feedback_quota(caller)
    return caller.repo.record_feedback(
        oem_id=caller.oem.id,
        category=category,
        title=title,
        body=body,
        component=component,
        submitted_by=caller.identity.label,
        channel="portal",
        at=caller.portal.now(),
    )


def roadmap(caller: Caller) -> dict | None:
    snapshot = caller.repo.latest_roadmap_snapshot()
    if snapshot is None:
        return None
    view = oem_view(snapshot.items, snapshot.changes, caller.oem.id)
    for item in view["items"]:
        item["id"] = shown_id(caller, item["id"], NEUTRAL_ITEM_PREFIX)
        item["component"] = branded(caller, item["component"])
        item["title"] = branded(caller, item["title"])
        item["description"] = branded(caller, item["description"])
        item["public_reason"] = branded(caller, item["public_reason"])
    changes = view["changes"]
    changes["added"] = [branded(caller, t) for t in changes["added"]]
    changes["removed"] = [branded(caller, t) for t in changes["removed"]]
    for move in changes["moved"]:
        move["title"] = branded(caller, move["title"])
    for item in view["shipped"]:
        item["id"] = shown_id(caller, item["id"], NEUTRAL_ITEM_PREFIX)
        item["title"] = branded(caller, item["title"])
    return {"horizon": snapshot.horizon, "generated_at": local(caller, snapshot.created_at), **view}


# -- regressions and rollbacks (docs/rollbacks.md) ------------------------------------------------
ROLLBACK_OUTCOMES = {
    "requested": "waiting for the release team's decision",
    "approved": "approved: runs in your next maintenance window outside a release freeze",
    "refused": "refused: your instance stays where it is",
    "done": "done: your instance runs the earlier version again",
    "failed": "did not complete: our release team has been alerted and will contact you",
}


def rollbacks_view(caller: Caller) -> dict:
    """What the caller's instance runs, where a rollback would take it (None: nowhere, or
    a request is open), and the OEM's own regression reports and rollback requests."""
    repo, oem_id = caller.repo, caller.oem.id
    installed = repo.installed_version(oem_id)
    back_to = None
    if installed is not None and repo.open_rollback_request(oem_id) is None:
        try:
            back_to = rollbacks.version_before(repo, oem_id, installed.release_id)
        except SignoffError:
            back_to = None
    return {
        "runs": installed.release_id if installed else None,
        "can_roll_back_to": back_to,
        "regressions": [regression_entry(caller, r) for r in repo.regression_reports(oem_id)],
        "requests": [rollback_entry(caller, r) for r in rollbacks.requests_of(repo, oem_id)],
    }


def regression_entry(caller: Caller, found) -> dict:
    """A report as its OEM sees it (its own words, unchanged)."""
    if not isinstance(found, rollbacks.RegressionReport):
        found = rollbacks.RegressionReport.from_row(found)
    return {
        "id": found.id,
        "release_id": found.release_id,
        "description": found.description,
        "reported_by": found.reported_by,
        "reported_at": local(caller, found.reported_at),
        "release_team_alerted": found.vendor_alerted_at is not None,
    }


def rollback_entry(caller: Caller, found: rollbacks.RollbackRequest) -> dict:
    """A request and its decision as its OEM sees it: never the run's log, which names
    the vendor's tools, nor which staff member decided."""
    return {
        "id": found.id,
        "from_release_id": found.from_release_id,
        "to_release_id": found.to_release_id,
        "status": str(found.status),
        "outcome": ROLLBACK_OUTCOMES[str(found.status)],
        "reason": found.reason,
        "requested_by": found.requested_by,
        "requested_at": local(caller, found.requested_at),
        "regression_id": found.regression_id,
        "decided_at": local(caller, found.decided_at),
        "decision_reason": branded(caller, found.decision_reason),
        "finished_at": local(caller, found.finished_at),
    }


def report_regression(caller: Caller, release_id: str, description: str, channel: str) -> dict:
    """Record the caller's report; the vendor is alerted from here when the portal has a
    way to (``Portal.alert_vendor``), else by the DAG ``regression_alerts`` within a minute."""
    send = caller.portal.alert_vendor

    def alert(subject: str, lines: list[str], *, key: str) -> None:
        send(subject, lines, key=key, repo=caller.repo)

    found = rollbacks.report(
        caller.repo,
        oem_id=caller.oem.id,
        release_id=release_id,
        description=description,
        actor=caller.identity.label,
        channel=channel,
        at=caller.portal.now(),
        alert=alert if send is not None else None,
    )
    return regression_entry(caller, found)


def request_rollback(caller: Caller, release_id: str, reason: str, regression_id: int | None, channel: str) -> dict:
    found = rollbacks.request_rollback(
        caller.repo,
        oem_id=caller.oem.id,
        release_id=release_id,
        reason=reason,
        actor=caller.identity.label,
        channel=channel,
        regression_id=regression_id,
        at=caller.portal.now(),
    )
    return rollback_entry(caller, found)


def rollback_status(exc: SignoffError) -> int:
    return 429 if isinstance(exc, rollbacks.TooManyReports) else signoff_status(exc)
