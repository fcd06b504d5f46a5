""" "Where is OEM X, and why": one answer for the CLI (``release-train explain``,
``status --json``) built from the same rules the delivery runs by."""

from __future__ import annotations

import datetime as dt

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.deadlines import local_time
from release_pipeline.forecast import forecast
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import ReleaseCalendar


def explain(repo: ReleaseRepository, train: ReleaseCalendar, oem: Oem, now: dt.datetime) -> dict:
    """The version running, the next install day and what it would bring as things
    stand, each release in between with its sign-off and the blocking change, the sign-off
    deadline, the last delivery's outcome with its reason, the OEM's rollout wave and any
    halt holding it back, and what happens next (the forecast's answer, so the two never
    disagree)."""
    ahead = forecast(repo, train, oem, now)
    answer: dict = {
        "oem": oem.id,
        "running": ahead.running,
        "install_day": {
            "cycle": ahead.cycle_key,
            "at": ahead.install_at.in_timezone(oem.timezone).isoformat(),
            "timezone": oem.timezone,
            "shown": local_time(ahead.install_at, oem.timezone),
        },
        "sign_off_due": ahead.deadline.due.in_timezone(oem.timezone).isoformat(),
        "sign_off_deadline": ahead.deadline.as_json(),
        "signoff_policy": oem.signoff_policy.describe(),
        "aims_at": ahead.aims_at,
        "installs": ahead.installs,
        "owed": [o.as_json() for o in ahead.owed],
        "conflicts": list(ahead.conflicts),
        "releases": [
            {
                "release": r.release_id,
                "state": "approved" if r.complete else ("rejected" if r.rejected else "pending"),
                "pending": list(r.pending),
                "rejected": [
                    {"change": x.change_id, "by": x.approver or x.actor, "comment": x.comment} for x in r.rejected
                ],
                "waiting_for": [{"change": change, "for": who} for change, who in r.waiting],
            }
            for r in ahead.signoff.releases
        ],
        "last_delivery": _last_delivery(repo, oem.id),
        "next": ahead.outcome,
        "wave": ahead.wave,
        # the halt holding the next install back (staff view: its cause and where it came from)
        "halt": ahead.halt.as_json() if ahead.halt else None,
    }
    return answer


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
