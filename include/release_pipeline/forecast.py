"""The forecast of an OEM's next install: what its delivery run will do if nothing changes.

Built from the same rules the run follows (``delivery.aim``, ``assess``, the gate's
settle moment, the last look's freeze check), so what it says is what happens: the
simulated year checks it against every delivery. Read by ``release-train forecast``,
``explain``, the portal's "Next install" page, the reminders and the staff digest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pendulum

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.deadlines import SignoffDeadline, local_time, signoff_deadline
from release_pipeline.delivery import SignoffAssessment, aim
from release_pipeline.delivery_process import signoff_of
from release_pipeline.models import DeliveryStatus, ReleaseStatus
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import DeliveryCycle, FreezeWindow, ReleaseCalendar
from release_pipeline.signoff import OwedSignoff, still_owed
from release_pipeline.waves import POSTPONED_REASON, Halt, blocking, halts, wave_install_day, wave_opening


@dataclass(frozen=True)
class Forecast:
    oem_id: str
    timezone: str
    cycle_key: str
    running: str | None  # the version the instance runs (None: not recorded yet)
    aims_at: str | None  # the newest production release the run aims at
    install_at: pendulum.DateTime  # when the run installs: install day's window opening (UTC)
    deadline: SignoffDeadline
    installs: str | None  # what is installed then if nothing changes (None: nothing)
    owed: tuple[OwedSignoff, ...]  # what still needs a sign-off, and from whom
    conflicts: tuple[str, ...]  # freeze or maintenance-window conflicts
    outcome: str  # what happens if nothing changes, one sentence
    signoff: SignoffAssessment
    wave: int = 1  # the OEM's rollout wave
    halt: Halt | None = None  # the halt holding the install back (vendor side: names its cause)

    @property
    def pending(self) -> tuple[OwedSignoff, ...]:
        return tuple(o for o in self.owed if o.state == "pending")

    def as_json(self) -> dict:
        return {
            "oem": self.oem_id,
            "cycle": self.cycle_key,
            "running": self.running,
            "aims_at": self.aims_at,
            "install_at": self.install_at.in_timezone(self.timezone).isoformat(),
            "install_at_shown": local_time(self.install_at, self.timezone),
            "timezone": self.timezone,
            "sign_off_deadline": self.deadline.as_json(),
            "installs": self.installs,
            "owed": [o.as_json() for o in self.owed],
            "conflicts": list(self.conflicts),
            "if_nothing_changes": self.outcome,
            "wave": self.wave,
            "halt": self.halt.as_json() if self.halt else None,
        }


def next_install_cycle(
    repo: ReleaseRepository, train: ReleaseCalendar, oem_id: str, now: dt.datetime, oem: Oem | None = None
) -> DeliveryCycle:
    """The cycle of the OEM's next install: the current one, unless its install day (its
    wave's, with ``oem``) has passed and its delivery is over (then the next)."""
    cycle = train.delivery_cycle_at(now)
    install_day = wave_install_day(train, cycle, oem) if oem is not None else cycle.install_at
    if install_day < now and any(
        d.cycle_key == cycle.key and d.status != DeliveryStatus.WAITING for d in repo.deliveries(oem_id)
    ):
        cycle = train.next_cycle(cycle)
    return cycle


def forecast(repo: ReleaseRepository, train: ReleaseCalendar, oem: Oem, now: dt.datetime) -> Forecast:
    """What the OEM's next delivery installs, when, what is still owed and by whom,
    and what gets in the way, as things stand at ``now``."""
    now = pendulum.instance(now)
    cycle = next_install_cycle(repo, train, oem.id, now, oem)
    # the gate settles when the wave's install day's window opens (or at once, when it has passed)
    wave_day = wave_install_day(train, cycle, oem)
    install_at = wave_opening(train, oem, max(wave_day, now)).in_timezone("UTC")
    deadline = signoff_deadline(oem, cycle)
    recorded = repo.installed_version(oem.id)
    running = recorded.release_id if recorded else None
    aim_id = (
        aim(repo.release_ids([ReleaseStatus.DEPLOYED]), installed=running, cycle_release=cycle.release.id)
        if running
        else None
    )
    signoff = signoff_of(repo, oem.id, running or "", aim_id, oem.signoff_policy)
    freeze = train.freeze_at(install_at)
    conflicts = _conflicts(oem, wave_day, install_at, freeze)
    held = blocking(halts(repo), installed=running, target=signoff.target, wave=oem.wave) if signoff.target else None
    installs = None if freeze or held else signoff.target
    outcome = _outcome(oem, running, aim_id, signoff, install_at, deadline, freeze)
    if held and not freeze:
        outcome = (
            f"{signoff.target} is postponed {POSTPONED_REASON}: it installs in your first maintenance window "
            f"after it is cleared; until then the instance stays on {running}"
        )
    return Forecast(
        oem_id=oem.id,
        timezone=oem.timezone,
        cycle_key=cycle.key,
        running=running,
        aims_at=aim_id,
        install_at=install_at,
        deadline=deadline,
        installs=installs,
        owed=tuple(still_owed(oem, signoff)),
        conflicts=conflicts,
        outcome=outcome,
        signoff=signoff,
        wave=oem.wave,
        halt=held,
    )


def _conflicts(
    oem: Oem, wave_day: pendulum.DateTime, install_at: pendulum.DateTime, freeze: FreezeWindow | None
) -> tuple[str, ...]:
    said = []
    if freeze:
        said.append(f"install day falls in the {freeze.name} ({freeze.start} to {freeze.end}): nothing is installed")
    install_day = wave_day.in_timezone(oem.timezone).date()
    if install_at.in_timezone(oem.timezone).date() > install_day:
        said.append(
            f"no maintenance window on install day ({install_day:%A %d %B %Y}): "
            f"the install waits for the next one, {local_time(install_at, oem.timezone)}"
        )
    return tuple(said)


def _outcome(
    oem: Oem,
    running: str | None,
    aim_id: str | None,
    signoff: SignoffAssessment,
    install_at: pendulum.DateTime,
    deadline: SignoffDeadline,
    freeze: FreezeWindow | None,
) -> str:
    when = local_time(install_at, oem.timezone)
    if running is None:
        return "no version recorded for the instance: its first delivery reads it over SSH"
    if aim_id is None:
        return f"nothing newer than {running} has reached production; the next release is checked {when}"
    if freeze:
        return f"install day {when} falls in the {freeze.name}: the upgrade waits for the next cycle"
    if signoff.complete:
        return f"installs {aim_id} on {when}: every change is approved"
    reasons = "; ".join(signoff.reasons())
    if signoff.target:
        return f"installs {signoff.target} on {when}; {aim_id} follows once {reasons} (sign-off due {deadline.shown()})"
    later = " (or as soon as it is, within the cycle)" if oem.install_when_approved else ""
    return (
        f"nothing installable yet: {reasons}; sign-off due {deadline.shown()}; "
        f"if nothing changes, the instance stays on {running}{later}"
    )
