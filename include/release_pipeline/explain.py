""" "Where is OEM X, and why": one answer for the CLI (``release-train explain``,
``status --json``) built from the same rules the delivery runs by."""

from __future__ import annotations

import datetime as dt

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.delivery import aim
from release_pipeline.delivery_process import signoff_of
from release_pipeline.models import ReleaseStatus
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import ReleaseCalendar


def explain(repo: ReleaseRepository, train: ReleaseCalendar, oem: Oem, now: dt.datetime) -> dict:
    """The version running, the next install day and what it would bring as things
    stand, each release in between with its sign-off and the blocking change, the last
    delivery's outcome with its reason, and what happens next."""
    recorded = repo.installed_version(oem.id)
    running = recorded.release_id if recorded else None
    cycle = train.delivery_cycle_at(now)
    if cycle.install_at < now and _delivery_over(repo, oem.id, cycle.key):
        cycle = train.next_cycle(cycle)
    install_at = max(cycle.install_at, now)
    due = oem.next_maintenance_opening(install_at)
    local = due.in_timezone(oem.timezone)
    answer: dict = {
        "oem": oem.id,
        "running": running,
        "install_day": {"cycle": cycle.key, "at": local.isoformat(), "timezone": oem.timezone},
        "sign_off_due": local.isoformat(),
        "signoff_policy": oem.signoff_policy.describe(),
        "aims_at": None,
        "releases": [],
        "last_delivery": _last_delivery(repo, oem.id),
    }
    if running is None:
        answer["next"] = "no version recorded for the instance: its first delivery reads it over SSH"
        return answer
    aim_id = aim(repo.release_ids([ReleaseStatus.DEPLOYED]), installed=running, cycle_release=cycle.release.id)
    signoff = signoff_of(repo, oem.id, running, aim_id, oem.signoff_policy)
    answer["aims_at"] = aim_id
    answer["releases"] = [
        {
            "release": r.release_id,
            "state": "approved" if r.complete else ("rejected" if r.rejected else "pending"),
            "pending": list(r.pending),
            "rejected": [
                {"change": x.change_id, "by": x.approver or x.actor, "comment": x.comment} for x in r.rejected
            ],
            "waiting_for": [{"change": change, "for": who} for change, who in r.waiting],
        }
        for r in signoff.releases
    ]
    when = f"{local:%A %d %B %Y %H:%M} ({oem.timezone})"
    freeze = train.freeze_at(due)
    if aim_id is None:
        answer["next"] = f"nothing newer than {running} has reached production; the next release is checked {when}"
    elif freeze:
        answer["next"] = f"install day {when} falls in the {freeze.name}: the upgrade waits for the next cycle"
    elif signoff.complete:
        answer["next"] = f"installs {aim_id} on {when}: every change is approved"
    elif signoff.target:
        answer["next"] = (
            f"installs {signoff.target} on {when}; {aim_id} follows once {'; '.join(signoff.reasons())} "
            f"(sign-off due {when})"
        )
    else:
        answer["next"] = f"nothing installable yet: {'; '.join(signoff.reasons())}; sign-off due {when}"
    return answer


def _delivery_over(repo: ReleaseRepository, oem_id: str, cycle_key: str) -> bool:
    return any(d.cycle_key == cycle_key and d.status != "waiting" for d in repo.deliveries(oem_id))


def _last_delivery(repo: ReleaseRepository, oem_id: str) -> dict | None:
    rows = sorted(repo.deliveries(oem_id), key=lambda d: d.updated_at)
    if not rows:
        return None
    last = rows[-1]
    return {
        "release": last.release_id,
        "status": last.status,
        "reason": last.detail,
        "attempt": last.attempt,
        "at": last.updated_at.isoformat(),
    }
