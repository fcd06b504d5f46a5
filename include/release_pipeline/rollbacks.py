"""Regressions and rollbacks requested by OEMs (docs/rollbacks.md).

The rules, as the vendor's release manager decides them:

- **R1 report.** An OEM reports a regression on the release its instance runs (the
  installed version recorded), never on another; the description says what broke. The
  vendor is alerted at once (keyed by the report, so never twice); a report stands
  whether or not the alert got through, and the rollbacks DAG alerts the ones that did
  not. A report counts for the wave halt (the lead wires ``waves.halt`` to
  :func:`report`).
- **R2 request.** An OEM asks to go back from the release its instance runs to the
  version it ran before: the ``from_release_id`` of the delivery that installed that
  release. An instance not put on its release by a delivery has nothing to go back to.
  One open request (requested or approved) per OEM at a time.
- **R3 decision.** Staff approve or refuse a request that is ``requested``, with a
  reason; a decided request is never decided again (a clear error says how it was
  decided). An approval is refused when the instance no longer runs the release the
  request was for (it moved on meanwhile: refuse it, the OEM asks again).
- **R4 execution.** An approved rollback runs in the OEM's next maintenance window
  outside a freeze (``DeliveryProcess.roll_back_on_request``), with the OEM's rollback
  command, the instance's lock and the health check of a failed delivery's rollback.
  The delivery of the rolled-back release is recorded ``rolled_back`` in
  ``deliveries``; the instance's recorded version goes back.
- **R5 after.** The approvals of what the instance no longer runs (the net changes
  of ``(to, from]``: the ledger's L3/L4) are withdrawn: the next cycle asks the OEM again
  for exactly those, and for nothing it still runs. Approvals of releases the instance
  never ran are untouched: the OEM never had them, its word on them still stands.

History is append-only (``rollback_events``, ``approval_events``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pendulum

from release_pipeline import inputs
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.db.rollbacks import RollbackConflict
from release_pipeline.ledger import net
from release_pipeline.models import DeliveryStatus, ReleaseDbError, RollbackStatus
from release_pipeline.signoff import Conflict, Invalid, NotFound, SignoffError

log = logging.getLogger(__name__)

CHANNELS = frozenset({"portal", "api", "cli"})
# each report alerts the vendor's release managers: a bound on what one OEM can send them
REPORTS_PER_DAY = 10
TEXT = inputs.Rule(inputs.MAX_COMMENT, multiline=True, required=True)

# alert_vendor(subject, lines, *, key): the vendor's release managers, once per key
Alert = Callable[..., None]


class TooManyReports(SignoffError):
    """The OEM reported its day's worth of regressions (:data:`REPORTS_PER_DAY`)."""


@dataclass(frozen=True)
class RegressionReport:
    id: int
    oem_id: str
    release_id: str
    description: str
    reported_by: str
    channel: str
    reported_at: dt.datetime
    vendor_alerted_at: dt.datetime | None

    @classmethod
    def from_row(cls, row) -> RegressionReport:
        return cls(
            row.id,
            row.oem_id,
            row.release_id,
            row.description,
            row.reported_by,
            row.channel,
            row.created_at,
            row.vendor_alerted_at,
        )


@dataclass(frozen=True)
class RollbackRequest:
    id: int
    oem_id: str
    from_release_id: str
    to_release_id: str
    reason: str
    requested_by: str
    channel: str
    status: RollbackStatus
    requested_at: dt.datetime
    regression_id: int | None = None
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    decision_reason: str | None = None
    finished_at: dt.datetime | None = None
    detail: str | None = None

    @classmethod
    def from_row(cls, row) -> RollbackRequest:
        return cls(
            id=row.id,
            oem_id=row.oem_id,
            from_release_id=row.from_release_id,
            to_release_id=row.to_release_id,
            reason=row.reason,
            requested_by=row.requested_by,
            channel=row.channel,
            status=RollbackStatus(row.status),
            requested_at=row.created_at,
            regression_id=row.regression_id,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            decision_reason=row.decision_reason,
            finished_at=row.finished_at,
            detail=row.detail,
        )


