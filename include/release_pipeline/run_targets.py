"""What a DAG run acts on when nobody said, and whether what it waits for can still come.

A manual run of ``production_release`` with no parameters acts on the release due now
(the ledger's rule L5): the newest release whose cut has passed; one not recorded is cut
with every change since the last cut, one recorded but not settled is resumed, one in
production has its sign-off (re)opened, and any other settled one is never recorded
again: the run ends at once saying so. The deliveries act on the newest release that
reached the vendor production, and ``general_release_notes`` on the newest notes window
whose releases are all settled and of which at least one reached production. Nothing
qualifying ends the run at once, with the reason, instead of a wait.

A release that was never cut cannot settle: once a later release of the train is
recorded, the schedule has moved on without it (catch-up is off, and runs of
``production_release`` cut their releases in order), so nothing waits for it.

Pure functions over ``{release_id: status}`` of the recorded releases, so every rule is
tested without Airflow or a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pendulum

from release_pipeline.models import ReleaseStatus
from release_pipeline.release_calendar import NotesWindow, ReleaseCalendar

# a release in one of these will not change any more on its own
SETTLED = frozenset(
    {ReleaseStatus.DEPLOYED, ReleaseStatus.EMPTY, ReleaseStatus.QA_REJECTED, ReleaseStatus.DEPLOY_FAILED}
)
NEVER_CUT = "never cut"


class NothingToActOn(LookupError):
    """Nothing qualifies for a run with no parameters; the message says why."""


@dataclass(frozen=True)
class Choice:
    """What a run acts on (``key``: a release id or a window key) and why."""

    key: str
    release_ids: tuple[str, ...]
    reason: str


def never_cut(release_id: str, statuses: Mapping[str, str]) -> bool:
    """Not recorded while a later release is: the train moved on without it."""
    return release_id not in statuses and any(other > release_id for other in statuses)


def settled_status(release_id: str, statuses: Mapping[str, str]) -> str | None:
    """The release's final status (``NEVER_CUT`` for one that never will be), else None:
    it may still change (in QA, waiting for a freeze, or not cut yet)."""
    status = statuses.get(release_id)
    if status in SETTLED:
        return str(status)
    return NEVER_CUT if never_cut(release_id, statuses) else None


def unsettled(release_ids: Iterable[str], statuses: Mapping[str, str]) -> list[str]:
    """The releases of ``release_ids`` that may still change: what a wait waits for."""
    return sorted(r for r in release_ids if settled_status(r, statuses) is None)


def _deployed(statuses: Mapping[str, str]) -> list[str]:
    return sorted(r for r, status in statuses.items() if status == ReleaseStatus.DEPLOYED)


def _shown(train: ReleaseCalendar, moment: dt.datetime) -> str:
    return f"{pendulum.instance(moment).in_timezone(train.tz).format('ddd D MMM YYYY HH:mm')} ({train.tz.name})"


def release_due(
    train: ReleaseCalendar, now: dt.datetime, statuses: Mapping[str, str], baselines: Iterable[str] = ()
) -> Choice:
    """What a manual ``production_release`` run with no parameters acts on (L5): the
    newest release whose cut has passed, when there is something to do about it.
    ``baselines``: releases recorded as what the instances started on (never cut)."""
    due = train.release_at(now)
    status = statuses.get(due.id)
    following = train.following(due)
    next_cut = f"the next release, {following.id}, is cut {_shown(train, following.at)}"
    newer = sorted(r for r in statuses if r > due.id)
    if newer:
        raise NothingToActOn(f"releases after the one due now ({due.id}) are recorded already: {', '.join(newer)}")
    if status is None:
        last = max(statuses, default=None)
        since = f"since the cut of {last}" if last else "since the previous release"
        return Choice(
            due.id,
            (due.id,),
            f"{due.id} is due (cut {_shown(train, due.at)}), not recorded yet: cut with every change merged {since}",
        )
    if status not in SETTLED:
        return Choice(due.id, (due.id,), f"{due.id} is recorded ({status}), not settled yet: resumed as recorded")
    if status == ReleaseStatus.DEPLOYED and due.id not in baselines:
        return Choice(
            due.id, (due.id,), f"{due.id} is in production: its sign-off is (re)opened, nothing is recorded again"
        )
    what = "the baseline the instances started on" if due.id in baselines else f"settled ({status})"
    carried = (
        "; its changes are carried into the next cut"
        if status in (ReleaseStatus.QA_REJECTED, ReleaseStatus.DEPLOY_FAILED)
        else ""
    )
    raise NothingToActOn(f"the release due now, {due.id}, is {what} and is never recorded again{carried}; {next_cut}")


def window_is_done(window: NotesWindow, statuses: Mapping[str, str]) -> bool:
    """Every release of the window settled, and at least one reached production."""
    ids = [r.id for r in window.releases]
    return not unsettled(ids, statuses) and any(statuses.get(r) == ReleaseStatus.DEPLOYED for r in ids)


def describe_window(window: NotesWindow, statuses: Mapping[str, str]) -> str:
    return ", ".join(
        f"{r.id} {settled_status(r.id, statuses) or statuses.get(r.id, 'not cut yet')}" for r in window.releases
    )


def newest_settled_window(train: ReleaseCalendar, statuses: Mapping[str, str]) -> Choice:
    """The newest notes window whose releases are all settled, one of them in production."""
    deployed = _deployed(statuses)
    if not deployed:
        raise NothingToActOn(
            f"no release has reached production yet ({len(statuses)} release(s) recorded, none deployed): "
            "no window has notes to publish; give a release id to publish another window"
        )
    passed_over = []
    newest_window = train.notes_window_of(train.release_by_id(max(statuses)))
    lowest = train.notes_window_of(train.release_by_id(deployed[0])).index
    for index in range(newest_window.index, lowest - 1, -1):
        window = train.notes_window(index)
        if window_is_done(window, statuses):
            skipped = f"; newer, not settled: {'; '.join(passed_over)}" if passed_over else ""
            return Choice(
                window.key,
                tuple(r.id for r in window.releases),
                f"{window.key} is the newest window whose releases are settled ({describe_window(window, statuses)})"
                f"{skipped}",
            )
        passed_over.append(f"{window.key} ({describe_window(window, statuses)})")
    raise NothingToActOn(f"no notes window is settled with a release in production: {'; '.join(passed_over)}")
