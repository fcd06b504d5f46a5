"""Rollout waves: OEMs install a release in waves, and a release that went wrong on an
earlier wave's instance is halted for the later waves until staff resume it
(docs/waves.md).

- **When.** Wave 1 installs on install day, as every OEM did before waves (a freeze on
  install day postpones it to the next cycle). Wave n starts ``(n - 1) x wave_gap_days``
  later (calendar dates in the calendar's timezone, at install day's local time), moved
  past any freeze, and installs when the OEM's own maintenance window next opens outside
  a freeze.
- **Halt.** A halt of release R is recorded with its cause and the wave whose instance
  caused it; it holds back every OEM of a *later* wave (a staff halt: every wave) from
  installing R or any later release while the instance would newly run R's changes
  (builds are cumulative: a later release still carries them). Halts and resumes are
  events (``wave_halts``): R is halted while its latest event is a halt.

Pure rules over the repository's ``WaveStore``; no Airflow, no sends (the delivery
process and the CLI tell people, with the texts and keys from here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pendulum

from release_pipeline.deadlines import local_time
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import DeliveryCycle, ReleaseCalendar

CAUSES = ("rolled_back", "verify_failed", "regression", "staff")
STAFF_WAVE = 0  # a staff halt holds back every wave, the first included
POSTPONED_REASON = "while a problem is investigated"


class NotHalted(ValueError):
    """A resume of a release that is not halted."""


# -- when each wave installs -------------------------------------------------------------------
def wave_install_day(train: ReleaseCalendar, cycle: DeliveryCycle, oem: Oem) -> pendulum.DateTime:
    """When the OEM's wave starts in ``cycle``: install day for wave 1; for wave n,
    ``(n - 1) x wave_gap_days`` calendar days later at the same local time of the
    calendar's timezone (a DST change in between does not move it by an hour), then the
    first moment after a freeze that covers it."""
    if oem.wave == 1:
        return cycle.install_at
    local = cycle.install_at.in_timezone(train.tz)
    day = local.date() + dt.timedelta(days=(oem.wave - 1) * train.config.wave_gap_days)
    moment = pendulum.datetime(day.year, day.month, day.day, local.hour, local.minute, tz=train.tz)
    return train.first_moment_after_freeze(moment)


def wave_opening(train: ReleaseCalendar, oem: Oem, moment: dt.datetime) -> pendulum.DateTime:
    """The OEM's maintenance window opening at or after ``moment`` where its wave
    installs. Wave 1 keeps install day's rule (a frozen opening postpones the install to
    the next cycle, the last look says so); a later wave takes the first opening outside
    every freeze."""
    opening = oem.next_maintenance_opening(moment)
    if oem.wave == 1:
        return opening
    while train.freeze_at(opening) is not None:
        opening = oem.next_maintenance_opening(train.first_moment_after_freeze(opening))
    return opening


def wave_install_at(train: ReleaseCalendar, cycle: DeliveryCycle, oem: Oem) -> pendulum.DateTime:
    """When the OEM's delivery of ``cycle`` installs (and its gate settles): its wave's
    maintenance window opening (:func:`wave_opening` of :func:`wave_install_day`)."""
    return wave_opening(train, oem, wave_install_day(train, cycle, oem))


def wave_problems(train: ReleaseCalendar, oems: Iterable[Oem]) -> list[str]:
    """The OEMs whose wave would start at or after the next cycle's release (when the next
    cycle's delivery run starts): their wave would overlap the next delivery."""
    config = train.config
    room = 7 * config.cadence_weeks * config.releases_per_cycle - config.delivery_offset_days
    problems = []
    for oem in oems:
        days = (oem.wave - 1) * config.wave_gap_days
        if days >= room:
            problems.append(
                f"OEM {oem.id!r}: field 'wave': wave {oem.wave} starts {days} days after install day "
                f"({oem.wave - 1} x wave_gap_days {config.wave_gap_days}), not before the next cycle's release "
                f"{room} days after it; lower its wave or the calendar's wave_gap_days"
            )
    return problems


# -- halts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Halt:
    """A release halted for the waves after ``wave`` (as things stand: the earliest wave
    any of its halts since the last resume came from)."""

    id: int  # the event that started it: keys of what it tells name it
    release_id: str
    cause: str
    detail: str
    actor: str
    at: pendulum.DateTime
    wave: int
    oem_id: str | None  # the instance that caused it (vendor side only)

    def holds(self, wave: int) -> bool:
        """Whether an OEM of ``wave`` is held back."""
        return wave > self.wave

    @property
    def scope(self) -> str:
        return "every wave" if self.wave == STAFF_WAVE else f"waves after {self.wave}"

    def describe(self) -> str:
        """For vendor staff (names the instance that caused it)."""
        by = f" on the instance of {self.oem_id}" if self.oem_id else ""
        return f"{self.release_id} halted for {self.scope}: {self.cause.replace('_', ' ')}{by} ({self.detail})"

    def as_json(self) -> dict[str, Any]:
        return {
            "release": self.release_id,
            "cause": self.cause,
            "detail": self.detail,
            "by": self.actor,
            "at": self.at.in_timezone("UTC").isoformat(),
            "wave": self.wave,
            "oem": self.oem_id,
        }