def _now(at: dt.datetime | None) -> pendulum.DateTime:
    return pendulum.instance(at).in_timezone("UTC") if at is not None else pendulum.now("UTC")


def _text(field: str, value: str | None) -> str:
    try:
        TEXT.check(field, value)
    except inputs.InvalidInput as exc:
        raise Invalid(str(exc)) from None
    return value.strip()


def _who(actor: str | None, what: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise Invalid(f"{what} needs the name of who does it")
    try:
        inputs.NAME.check("actor", actor)
    except inputs.InvalidInput as exc:
        raise Invalid(str(exc)) from None
    return actor


def _channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise Invalid(f"unknown channel {channel!r} (one of {', '.join(sorted(CHANNELS))})")
    return channel


def running_release(repo: ReleaseRepository, oem_id: str) -> str:
    """The release the OEM's instance runs, as recorded (NotFound: none recorded)."""
    installed = repo.installed_version(oem_id)
    if installed is None:
        raise NotFound(f"no release is recorded on the instance of {oem_id}")
    return installed.release_id


def _on_running(repo: ReleaseRepository, oem_id: str, release_id: str, what: str) -> None:
    running = running_release(repo, oem_id)
    if release_id != running:
        raise Conflict(f"{what} is for the release your instance runs ({running}), not {release_id}")


# -- R1 report ----------------------------------------------------------------------------------
def report(
    repo: ReleaseRepository,
    *,
    oem_id: str,
    release_id: str,
    description: str,
    actor: str,
    channel: str,
    at: dt.datetime | None = None,
    alert: Alert | None = None,
    wave: int | None = None,
) -> RegressionReport:
    """Record the OEM's regression report on the release its instance runs and, given
    ``alert``, alert the vendor at once (a failed alert is logged; the report stands
    and :func:`alert_pending` sends it later), halting the release for the waves after
    the OEM's ``wave`` first (whoever alerts, halts). Returns the report."""
    description = _text("description", description)
    actor, channel = _who(actor, "a regression report"), _channel(channel)
    _on_running(repo, oem_id, release_id, "a regression report")
    now = _now(at)
    if len([r for r in repo.regression_reports(oem_id) if r.created_at > now.subtract(days=1)]) >= REPORTS_PER_DAY:
        raise TooManyReports(
            f"{REPORTS_PER_DAY} regression reports in 24 hours is the most we take; add to an earlier one "
            "by contacting your release manager"
        )
    row = repo.add_regression_report(
        oem_id=oem_id,
        release_id=release_id,
        description=description,
        reported_by=actor,
        channel=channel,
        at=now,
    )
    found = RegressionReport.from_row(row)
    if alert is not None:
        if wave is not None:
            halt_later_waves(repo, found, wave, alert, at=at)
        found = send_alert(repo, found, alert, at=at) or found
    return found


def alert_of(found: RegressionReport) -> tuple[str, list[str], str]:
    """The vendor's alert of a report: subject, lines, idempotency key."""
    return (
        f"OEM {found.oem_id}: regression reported on {found.release_id} (report #{found.id})",
        [
            f"Reported by {found.reported_by} ({found.channel}) at {found.reported_at.isoformat()}:",
            found.description,
            f"See `release-train regression list --oem {found.oem_id}`; a rollback request, if any, "
            "shows in `release-train rollback list`.",
        ],
        f"regression:{found.oem_id}:{found.id}",
    )


def send_alert(
    repo: ReleaseRepository, found: RegressionReport, alert: Alert, *, at: dt.datetime | None = None
) -> RegressionReport | None:
    """Alert the vendor of ``found``; the report as now recorded, or None when the alert failed."""
    subject, lines, key = alert_of(found)
    try:
        alert(subject, lines, key=key)
    except Exception:
        log.exception("regression report #%s of %s: alerting the vendor failed; retried later", found.id, found.oem_id)
        return None
    repo.mark_regression_alerted(found.id, at=_now(at))
    return RegressionReport.from_row(repo.regression_report(found.id))


def alert_pending(
    repo: ReleaseRepository,
    alert: Alert,
    *,
    at: dt.datetime | None = None,
    wave_of: Callable[[str], int] | None = None,
) -> list[int]:
    """Alert the vendor of every report whose alert has not gone out (oldest first);
    the ids alerted now. One that fails again stays pending and does not stop the rest.
    Given ``wave_of`` (an OEM's rollout wave), each report first halts its release for
    the later waves (docs/waves.md): recorded even when the alert fails."""
    done = []
    for row in sorted(repo.regression_reports(unalerted=True), key=lambda r: r.id):
        found = RegressionReport.from_row(row)
        if wave_of is not None:
            halt_later_waves(repo, found, wave_of(found.oem_id), alert, at=at)
        if send_alert(repo, found, alert, at=at) is not None:
            done.append(row.id)
    return done


def halt_later_waves(
    repo: ReleaseRepository, found: RegressionReport, wave: int, alert: Alert, *, at: dt.datetime | None = None
) -> bool:
    """A regression report counts for the wave halt: the OEMs of later waves wait for the
    release until staff resume it. The vendor hears of a new halt once (its own key);
    whether it started one is returned."""
    from release_pipeline import waves

    new = waves.halt(
        repo,
        found.release_id,
        cause="regression",
        detail=f"regression reported by {found.oem_id} (report #{found.id}): {found.description}",
        actor=f"oem:{found.oem_id}",
        at=_now(at),
        wave=wave,
        oem_id=found.oem_id,
    )
    if new:
        subject, lines, key = waves.vendor_alert(waves.halt_of(repo, found.release_id))
        try:
            alert(subject, lines, key=key)
        except Exception:
            log.exception("release %s halted for the later waves: alerting the vendor failed", found.release_id)
    return new


# -- R2 request ---------------------------------------------------------------------------------
def version_before(repo: ReleaseRepository, oem_id: str, release_id: str) -> str:
    """The version the instance ran before a delivery put ``release_id`` on it."""
    delivery = repo.delivery(oem_id, release_id)
    if delivery is None or delivery.status != DeliveryStatus.INSTALLED or not delivery.from_release_id:
        raise Conflict(
            f"your instance was not upgraded to {release_id} by a delivery: there is no earlier version to go back to"
        )
    return delivery.from_release_id


def request_rollback(
    repo: ReleaseRepository,
    *,
    oem_id: str,
    release_id: str,
    reason: str,
    actor: str,
    channel: str,
    regression_id: int | None = None,
    at: dt.datetime | None = None,
) -> RollbackRequest:
    """The OEM asks to put its instance back from ``release_id`` (the release it runs)
    on the version it ran before (R2)."""
    reason = _text("reason", reason)
    actor, channel = _who(actor, "a rollback request"), _channel(channel)
    _on_running(repo, oem_id, release_id, "a rollback request")
    back_to = version_before(repo, oem_id, release_id)
    if regression_id is not None:
        found = repo.regression_report(regression_id)
        if found is None or found.oem_id != oem_id:
            raise NotFound(f"no regression report #{regression_id} of yours")
        if found.release_id != release_id:
            raise Conflict(f"regression report #{regression_id} is on {found.release_id}, not {release_id}")
    try:
        row = repo.add_rollback_request(
            oem_id=oem_id,
            from_release_id=release_id,
            to_release_id=back_to,
            reason=reason,
            requested_by=actor,
            channel=channel,
            regression_id=regression_id,
            at=_now(at),
        )
    except RollbackConflict as exc:
        raise Conflict(str(exc)) from None
    return RollbackRequest.from_row(row)


def request_of(repo: ReleaseRepository, request_id: int, oem_id: str | None = None) -> RollbackRequest:
    """Request ``request_id`` (``oem_id``'s only, when given: another's is not found)."""
    row = repo.rollback_request(request_id)
    if row is None or (oem_id is not None and row.oem_id != oem_id):
        raise NotFound(f"no rollback request #{request_id}" + (" of yours" if oem_id else ""))
    return RollbackRequest.from_row(row)


def requests_of(repo: ReleaseRepository, oem_id: str | None = None, status: str | None = None) -> list[RollbackRequest]:
    if status is not None and status not in {str(s) for s in RollbackStatus}:
        raise Invalid(f"unknown status {status!r} (one of {', '.join(s.value for s in RollbackStatus)})")
    return [RollbackRequest.from_row(r) for r in repo.rollback_requests(oem_id, status=status)]


# -- R3 decision --------------------------------------------------------------------------------
def _move(
    repo: ReleaseRepository, request_id: int, status: RollbackStatus, *, by: str, detail: str, at
) -> RollbackRequest:
    try:
        row = repo.move_rollback_request(request_id, status, actor=by, detail=detail, at=_now(at))
    except RollbackConflict as exc:
        raise Conflict(str(exc)) from None
    except ReleaseDbError as exc:
        raise NotFound(str(exc)) from None
    return RollbackRequest.from_row(row)


def approve(
    repo: ReleaseRepository, request_id: int, *, by: str, reason: str, at: dt.datetime | None = None
) -> RollbackRequest:
    """Staff approve a requested rollback (R3): it runs in the OEM's next maintenance window."""
    by, reason = _who(by, "a decision"), _text("--reason", reason)
    found = request_of(repo, request_id)
    if found.status == RollbackStatus.REQUESTED:
        running = repo.installed_version(found.oem_id)
        if running is None or running.release_id != found.from_release_id:
            now = running.release_id if running else "nothing recorded"
            raise Conflict(
                f"rollback request #{request_id} was for {found.from_release_id}, but the instance of "
                f"{found.oem_id} now runs {now}: refuse it (the OEM can ask again)"
            )
    return _move(repo, request_id, RollbackStatus.APPROVED, by=by, detail=reason, at=at)


def refuse(
    repo: ReleaseRepository, request_id: int, *, by: str, reason: str, at: dt.datetime | None = None
) -> RollbackRequest:
    """Staff refuse a requested rollback (R3), saying why (the OEM reads it)."""
    by, reason = _who(by, "a decision"), _text("--reason", reason)
    request_of(repo, request_id)
    return _move(repo, request_id, RollbackStatus.REFUSED, by=by, detail=reason, at=at)


def finish(
    repo: ReleaseRepository, request_id: int, status: RollbackStatus, *, detail: str, at: dt.datetime | None = None
) -> RollbackRequest:
    """The rollback's outcome (``done`` or ``failed``), recorded by the run that did it."""
    return _move(repo, request_id, RollbackStatus(status), by="release-train", detail=detail, at=at)


def decision_message(found: RollbackRequest, brand: str) -> tuple[str, list[str]]:
    """What the OEM is told of a staff decision (before the white-label step)."""
    if found.status == RollbackStatus.REFUSED:
        return (
            f"{brand} {found.from_release_id}: your rollback request was refused",
            [
                f"Your request #{found.id} to go back to {found.to_release_id} was refused.",
                f"Reason: {found.decision_reason}",
                f"Your instance stays on {found.from_release_id}.",
            ],
        )
    return (
        f"{brand} {found.from_release_id}: your rollback request was approved",
        [
            f"Your request #{found.id} to go back to {found.to_release_id} was approved.",
            f"Reason: {found.decision_reason}",
            "It runs in your next maintenance window outside a release freeze; you are told when it is done.",
        ],
    )


# -- R5 after -----------------------------------------------------------------------------------
def no_longer_run(repo: ReleaseRepository, found: RollbackRequest) -> list[str]:
    """The changes the instance no longer runs once back on ``to``: what moving from
    ``to`` to ``from`` newly brought (the ledger's L3, less what cancels out: L4)."""
    return [c.id for c in net(repo.changes_between(found.to_release_id, found.from_release_id))]


def withdraw_approvals(repo: ReleaseRepository, found: RollbackRequest) -> list[str]:
    """R5: the approvals of what the instance no longer runs no longer stand. Returns those changes."""
    changes = no_longer_run(repo, found)
    repo.withdraw_approvals(
        found.oem_id,
        changes,
        actor="release-train",
        comment=f"rolled back to {found.to_release_id} at your request (#{found.id}): asked again before it returns",
    )
    return changes
