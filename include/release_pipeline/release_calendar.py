"""The AVA release train: which release is when, which releases share a notes window,
when each OEM delivery happens, and when nothing may be deployed.

Releases are numbered by their position on the train (``index``; 0 is the anchor
release, negative numbers lie before it) and named ``YYYY.NN``: the year of the
release day and its rank among that year's releases. Both sort the same way.

All arithmetic is done on calendar dates in the calendar's timezone and only then
turned into instants, so a release stays at its local release time across DST
changes.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pendulum
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from release_pipeline.config_loading import (
    InvalidConfig,
    config_dir,
    did_you_mean,
    load_located_yaml,
    validation_errors,
)

# plain groups: the DAGs' trigger forms validate with it too (JSON schema, ECMA-262 regex)
RELEASE_ID_PATTERN = re.compile(r"^(\d{4})\.(\d{2})$")


class UnknownRelease(ValueError):
    """A release id that is malformed or names no release of this calendar."""


class FreezeWindow(BaseModel):
    """Dates (inclusive, in the calendar timezone) on which nothing is deployed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _end_not_before_start(self) -> FreezeWindow:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class CalendarConfig(BaseModel):
    """``config/calendar.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    anchor: dt.date
    release_time: dt.time = dt.time(10, 0)
    cadence_weeks: int = Field(default=2, ge=1, le=8)
    releases_per_cycle: int = Field(default=2, ge=1, le=4)
    delivery_offset_days: int = Field(default=7, ge=0, le=28)
    # days between the install days of consecutive rollout waves (an OEM's ``wave``)
    wave_gap_days: int = Field(default=2, ge=1, le=14)
    freeze_windows: tuple[FreezeWindow, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return validate_timezone(value)


@functools.cache
def zone(name: str) -> pendulum.Timezone:
    """The IANA timezone ``name``, read from the tz database once per process: a fleet's
    OEMs share a few dozen zones, and each DAG-file parse validates every OEM's."""
    return pendulum.timezone(name)


def validate_timezone(value: str) -> str:
    """Pydantic-friendly check that ``value`` is an IANA timezone name."""
    try:
        zone(value)
    except Exception:
        raise ValueError(f"{value!r} is not a known IANA timezone{did_you_mean(value, _timezone_names())}") from None
    return value


def _timezone_names() -> list[str]:
    import zoneinfo

    return sorted(zoneinfo.available_timezones())


def load_calendar(path: Path | None = None) -> ReleaseCalendar:
    """Read and validate ``config/calendar.yaml``; raises :class:`InvalidConfig`."""
    located = load_located_yaml(path or config_dir() / "calendar.yaml")
    try:
        return ReleaseCalendar(CalendarConfig.model_validate(located.data))
    except ValidationError as exc:
        raise InvalidConfig(validation_errors(exc, CalendarConfig, located, (), "calendar")) from None


@dataclass(frozen=True, order=True)
class Release:
    index: int
    id: str
    at: pendulum.DateTime  # the release instant, in the calendar timezone

    @property
    def date(self) -> dt.date:
        return self.at.date()

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class NotesWindow:
    """The releases whose notes are published together as the general release notes.

    ``start``/``end`` bound the release days of the window (end exclusive: the first
    release of the next window); ``changes_since`` is when the changes of its first
    release started to be merged (the previous release).
    """

    index: int
    releases: tuple[Release, ...]
    start: pendulum.DateTime
    end: pendulum.DateTime
    changes_since: pendulum.DateTime

    @property
    def key(self) -> str:
        return f"{self.releases[0].id}-{self.releases[-1].id}"

    @property
    def last_release(self) -> Release:
        return self.releases[-1]

    @property
    def publish_at(self) -> pendulum.DateTime:
        return self.last_release.at

    def __contains__(self, release: object) -> bool:
        return release in self.releases


@dataclass(frozen=True)
class DeliveryCycle:
    """A four-weekly OEM delivery: the cycle's last release, installed a week later."""

    index: int
    window: NotesWindow
    install_at: pendulum.DateTime

    @property
    def release(self) -> Release:
        return self.window.last_release

    @property
    def key(self) -> str:
        return self.window.key


