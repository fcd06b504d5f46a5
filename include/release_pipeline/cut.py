"""Cutting a release from the change source (the ledger's rules L1 and L5,
``release_pipeline.ledger``): the ``production_release`` task and the simulated year
run this same code with their own feed.

A feed is ``feed(since, until) -> changes merged in [since, until)``; it is asked once
per cut (and once per rerun of a recorded release, to say what it reports differently).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.ledger import cut_since
from release_pipeline.models import Change
from release_pipeline.release_calendar import Release, ReleaseCalendar

log = logging.getLogger(__name__)
Feed = Callable[[dt.datetime, dt.datetime], Sequence[Change]]
# a release event: the feed reported changes for a recorded span; the next cut takes them
LATE_CHANGES = "late_changes"


class TrainMovedOn(LookupError):
    """A later release is recorded: this one was never cut and never will be."""


def cut_span(repo: ReleaseRepository, train: ReleaseCalendar, release: Release) -> tuple[dt.datetime, dt.datetime]:
    """Where the cut of ``release`` starts and ends (L1): at the end of the newest recorded
    cut, whatever became of that release, so releases never cut go into this one; from
    further back when the feed reported late changes for that cut's span."""
    newest = repo.last_cut()
    if newest is not None and newest.id > release.id:
        raise TrainMovedOn(
            f"release {release.id} was never cut and the train moved on: {newest.id} is recorded, and its cut took "
            f"every change merged before it; nothing is recorded for {release.id}"
        )
    previous_until = (newest.changes_until or newest.release_at) if newest is not None else None
    since = cut_since(previous_until, train.previous(release).at)
    late = newest is not None and any(e.event == LATE_CHANGES for e in repo.release_events(newest.id))
    if late and newest.changes_since is not None:
        since = min(since, newest.changes_since)
    return since, release.at


def changes_to_cut(
    repo: ReleaseRepository, train: ReleaseCalendar, release: Release, feed: Feed
) -> tuple[dt.datetime, dt.datetime, list[Change]]:
    """The span of a new cut and the changes the feed reports in it that no recorded
    release holds yet (one cut earlier stays where it is)."""
    since, until = cut_span(repo, train, release)
    reported = list(feed(since, until))
    taken = repo.changes_by_id(c.id for c in reported)
    if taken:
        log.info("release %s: %s cut into earlier releases already", release.id, ", ".join(sorted(taken)))
    if reworded := sorted(c.id for c in reported if c.id in taken and _text(c) != _text(taken[c.id])):
        log.warning(
            "release %s: the feed reports another text for %s; the recorded text holds (and the decisions on "
            "it): correct it with `release-train change edit`",
            release.id,
            ", ".join(reworded),
        )
    return since, until, [c for c in reported if c.id not in taken]


def _text(change: Change) -> tuple:
    return change.title, change.description, change.component, change.breaking


def hold_the_record(repo: ReleaseRepository, stored, feed: Feed, *, actor: str) -> str | None:
    """A recorded release is never recorded again (L5): ask the feed once for its span and
    say what it now reports that the record lacks; those changes go into the next cut.
    Returns what was said (None: the feed agrees)."""
    if stored.changes_since is None or stored.changes_until is None:
        return None  # a baseline: nothing was cut
    reported = feed(stored.changes_since, stored.changes_until)
    recorded = repo.changes_by_id(c.id for c in reported)
    late = sorted(c.id for c in reported if c.id not in recorded)
    if not late:
        return None
    said = (
        f"the feed now also reports {', '.join(late)} for {stored.id}'s span; "
        "the record holds: they go into the next cut"
    )
    newest = repo.last_cut()
    if not any(e.event == LATE_CHANGES and e.detail == said for e in repo.release_events(newest.id)):
        repo.record_release_event(newest.id, LATE_CHANGES, actor=actor, detail=said)
    return said


def cut(repo: ReleaseRepository, train: ReleaseCalendar, release: Release, feed: Feed, *, actor: str) -> bool:
    """Cut ``release`` if it is not recorded; True when it was recorded now."""
    stored = repo.release(release.id)
    if stored is not None:
        hold_the_record(repo, stored, feed, actor=actor)
        return False
    since, until, changes = changes_to_cut(repo, train, release, feed)
    return repo.record_release(release, changes, changes_since=since, changes_until=until, actor=actor)