def current_halt(events: Iterable[Any]) -> Halt | None:
    """The halt standing after ``events`` (one release's rows of ``wave_halts``, oldest
    first): the first halt after the last resume, widened to the earliest wave of the
    halts that came after it."""
    halt = None
    for event in events:
        if event.event == "resumed":
            halt = None
        elif halt is None:
            halt = Halt(
                id=event.id,
                release_id=event.release_id,
                cause=event.cause,
                detail=event.detail,
                actor=event.actor,
                at=pendulum.instance(event.at),
                wave=event.wave,
                oem_id=event.oem_id,
            )
        elif event.wave < halt.wave:
            halt = replace(halt, wave=event.wave)
    return halt


def halt(
    repo,
    release_id: str,
    *,
    cause: str,
    detail: str,
    actor: str,
    at: dt.datetime,
    wave: int = STAFF_WAVE,
    oem_id: str | None = None,
) -> bool:
    """Halt ``release_id`` for the waves after ``wave`` (staff: ``STAFF_WAVE``, every
    wave). Once per release while it is halted: returns True when this starts a halt,
    False when it was halted already (a halt from an earlier wave than the standing one
    is still recorded: it widens who is held back)."""
    if cause not in CAUSES:
        raise ValueError(f"cause {cause!r}: expected one of {', '.join(CAUSES)}")
    if not detail or not detail.strip():
        raise ValueError("a halt needs a detail: why the release is halted")
    event = {
        "event": "halted",
        "cause": cause,
        "wave": wave,
        "oem_id": oem_id,
        "detail": detail.strip(),
        "actor": actor,
    }

    def decide(history):
        standing = current_halt(history)
        return event if standing is None or wave < standing.wave else None

    history, _ = repo.append_wave_event(release_id, decide, at=pendulum.instance(at))
    return current_halt(history) is None


def resume(repo, release_id: str, *, reason: str, actor: str, at: dt.datetime) -> Halt:
    """Lift the halt of ``release_id``; returns the halt lifted. Raises :class:`NotHalted`."""
    if not reason or not reason.strip():
        raise ValueError("a resume needs a reason")
    event = {"event": "resumed", "detail": reason.strip(), "actor": actor}
    history, appended = repo.append_wave_event(
        release_id, lambda h: event if current_halt(h) is not None else None, at=pendulum.instance(at)
    )
    if appended is None:
        raise NotHalted(f"{release_id} is not halted")
    return current_halt(history)


def halt_of(repo, release_id: str) -> Halt | None:
    """The halt standing on ``release_id`` (None: not halted)."""
    return current_halt(repo.wave_events(release_id))


def halts(repo) -> dict[str, Halt]:
    """Every release halted now, by id."""
    by_release: dict[str, list] = {}
    for event in repo.wave_events():
        by_release.setdefault(event.release_id, []).append(event)
    return {r: h for r, events in by_release.items() if (h := current_halt(events)) is not None}


def blocking(halted: Mapping[str, Halt], *, installed: str | None, target: str, wave: int) -> Halt | None:
    """The halt that holds back an OEM of ``wave`` from taking its instance from
    ``installed`` to ``target``: a halted release in (installed, target] (its changes would
    be newly run: a later release is a cumulative build that still carries them), halted
    for that wave. The earliest such release; None: the install may go on."""
    for release_id in sorted(halted):
        if (installed or "") < release_id <= target and halted[release_id].holds(wave):
            return halted[release_id]
    return None


def halt_cause_of_failure(outcome: str) -> str:
    """The cause a failed delivery's outcome (``recover``'s words) halts its release with."""
    return "verify_failed" if "verification failed" in outcome else "rolled_back"


# -- what is said --------------------------------------------------------------------------------
def vendor_alert(halt: Halt) -> tuple[str, list[str], str]:
    """(subject, lines, key) of the one alert to vendor staff about a halt."""
    return (
        f"Release {halt.release_id} halted for {halt.scope}",
        [
            halt.describe(),
            f"Later-wave OEMs are told their install is postponed {POSTPONED_REASON}.",
            f"Resume with: release-train wave resume {halt.release_id} --reason TEXT --by NAME",
        ],
        f"wave:halted:{halt.release_id}:{halt.id}",
    )


def postponed_message(oem: Oem, *, target: str, installed: str, at: dt.datetime) -> tuple[str, list[str]]:
    """(subject, lines) telling an OEM its install is postponed: its own brand and
    versions only, no cause, no other OEM (it still goes through the white-label step)."""
    return (
        f"{oem.brand_name} {target} postponed {POSTPONED_REASON}",
        [
            f"The upgrade of your instance to {target} is postponed {POSTPONED_REASON} "
            f"(as of {local_time(at, oem.timezone)}).",
            f"Your instance stays on {installed}. Once it is cleared, the upgrade runs in your next "
            "maintenance window; you will be told when it is done.",
        ],
    )


def postponed_key(oem_id: str, target: str, halt: Halt, cycle_key: str) -> str:
    """Once per OEM, target, halt and delivery cycle: a halt after a resume tells again,
    and so does a new cycle's install day passing under the same halt."""
    return f"wave:postponed:{oem_id}:{target}:{cycle_key}:{halt.id}"
