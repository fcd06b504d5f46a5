"""Releases, their changes and their history: the only SQL for ``releases``,
``release_changes`` and ``release_events``.

A release is cut once with its changes; a rerun that finds the same changes stores
nothing, one that finds others is refused. Every status change is an event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import Row, and_, func, or_, select, update

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, utc_now
from release_pipeline.ledger import net
from release_pipeline.models import Change, ReleaseDbError, ReleaseStatus
from release_pipeline.release_calendar import Release

BASELINE = "baseline"  # a release recorded as what the instances run, never cut


def release_recorded(conn, release_id: str) -> bool:
    """Whether ``release_id`` is recorded, inside the caller's transaction."""
    return conn.execute(select(t.releases.c.id).where(t.releases.c.id == release_id)).first() is not None


def previous_production(conn, release_id: str) -> str | None:
    """The newest release before ``release_id`` that reached production, inside the
    caller's transaction."""
    releases = t.releases.c
    query = select(func.max(releases.id)).where(
        releases.id < release_id, releases.status == str(ReleaseStatus.DEPLOYED)
    )
    return conn.scalar(query)


def changes_where(conn, condition) -> list[Change]:
    """The changes matching ``condition``, oldest release first, inside the caller's transaction."""
    release_changes = t.release_changes.c
    query = select(t.release_changes).where(condition).order_by(release_changes.release_id, release_changes.change_id)
    return [Change.from_row(row) for row in conn.execute(query)]


def shipped_by(conn, release_id: str) -> list[Change]:
    """What the production release ``release_id`` brings over the production release before
    it: its own changes and those carried from releases between that never reached
    production (L2), less the changes and reverts that cancel out (L4); inside the caller's
    transaction."""
    release_changes = t.release_changes.c
    span = release_changes.release_id <= release_id
    if (previous := previous_production(conn, release_id)) is not None:
        span = and_(span, release_changes.release_id > previous)
    return net(changes_where(conn, span))


def change_ids_of(conn, release_id: str) -> list[str]:
    """The ids of a release's changes, inside the caller's transaction."""
    release_changes = t.release_changes.c
    return list(conn.scalars(select(release_changes.change_id).where(release_changes.release_id == release_id)))