class ReleaseCalendar:
    def __init__(self, config: CalendarConfig):
        self.config = config
        self.tz = zone(config.timezone)
        self._cadence_days = 7 * config.cadence_weeks
        self._per_cycle = config.releases_per_cycle

    @classmethod
    def from_dict(cls, data: dict) -> ReleaseCalendar:
        return cls(CalendarConfig.model_validate(data))

    def to_dict(self) -> dict:
        return self.config.model_dump(mode="json")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReleaseCalendar) and other.config == self.config

    def __hash__(self) -> int:
        return hash(self.config)

    # -- releases -------------------------------------------------------------------
    def _release_date(self, index: int) -> dt.date:
        return self.config.anchor + dt.timedelta(days=self._cadence_days * index)

    def _first_index_of_year(self, year: int) -> int:
        days = (dt.date(year, 1, 1) - self.config.anchor).days
        return math.ceil(days / self._cadence_days)

    def release(self, index: int) -> Release:
        day = self._release_date(index)
        rank = index - self._first_index_of_year(day.year) + 1
        moment = pendulum.datetime(
            day.year,
            day.month,
            day.day,
            self.config.release_time.hour,
            self.config.release_time.minute,
            tz=self.tz,
        )
        return Release(index=index, id=f"{day.year:04d}.{rank:02d}", at=moment)

    def release_by_id(self, release_id: str) -> Release:
        match = RELEASE_ID_PATTERN.match(release_id or "")
        if not match:
            raise UnknownRelease(f"{release_id!r} is not a release id (expected YYYY.NN, e.g. 2026.24)")
        year, rank = int(match[1]), int(match[2])
        release = self.release(self._first_index_of_year(year) + rank - 1)
        if rank < 1 or release.date.year != year:
            raise UnknownRelease(f"{release_id!r} names no release: {year} has no train number {rank:02d}")
        return release

    def release_at(self, moment: dt.datetime) -> Release:
        """The latest release cut at or before ``moment``."""
        local = pendulum.instance(moment).in_timezone(self.tz)
        index = (local.date() - self.config.anchor).days // self._cadence_days
        release = self.release(index)
        if release.at > local:  # on the release day, before the release time
            release = self.release(index - 1)
        return release

    def next_release(self, moment: dt.datetime) -> Release:
        """The first release cut strictly after ``moment``."""
        return self.release(self.release_at(moment).index + 1)

    def previous(self, release: Release) -> Release:
        return self.release(release.index - 1)

    def following(self, release: Release) -> Release:
        return self.release(release.index + 1)

    def releases_between(self, after: Release | None, until: Release) -> list[Release]:
        """Releases in ``(after, until]``; all of them up to ``until`` need a start."""
        first = until.index if after is None else after.index + 1
        return [self.release(i) for i in range(first, until.index + 1)]

    # -- notes windows and delivery cycles -------------------------------------------
    def notes_window(self, index: int) -> NotesWindow:
        first = index * self._per_cycle
        releases = tuple(self.release(first + i) for i in range(self._per_cycle))
        return NotesWindow(
            index=index,
            releases=releases,
            start=releases[0].at,
            end=self.release(first + self._per_cycle).at,
            changes_since=self.release(first - 1).at,
        )

    def notes_window_of(self, release: Release) -> NotesWindow:
        return self.notes_window(release.index // self._per_cycle)

    def notes_window_at(self, moment: dt.datetime) -> NotesWindow:
        """The window whose release days span ``moment``."""
        return self.notes_window_of(self.release_at(moment))

    def notes_windows_between(self, start: dt.datetime, end: dt.datetime) -> list[NotesWindow]:
        """Windows whose publication falls in ``[start, end)``."""
        windows = []
        window = self.notes_window_at(start)
        if window.publish_at < start:
            window = self.notes_window(window.index + 1)
        while window.publish_at < end:
            windows.append(window)
            window = self.notes_window(window.index + 1)
        return windows

    def delivery_cycle(self, index: int) -> DeliveryCycle:
        window = self.notes_window(index)
        install = window.last_release.at.add(days=self.config.delivery_offset_days)
        return DeliveryCycle(index=index, window=window, install_at=install)

    def delivery_cycle_of(self, release: Release) -> DeliveryCycle:
        return self.delivery_cycle(release.index // self._per_cycle)

    def delivery_cycle_at(self, moment: dt.datetime) -> DeliveryCycle:
        """The current cycle: the latest whose delivery release is out at ``moment``."""
        cycle = self.delivery_cycle_of(self.release_at(moment))
        if cycle.release.at > pendulum.instance(moment):
            cycle = self.delivery_cycle(cycle.index - 1)
        return cycle

    def delivery_cycle_by_release_id(self, release_id: str) -> DeliveryCycle:
        return self.delivery_cycle_of(self.release_by_id(release_id))

    def next_cycle(self, cycle: DeliveryCycle) -> DeliveryCycle:
        return self.delivery_cycle(cycle.index + 1)

    # -- freezes --------------------------------------------------------------------
    def freeze_at(self, moment: dt.datetime) -> FreezeWindow | None:
        """The freeze window covering ``moment`` (judged on the calendar-timezone date)."""
        day = pendulum.instance(moment).in_timezone(self.tz).date()
        return next((f for f in self.config.freeze_windows if f.start <= day <= f.end), None)

    def freeze_span(self, freeze: FreezeWindow) -> tuple[pendulum.DateTime, pendulum.DateTime]:
        """The instants ``freeze`` covers, as ``freeze_at`` judges them: from midnight of
        its first day to midnight after its last (calendar timezone; end exclusive)."""
        after = freeze.end + dt.timedelta(days=1)
        return (
            pendulum.datetime(freeze.start.year, freeze.start.month, freeze.start.day, tz=self.tz),
            pendulum.datetime(after.year, after.month, after.day, tz=self.tz),
        )

    def first_moment_after_freeze(self, moment: dt.datetime) -> pendulum.DateTime:
        """``moment`` itself when no freeze covers it, else the first moment after the
        freeze: midnight (calendar timezone) of the day after its last day. Freezes that
        touch or overlap are waited out together, so the answer is never frozen."""
        at = pendulum.instance(moment).in_timezone(self.tz)
        while (freeze := self.freeze_at(at)) is not None:
            day = freeze.end + dt.timedelta(days=1)
            # a midnight that a DST change skips becomes the first moment of that day
            at = pendulum.datetime(day.year, day.month, day.day, tz=self.tz)
        return at

    def deploy_moment(self, release: Release) -> pendulum.DateTime:
        """When ``release`` may reach the vendor production: its release moment, or the
        first moment after the freeze that covers it."""
        return self.first_moment_after_freeze(release.at)

    @cached_property
    def description(self) -> str:
        return (
            f"every {self.config.cadence_weeks} weeks from {self.config.anchor} "
            f"at {self.config.release_time:%H:%M} {self.config.timezone}"
        )
