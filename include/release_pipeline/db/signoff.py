"""OEM sign-off: the only SQL for ``approval_requests`` and ``approval_events``, and
the approval gate's queries (shared with the triggers' async reader).

Approvals are append-only events whose latest one is the state. The queries here
read a release's changes and status beside them (what is signed off, and whether it
reached production) but write only sign-off tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Row, and_, case, func, select

from release_pipeline.db import schema as t
from release_pipeline.db.releases import change_ids_of
from release_pipeline.db.store import Store, utc_now
from release_pipeline.models import ChangeApproval, Decision, ReleaseDbError, ReleaseStatus


def approval_states_query(oem_id: str, after_release_id: str | None, until_release_id: str):
    """The approval gate's single query: every change of a release in ``(after, until]``
    that reached the vendor production (only those are asked for, so only those can
    block), with the OEM's latest decision on it (or none), walking the (oem_id,
    change_id, id) index. Shared by the repository and the triggers' async reader."""
    changes, events = t.release_changes.c, t.approval_events
    latest = (
        select(func.max(events.c.id))
        .where(events.c.oem_id == oem_id, events.c.change_id == changes.change_id)
        .correlate(t.release_changes)
        .scalar_subquery()
    )
    condition = and_(changes.release_id <= until_release_id, t.releases.c.status == str(ReleaseStatus.DEPLOYED))
    if after_release_id is not None:
        condition = and_(condition, changes.release_id > after_release_id)
    return (
        select(
            changes.change_id,
            changes.release_id,
            events.c.decision,
            events.c.actor,
            events.c.comment,
            events.c.created_at,
        )
        .select_from(
            t.release_changes.join(t.releases, t.releases.c.id == changes.release_id).outerjoin(
                events, events.c.id == latest
            )
        )
        .where(condition)
        .order_by(changes.release_id, changes.change_id)
    )


def production_release_ids_query(after_release_id: str, until_release_id: str):
    """Releases in ``(after, until]`` that reached the vendor production."""
    releases = t.releases.c
    return (
        select(releases.id)
        .where(
            releases.id > after_release_id,
            releases.id <= until_release_id,
            releases.status == str(ReleaseStatus.DEPLOYED),
        )
        .order_by(releases.id)
    )


def release_statuses_query(release_ids: Sequence[str]):
    return select(t.releases.c.id, t.releases.c.status).where(t.releases.c.id.in_(list(release_ids)))


def _change_approval(row) -> ChangeApproval:
    return ChangeApproval(
        change_id=row.change_id,
        release_id=row.release_id,
        decision=Decision(row.decision) if row.decision else None,
        actor=row.actor,
        comment=row.comment,
        decided_at=row.created_at,
    )


def _latest_event_id(oem_column, change_column):
    """The id of the OEM's latest sign-off event on a change, correlated to the outer query."""
    events = t.approval_events.c
    return (
        select(func.max(events.id))
        .where(events.oem_id == oem_column, events.change_id == change_column)
        .correlate_except(t.approval_events)
        .scalar_subquery()
    )