class ReleaseStore(Store):
    def record_release(
        self,
        release: Release,
        changes: Sequence[Change],
        *,
        changes_since: dt.datetime | None,
        changes_until: dt.datetime | None,
        actor: str,
    ) -> bool:
        """Store a cut release and its changes in one transaction.

        Returns False when the release was already recorded with the same changes
        (a rerun); refuses a change that belongs to another release or a rerun whose
        changes differ, naming the change.
        """
        now = utc_now()
        status = ReleaseStatus.CUT if changes else ReleaseStatus.EMPTY
        release_changes = t.release_changes.c
        with self.engine.begin() as conn:
            existing = conn.execute(select(t.releases).where(t.releases.c.id == release.id)).first()
            if existing is not None:
                known = set(change_ids_of(conn, release.id))
                if known != {c.id for c in changes}:
                    added = sorted({c.id for c in changes} - known)
                    missing = sorted(known - {c.id for c in changes})
                    raise ReleaseDbError(
                        f"release {release.id} is already recorded with other changes "
                        f"(new: {added or 'none'}, no longer reported: {missing or 'none'})"
                    )
                return False
            ids = [c.id for c in changes]
            if len(ids) != len(set(ids)):
                dupes = sorted({i for i in ids if ids.count(i) > 1})
                raise ReleaseDbError(f"release {release.id}: change {dupes[0]!r} is listed twice")
            if ids:
                taken = conn.execute(
                    select(release_changes.change_id, release_changes.release_id).where(
                        release_changes.change_id.in_(ids)
                    )
                ).first()
                if taken is not None:
                    raise ReleaseDbError(
                        f"release {release.id}: change {taken.change_id!r} "
                        f"already belongs to release {taken.release_id}"
                    )
            conn.execute(
                t.releases.insert().values(
                    id=release.id,
                    train_index=release.index,
                    release_at=release.at,
                    status=status,
                    status_reason=None if changes else "no changes merged since the previous release",
                    changes_since=changes_since,
                    changes_until=changes_until,
                    created_at=now,
                    updated_at=now,
                )
            )
            if changes:
                conn.execute(
                    t.release_changes.insert(),
                    [
                        {
                            "change_id": c.id,
                            "release_id": release.id,
                            "type": str(c.type),
                            "component": c.component,
                            "title": c.title,
                            "description": c.description,
                            "breaking": c.breaking,
                            "merged_at": c.merged_at,
                            "reverts": c.reverts,
                            "created_at": now,
                        }
                        for c in changes
                    ],
                )
            self._event(conn, release.id, "cut", actor, f"{len(changes)} change(s), status {status}", now)
        return True

    def record_baseline_release(self, release: Release, *, actor: str, reason: str) -> bool:
        """A release that predates the pipeline (e.g. what OEM instances already run)."""
        now = utc_now()
        with self.engine.begin() as conn:
            if release_recorded(conn, release.id):
                return False
            conn.execute(
                t.releases.insert().values(
                    id=release.id,
                    train_index=release.index,
                    release_at=release.at,
                    status=ReleaseStatus.DEPLOYED,
                    status_reason=f"{BASELINE}: {reason}",
                    changes_until=release.at,  # what the instances run: the next cut starts here
                    created_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, release.id, BASELINE, actor, reason, now)
        return True

    def baseline_ids(self) -> set[str]:
        """Releases recorded as a baseline (:meth:`record_baseline_release`)."""
        events = t.release_events.c
        with self.engine.connect() as conn:
            return set(conn.scalars(select(events.release_id).where(events.event == BASELINE).distinct()))

    def last_cut(self, before_release_id: str | None = None) -> Row | None:
        """The newest recorded release (before ``before_release_id``), whatever became of it:
        where the next cut's span starts (the ledger's rule L1)."""
        releases = t.releases.c
        query = select(t.releases).order_by(releases.id.desc()).limit(1)
        if before_release_id is not None:
            query = query.where(releases.id < before_release_id)
        return self._first(query)

    def changes_shipped_by(self, release_id: str) -> list[Change]:
        """See :func:`shipped_by`."""
        with self.engine.connect() as conn:
            return shipped_by(conn, release_id)

    def release(self, release_id: str) -> Row | None:
        return self._first(select(t.releases).where(t.releases.c.id == release_id))

    def releases(self, statuses: Iterable[ReleaseStatus] | None = None) -> list[Row]:
        query = select(t.releases).order_by(t.releases.c.id)
        if statuses is not None:
            query = query.where(t.releases.c.status.in_([str(s) for s in statuses]))
        return self._all(query)

    def release_statuses(self) -> dict[str, str]:
        """Every recorded release's status by its id: what the ledger's carry is read from."""
        releases = t.releases.c
        return {row.id: row.status for row in self._all(select(releases.id, releases.status))}

    def release_ids(self, statuses: Iterable[ReleaseStatus] | None = None) -> set[str]:
        """The ids alone: what a delivery plan checks against, every run."""
        query = select(t.releases.c.id)
        if statuses is not None:
            query = query.where(t.releases.c.status.in_([str(s) for s in statuses]))
        with self.engine.connect() as conn:
            return set(conn.scalars(query))

    def set_release_status(
        self, release_id: str, status: ReleaseStatus, *, actor: str, reason: str | None = None
    ) -> None:
        now = utc_now()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.releases)
                .where(t.releases.c.id == release_id)
                .values(status=str(status), status_reason=reason, updated_at=now)
            )
            if result.rowcount != 1:
                raise ReleaseDbError(f"release {release_id!r} is not recorded")
            self._event(conn, release_id, str(status), actor, reason, now)

    def record_release_event(self, release_id: str, event: str, *, actor: str, detail: str | None = None) -> None:
        """An event in a release's history that does not change its status (e.g. a
        deploy held back by a freeze)."""
        with self.engine.begin() as conn:
            if not release_recorded(conn, release_id):
                raise ReleaseDbError(f"release {release_id!r} is not recorded")
            self._event(conn, release_id, event, actor, detail, utc_now())

    def release_events(self, release_id: str) -> list[Row]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.release_events)
                    .where(t.release_events.c.release_id == release_id)
                    .order_by(t.release_events.c.id)
                )
            )

    def release_events_of(self, release_ids: Iterable[str]) -> list[Row]:
        """The history of several releases at once, oldest event first."""
        events = t.release_events.c
        return self._all(select(t.release_events).where(events.release_id.in_(list(release_ids))).order_by(events.id))

    def _event(self, conn, release_id: str, event: str, actor: str, detail: str | None, at) -> None:
        conn.execute(
            t.release_events.insert().values(
                release_id=release_id, event=event, actor=actor, detail=detail, created_at=at
            )
        )

    def changes_between(self, after_release_id: str | None, until_release_id: str) -> list[Change]:
        """Changes of the releases in ``(after, until]``, oldest release first."""
        condition = t.release_changes.c.release_id <= until_release_id
        if after_release_id is not None:
            condition = and_(condition, t.release_changes.c.release_id > after_release_id)
        return self._changes(condition)

    def changes_of(self, release_ids: Iterable[str]) -> list[Change]:
        return self._changes(t.release_changes.c.release_id.in_(list(release_ids)))

    def changes_by_id(self, change_ids: Iterable[str]) -> dict[str, Change]:
        return {c.id: c for c in self._changes(t.release_changes.c.change_id.in_(list(change_ids)))}

    def changes_mentioning(self, fragments: Iterable[str], limit: int = 50) -> list[Change]:
        """Changes whose title, description or component contains any of ``fragments``
        (case-insensitively): where a leak in a rendered text came from."""
        release_changes = t.release_changes.c
        conditions = [
            func.lower(column).contains(fragment.lower(), autoescape=True)
            for fragment in dict.fromkeys(fragments)
            if fragment.strip()
            for column in (release_changes.title, release_changes.description, release_changes.component)
        ]
        if not conditions:
            return []
        return self._changes(or_(*conditions))[:limit]

    def _changes(self, condition) -> list[Change]:
        with self.engine.connect() as conn:
            return changes_where(conn, condition)

    def update_change_text(
        self,
        change_id: str,
        *,
        actor: str,
        title: str | None = None,
        description: str | None = None,
        component: str | None = None,
    ) -> list[str]:
        """Correct a change's text (e.g. a name no OEM may read); returns the fields changed.
        Recorded as a ``change_edited`` release event."""
        release_changes = t.release_changes.c
        with self.engine.begin() as conn:
            row = conn.execute(select(t.release_changes).where(release_changes.change_id == change_id)).first()
            if row is None:
                raise ReleaseDbError(f"no change {change_id!r}")
            wanted = {"title": title, "description": description, "component": component}
            values = {k: v for k, v in wanted.items() if v is not None and v != getattr(row, k)}
            if "title" in values and not values["title"].strip():
                raise ReleaseDbError("a change's title must not be empty")
            if not values:
                return []
            conn.execute(update(t.release_changes).where(release_changes.change_id == change_id).values(**values))
            self._event(conn, row.release_id, "change_edited", actor, f"{change_id}: {', '.join(values)}", utc_now())
            return list(values)
