"""The sign-off deadline of a delivery cycle per OEM, and when its reminders fall due.

Install day's maintenance window opening is when the approval gate settles (README,
"Release delivery"). The deadline an OEM is told is that moment minus its
``signoff_margin_days``, taken on the OEM's own wall clock (a DST change between them
does not move it by an hour), so the vendor's staff know in time who is in and who is
out. The gate still takes a sign-off until the window opens: the margin is a promise to
the vendor, not a trap for the OEM. Reminders count down to the deadline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pendulum

from release_pipeline.registry import Oem
from release_pipeline.release_calendar import DeliveryCycle


def local_time(moment: dt.datetime, timezone: str) -> str:
    """How a moment is shown to a person in ``timezone``: one format for every text."""
    local = pendulum.instance(moment).in_timezone(timezone)
    return f"{local:%A %d %B %Y %H:%M} ({timezone})"


@dataclass(frozen=True)
class SignoffDeadline:
    oem_id: str
    cycle_key: str
    timezone: str
    window_opens: pendulum.DateTime  # install day's maintenance window opening, UTC
    due: pendulum.DateTime  # the sign-off deadline, UTC
    reminder_days: tuple[int, ...]  # days before ``due``, largest first

    def shown(self) -> str:
        return local_time(self.due, self.timezone)

    def reminders(self) -> list[tuple[int, pendulum.DateTime]]:
        """(days before, moment in UTC) of each reminder, earliest first."""
        local = self.due.in_timezone(self.timezone)
        return [(days, local.subtract(days=days).in_timezone("UTC")) for days in self.reminder_days]

    def reminder_due(self, now: dt.datetime) -> int | None:
        """The reminder to send at ``now`` (its days before the deadline): the latest
        whose moment has passed, while the deadline has not. Earlier ones that were
        missed (the scheduler was down) are not sent late: the latest says the same."""
        now = pendulum.instance(now)
        if now >= self.due:
            return None
        passed = [days for days, at in self.reminders() if at <= now]
        return min(passed) if passed else None

    def as_json(self) -> dict:
        return {
            "due": self.due.in_timezone(self.timezone).isoformat(),
            "window_opens": self.window_opens.in_timezone(self.timezone).isoformat(),
            "timezone": self.timezone,
            "shown": self.shown(),
        }


def signoff_deadline(oem: Oem, cycle: DeliveryCycle) -> SignoffDeadline:
    """The OEM's sign-off deadline for ``cycle``: install day's window opening minus
    the OEM's margin, on its wall clock. Fixed by the calendar: a run still waiting
    after install day does not move it."""
    opens = oem.next_maintenance_opening(cycle.install_at).in_timezone("UTC")
    due = opens.in_timezone(oem.timezone).subtract(days=oem.signoff_margin_days).in_timezone("UTC")
    return SignoffDeadline(
        oem_id=oem.id,
        cycle_key=cycle.key,
        timezone=oem.timezone,
        window_opens=opens,
        due=due,
        reminder_days=oem.signoff_reminder_days,
    )