class SignoffStore(Store):
    def request_approvals(self, release_id: str, oem_ids: Iterable[str]) -> int:
        """Ask each OEM to sign off every change of the release; returns how many
        requests are new (a rerun adds none)."""
        now = utc_now()
        with self.engine.begin() as conn:
            change_ids = change_ids_of(conn, release_id)
            rows = [
                {"oem_id": oem, "change_id": change, "release_id": release_id, "requested_at": now}
                for oem in oem_ids
                for change in change_ids
            ]
            if not rows:
                return 0
            result = conn.execute(self._insert(t.approval_requests).on_conflict_do_nothing(), rows)
            return max(result.rowcount, 0)

    def requested_release_ids(self, oem_id: str, *, after: str, until: str) -> set[str]:
        """Releases in ``(after, until]`` the OEM was asked to sign off."""
        requests = t.approval_requests.c
        query = select(requests.release_id).where(
            requests.oem_id == oem_id, requests.release_id > after, requests.release_id <= until
        )
        with self.engine.connect() as conn:
            return set(conn.scalars(query.distinct()))

    def approval_requests(self, oem_id: str, release_id: str | None = None) -> list[Row]:
        requests = t.approval_requests.c
        query = (
            select(t.approval_requests)
            .where(requests.oem_id == oem_id)
            .order_by(requests.release_id, requests.change_id)
        )
        if release_id is not None:
            query = query.where(requests.release_id == release_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def record_decision(
        self,
        *,
        oem_id: str,
        change_id: str,
        decision: Decision,
        actor: str,
        channel: str,
        comment: str | None = None,
        recorded_by: str | None = None,
    ) -> int:
        """One change's decision on top of its current state (seeding: devstack, tests).

        The checks and the insert are :meth:`record_decisions`'; this only finds the
        change's release and latest event for it. Returns the new event's id.
        """
        requests, events = t.approval_requests.c, t.approval_events.c
        with self.engine.connect() as conn:
            release_id = conn.scalar(
                select(requests.release_id).where(requests.oem_id == oem_id, requests.change_id == change_id)
            )
            latest = conn.scalar(
                select(func.max(events.id)).where(events.oem_id == oem_id, events.change_id == change_id)
            )
        if release_id is None:
            raise ReleaseDbError(f"OEM {oem_id!r} has no sign-off request for change {change_id!r}")
        [event_id] = self.record_decisions(
            oem_id=oem_id,
            release_id=release_id,
            expected={change_id: latest},
            decision=decision,
            actor=actor,
            channel=channel,
            comment=comment,
            recorded_by=recorded_by,
        )
        return event_id

    def record_decisions(
        self,
        *,
        oem_id: str,
        release_id: str,
        expected: dict[str, int | None],
        decision: Decision,
        actor: str,
        channel: str,
        comment: str | None = None,
        recorded_by: str | None = None,
    ) -> list[int]:
        """Append one sign-off event per change of ``expected`` in one transaction, or none.

        ``expected`` maps each change to the id of the latest event the caller based its
        decision on (None: undecided). When another decision landed in between, nothing
        is written: two people clicking "approve" at once must not record it twice.
        """
        decision = Decision(decision)
        if decision == Decision.REJECTED and not (comment or "").strip():
            raise ReleaseDbError("a rejection needs a comment saying why")
        if not expected:
            raise ReleaseDbError("no changes to decide on")
        requests, events = t.approval_requests.c, t.approval_events.c
        now = utc_now()
        with self.engine.begin() as conn:
            requested = set(
                conn.scalars(
                    select(requests.change_id)
                    .where(
                        requests.oem_id == oem_id,
                        requests.release_id == release_id,
                        requests.change_id.in_(list(expected)),
                    )
                    .with_for_update()
                )
            )
            if missing := sorted(set(expected) - requested):
                raise ReleaseDbError(
                    f"OEM {oem_id!r} has no sign-off request for change {missing[0]!r} in {release_id}"
                )
            latest = dict(
                conn.execute(
                    select(events.change_id, func.max(events.id))
                    .where(events.oem_id == oem_id, events.change_id.in_(list(expected)))
                    .group_by(events.change_id)
                ).all()
            )
            if moved := sorted(c for c, event_id in expected.items() if latest.get(c) != event_id):
                raise ReleaseDbError(f"change {moved[0]!r} was decided on meanwhile; reload and decide again")
            ids = []
            for change_id in sorted(expected):
                result = conn.execute(
                    t.approval_events.insert().values(
                        oem_id=oem_id,
                        change_id=change_id,
                        release_id=release_id,
                        decision=str(decision),
                        actor=actor,
                        recorded_by=recorded_by,
                        channel=channel,
                        comment=comment,
                        created_at=now,
                    )
                )
                ids.append(result.inserted_primary_key[0])
            return ids

    def approval_states(self, oem_id: str, after_release_id: str | None, until_release_id: str) -> list[ChangeApproval]:
        with self.engine.connect() as conn:
            rows = conn.execute(approval_states_query(oem_id, after_release_id, until_release_id))
            return [_change_approval(row) for row in rows]

    def production_release_ids(self, after_release_id: str, until_release_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(production_release_ids_query(after_release_id, until_release_id)))

    def approval_history(self, oem_id: str, change_id: str) -> list[Row]:
        events = t.approval_events.c
        query = (
            select(t.approval_events).where(events.oem_id == oem_id, events.change_id == change_id).order_by(events.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def signoff_states(self, oem_id: str, release_id: str | None = None) -> list[Row]:
        """Every change the OEM was asked to sign off (of one release, or all), with the
        change, its release's time and the OEM's latest event on it (``event_id`` None:
        undecided)."""
        requests, changes, events, releases = (
            t.approval_requests.c,
            t.release_changes.c,
            t.approval_events,
            t.releases.c,
        )
        query = (
            select(
                requests.oem_id,
                requests.release_id,
                requests.requested_at,
                releases.release_at,
                changes.change_id,
                changes.type,
                changes.component,
                changes.title,
                changes.description,
                changes.breaking,
                changes.merged_at,
                events.c.id.label("event_id"),
                events.c.decision,
                events.c.actor,
                events.c.recorded_by,
                events.c.channel,
                events.c.comment,
                events.c.created_at.label("decided_at"),
            )
            .select_from(
                t.approval_requests.join(t.release_changes, changes.change_id == requests.change_id)
                .join(t.releases, releases.id == requests.release_id)
                .outerjoin(events, events.c.id == _latest_event_id(requests.oem_id, requests.change_id))
            )
            .where(requests.oem_id == oem_id)
            .order_by(requests.release_id, changes.change_id)
        )
        if release_id is not None:
            query = query.where(requests.release_id == release_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def signoff_summary(self) -> list[Row]:
        """Per OEM x release: how many changes were requested, approved and rejected
        (by the latest event of each)."""
        requests, events = t.approval_requests.c, t.approval_events
        approved = func.sum(case((events.c.decision == str(Decision.APPROVED), 1), else_=0))
        rejected = func.sum(case((events.c.decision == str(Decision.REJECTED), 1), else_=0))
        query = (
            select(
                requests.oem_id,
                requests.release_id,
                func.count().label("requested"),
                approved.label("approved"),
                rejected.label("rejected"),
            )
            .select_from(
                t.approval_requests.outerjoin(
                    events, events.c.id == _latest_event_id(requests.oem_id, requests.change_id)
                )
            )
            .group_by(requests.oem_id, requests.release_id)
            .order_by(requests.oem_id, requests.release_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))


class AsyncReleaseReader:
    """Read-only asyncio access for triggers, which may run more than once and must
    never write."""

    def __init__(self, engine):
        self.engine = engine

    async def approval_states(
        self, oem_id: str, after_release_id: str | None, until_release_id: str
    ) -> list[ChangeApproval]:
        async with self.engine.connect() as conn:
            result = await conn.execute(approval_states_query(oem_id, after_release_id, until_release_id))
            return [_change_approval(row) for row in result]

    async def production_release_ids(self, after_release_id: str, until_release_id: str) -> list[str]:
        async with self.engine.connect() as conn:
            return list(await conn.scalars(production_release_ids_query(after_release_id, until_release_id)))

    async def release_statuses(self, release_ids: Sequence[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            result = await conn.execute(release_statuses_query(release_ids))
            return {row.id: row.status for row in result}
