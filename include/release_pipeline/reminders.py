"""Sign-off reminders to OEMs and the daily sign-off digest for vendor staff.

Both read the forecast of the next install (:mod:`release_pipeline.forecast`), so they
say what the delivery will do. A reminder goes to an OEM with pending changes at each of
its ``signoff_reminder_days`` before its deadline, once (its key names the cycle and the
day); it names every change still missing and who owes it (``signoff.still_owed``), in the
OEM's time zone, rendered through the white-label step. The digest tells vendor staff, once
a day, which OEMs are in or out of their next install day and why (``explain``'s answer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import pendulum

from release_pipeline.deadlines import local_time
from release_pipeline.forecast import Forecast
from release_pipeline.models import Change
from release_pipeline.notes import Audience, Rendered, render

REMINDER, DIGEST = "signoff_reminder", "signoff_digest"


def reminder_due(ahead: Forecast, now: dt.datetime) -> int | None:
    """The reminder to send now (days before the deadline), or None: nothing is pending,
    no reminder moment has come, or the deadline has passed."""
    if not ahead.pending:
        return None
    return ahead.deadline.reminder_due(now)


def reminder_key(ahead: Forecast, days: int) -> str:
    """One reminder per OEM, cycle and reminder day, whatever reruns."""
    return f"{REMINDER}:{ahead.cycle_key}:{ahead.oem_id}:{days}d"


def render_reminder(
    ahead: Forecast, days: int, changes: Mapping[str, Change], audience: Audience, *, portal_url: str
) -> Rendered:
    """The reminder for ``audience`` (the OEM): each change still missing, its release,
    title and who owes it, the deadline and install time in the OEM's time zone, and
    what happens if nothing changes."""

    def item(owed) -> dict:
        change = changes.get(owed.change_id)
        return {
            "change_id": owed.change_id,
            "release_id": owed.release_id,
            "title": change.title if change else owed.change_id,
            "approvers": ", ".join(owed.approvers),
        }

    pending = [item(o) for o in ahead.owed if o.state == "pending"]
    rejected = [item(o) for o in ahead.owed if o.state == "rejected"]
    return render(
        REMINDER,
        audience,
        subject=f"Reminder: {len(pending)} change(s) need your sign-off by {ahead.deadline.shown()}",
        days=days,
        deadline=ahead.deadline.shown(),
        install_at=local_time(ahead.install_at, ahead.timezone),
        pending=pending,
        rejected=rejected,
        outcome=ahead.outcome,
        portal_url=portal_url,
    )


def digest_key(day: dt.date) -> str:
    return f"{DIGEST}:{day.isoformat()}"


def digest_rows(answers: Iterable[dict]) -> list[dict]:
    """One row per OEM from its ``explain`` answer: in or out of its next install day, and why."""
    rows = []
    for answer in answers:
        owed = answer.get("owed", [])
        rows.append(
            {
                "oem_id": answer["oem"],
                "in": answer.get("installs") is not None,
                "installs": answer.get("installs"),
                "install_at": answer["install_day"]["at"],
                "deadline": answer["sign_off_deadline"]["shown"],
                "owed": [f"{o['change']} ({o['release']}, {o['state']}) from {', '.join(o['from'])}" for o in owed],
                "why": answer["next"],
                "wave": answer.get("wave", 1),
                "halt": _halt_line(answer.get("halt")),
            }
        )
    return sorted(rows, key=lambda r: (r["in"], r["oem_id"]))  # who is out first


def _halt_line(halt: dict | None) -> str | None:
    """The halt holding an OEM's install back, as staff read it (its cause and origin)."""
    if not halt:
        return None
    scope = "every wave" if halt["wave"] == 0 else f"waves after {halt['wave']}"
    origin = f" on the instance of {halt['oem']}" if halt.get("oem") else ""
    return f"{halt['release']} halted for {scope}: {halt['cause'].replace('_', ' ')}{origin}, by {halt['by']}"


def render_digest(rows: Sequence[dict], audience: Audience, day: dt.date) -> Rendered:
    out = sum(not r["in"] for r in rows)
    return render(
        DIGEST,
        audience,
        subject=f"Sign-off digest {day.isoformat()}: {len(rows) - out} OEM(s) in, {out} out of their next install",
        rows=rows,
        day=pendulum.date(day.year, day.month, day.day).format("dddd D MMMM YYYY"),
    )
