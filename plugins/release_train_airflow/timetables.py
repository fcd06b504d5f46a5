"""Schedules that follow the release train instead of a cron expression.

A cron such as ``0 10 * * 4/2`` drifts at month and year ends; the train is
"every N weeks from an anchor", which only the calendar knows. One run per release
(``kind="release"``) or per four-weekly delivery cycle (``kind="cycle"``).

The data interval of a run is when the changes it ships were merged: from the
previous release (of the previous cycle) up to this one. The run starts at the
release time plus ``offset``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pendulum
from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable

from release_pipeline.release_calendar import ReleaseCalendar, load_calendar

Kind = Literal["release", "cycle"]


# Airflow works out a DAG's next run again at every parse, from its latest run (none yet)
# and the present. A parse moments after a cut, before the scheduler made that period's
# run, would otherwise move the DAG on to the next period and lose this one; a DAG turned
# on later than this after a cut starts with the next period.
CATCHUP_GRACE = dt.timedelta(minutes=30)


class ReleaseTrainTimetable(Timetable):
    """With ``catchup=False`` the first run is the next period to come, not the last
    one that passed: turning a DAG on mid-cycle must not ship an old release (a period
    cut less than ``CATCHUP_GRACE`` ago still counts)."""

    def __init__(self, kind: Kind, calendar: ReleaseCalendar | None = None, offset: dt.timedelta = dt.timedelta()):
        if kind not in ("release", "cycle"):
            raise ValueError(f"kind must be 'release' or 'cycle', not {kind!r}")
        self.kind = kind
        self.calendar = calendar or load_calendar()
        self.offset = offset
        self.description = self._describe()
        # Airflow hashes a DAG, its schedule included, each time tasks are wired
        # (dozens of times per DAG at parse time); the parts never change
        self._hash = hash((kind, self.calendar, offset))

    def _describe(self) -> str:
        """What the UI shows as the schedule, e.g. ``release train: every 2 weeks from
        2026-01-08 at 10:00 Europe/Amsterdam``; the calendar says the train's part."""
        config, train = self.calendar.config, self.calendar.description
        if self.kind == "release":
            said = f"release train: {train}"
        else:
            every, releases = config.cadence_weeks * config.releases_per_cycle, config.releases_per_cycle
            said = f"cycle train: every {every} weeks, at the last of each cycle's {releases} releases ({train})"
        return said + (f", {self.offset} after the release" if self.offset else "")

    # -- the periods of this timetable --------------------------------------------------
    def _period(self, index: int) -> tuple[int, pendulum.DateTime, pendulum.DateTime]:
        """(index, changes since, release moment) of release or cycle ``index``."""
        if self.kind == "release":
            release = self.calendar.release(index)
            return index, self.calendar.previous(release).at, release.at
        window = self.calendar.notes_window(index)
        return index, window.changes_since, window.last_release.at

    def _index_at(self, moment: dt.datetime) -> int:
        """The latest period whose release moment is at or before ``moment``."""
        release = self.calendar.release_at(moment)
        if self.kind == "release":
            return release.index
        cycle = self.calendar.delivery_cycle_of(release)
        return cycle.index if cycle.release.at <= moment else cycle.index - 1

    def _info(self, index: int) -> DagRunInfo:
        _, since, at = self._period(index)
        utc_since, utc_at = since.in_timezone("UTC"), at.in_timezone("UTC")
        return DagRunInfo(run_after=utc_at + self.offset, data_interval=DataInterval(utc_since, utc_at))

    # -- Timetable protocol ---------------------------------------------------------------
    @property
    def summary(self) -> str:
        return self.description

    def infer_manual_data_interval(self, *, run_after: pendulum.DateTime) -> DataInterval:
        return self._info(self._index_at(run_after - self.offset)).data_interval

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            index = self._index_at(last_automated_data_interval.end) + 1
        else:
            if restriction.earliest is None:
                return None
            earliest = restriction.earliest
            if not restriction.catchup:
                earliest = max(earliest, pendulum.now("UTC") - CATCHUP_GRACE)
            index = self._index_at(earliest - self.offset)
            if self._info(index).run_after < earliest:
                index += 1
        info = self._info(index)
        if restriction.latest is not None and info.run_after > restriction.latest:
            return None
        return info

    def generate_run_id(self, *, run_type, run_after, data_interval, **extra) -> str:
        if data_interval is None or getattr(run_type, "value", run_type) != "scheduled":
            return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)
        index = self._index_at(data_interval.end)
        name = self.calendar.release(index).id if self.kind == "release" else self.calendar.notes_window(index).key
        return f"scheduled__{self.kind}_{name}"

    def serialize(self) -> dict[str, Any]:
        return {"kind": self.kind, "calendar": self.calendar.to_dict(), "offset": self.offset.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> ReleaseTrainTimetable:
        return cls(
            data["kind"],
            ReleaseCalendar.from_dict(data["calendar"]),
            dt.timedelta(seconds=data.get("offset", 0)),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReleaseTrainTimetable) and (self.kind, self.calendar, self.offset) == (
            other.kind,
            other.calendar,
            other.offset,
        )

    def __hash__(self) -> int:
        return self._hash
