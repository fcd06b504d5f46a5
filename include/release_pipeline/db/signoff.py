"""OEM sign-off: the only SQL for ``approval_requests`` and ``approval_events``, and
the approval gate's queries, and the batched poll and NOTIFY that let one poller serve
every waiting gate.

Approvals are append-only events, each naming its approver ('' when the OEM signs
off as one); the latest of each approver counts, and the OEM's sign-off policy
(``release_pipeline.signoff_policy.verdict``, applied in Python) makes the change's
state of them. The queries here
read a release's changes and status beside them (what is signed off, and whether it
reached production) but write only sign-off tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Row, and_, func, or_, select, true

from release_pipeline.db import schema as t
from release_pipeline.db.deliveries import signoff_closed
from release_pipeline.db.releases import shipped_by
from release_pipeline.db.store import Store, hold_signoff_lock, utc_now, where_given
from release_pipeline.models import ChangeApproval, Decision, ReleaseDbError, ReleaseStatus, SignoffClosed


def latest_per_approver(oem_column, change_column):
    """Join condition on ``approval_events``: the latest event of each approver (``''``
    counts as one) of the OEM on the change, walking the (oem_id, change_id, approver,
    id) index."""
    events, later = t.approval_events.c, t.approval_events.alias("later").c
    latest = (
        select(func.max(later.id))
        .where(later.oem_id == events.oem_id, later.change_id == events.change_id, later.approver == events.approver)
        .scalar_subquery()
    )
    return and_(events.oem_id == oem_column, events.change_id == change_column, events.id == latest)


def approval_states_query(oem_id: str, after_release_id: str | None, until_release_id: str):
    """The approval gate's single query: every change of a recorded release in ``(after,
    until]``, whatever became of that release (an instance getting ``until`` runs them
    all: the ledger's rule L3), with the latest decision of each of the OEM's approvers
    on it (one row per approver who decided; one row without a decision when no one did).
    Shared by the repository and the triggers' async reader; the ledger and the policy
    are applied in Python (``release_pipeline.delivery.assess``)."""
    changes, events = t.release_changes.c, t.approval_events
    condition = changes.release_id <= until_release_id
    if after_release_id is not None:
        condition = and_(condition, changes.release_id > after_release_id)
    return (
        select(
            changes.change_id,
            changes.release_id,
            changes.reverts,
            events.c.decision,
            events.c.actor,
            events.c.comment,
            events.c.created_at,
            events.c.approver,
            events.c.id.label("event_id"),
            events.c.recorded_by,
        )
        .select_from(t.release_changes.outerjoin(events, latest_per_approver(oem_id, changes.change_id)))
        .where(condition)
        .order_by(changes.release_id, changes.change_id, events.c.id)
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


def change_approval(change_id: str, release_id: str, event=None, reverts: str | None = None) -> ChangeApproval:
    """A change's sign-off state from one approver's latest event on it (None: no one
    decided yet)."""
    if event is None:
        return ChangeApproval(
            change_id, release_id, decision=None, actor=None, comment=None, decided_at=None, reverts=reverts
        )
    return ChangeApproval(
        change_id=change_id,
        release_id=release_id,
        reverts=reverts,
        decision=Decision(event.decision),
        actor=event.actor,
        comment=event.comment,
        decided_at=event.created_at,
        approver=event.approver or None,
        event_id=event.event_id,
        recorded_by=event.recorded_by,
    )


def _change_approval(row) -> ChangeApproval:
    return change_approval(row.change_id, row.release_id, row if row.decision else None, row.reverts)


class SignoffStore(Store):
    def request_approvals(self, release_id: str, oem_ids: Iterable[str]) -> int:
        """Ask each OEM to sign off every change the production release ``release_id``
        ships: its own and those it carries (L2), less what cancels out (L4); each request
        names the release the change was cut into. Returns how many requests are new (a
        rerun adds none)."""
        now = utc_now()
        with self.engine.begin() as conn:
            shipped = shipped_by(conn, release_id)
            rows = [
                {"oem_id": oem, "change_id": change.id, "release_id": change.release_id, "requested_at": now}
                for oem in oem_ids
                for change in shipped
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
        return self._all(where_given(query, (requests.release_id, release_id)))

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
        approver: str | None = None,
        approver_role: str | None = None,
    ) -> int:
        """One change's decision on top of its current state (seeding: devstack, tests),
        ``approver``'s when given.

        The checks and the insert are :meth:`record_decisions`'; this only finds the
        change's release and latest event for it. Returns the new event's id.
        """
        requests, events = t.approval_requests.c, t.approval_events.c
        mine = [] if approver is None else [events.approver == approver]
        with self.engine.connect() as conn:
            release_id = conn.scalar(
                select(requests.release_id).where(requests.oem_id == oem_id, requests.change_id == change_id)
            )
            latest = conn.scalar(
                select(func.max(events.id)).where(events.oem_id == oem_id, events.change_id == change_id, *mine)
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
            approver=approver,
            approver_role=approver_role,
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
        approver: str | None = None,
        approver_role: str | None = None,
    ) -> list[int]:
        """Append one sign-off event per change of ``expected`` in one transaction, or none.

        ``expected`` maps each change to the id of the latest event the caller based its
        decision on (None: undecided): the approver's own latest, or without an approver
        the change's latest. When another decision landed in between, nothing is
        written: two people clicking "approve" at once must not record it twice.

        Under the OEM's sign-off lock, the one an install takes to close sign-off
        (``start_install``): a release installed, or being installed, on the OEM's
        instance refuses the decision (:class:`SignoffClosed`), checked here, in the
        transaction that writes, so no install can start between the check and the write.
        """
        decision = Decision(decision)
        if decision != Decision.APPROVED and not (comment or "").strip():
            said = "a rejection" if decision == Decision.REJECTED else "an override"
            raise ReleaseDbError(f"{said} needs a comment saying why")
        if not expected:
            raise ReleaseDbError("no changes to decide on")
        requests, events = t.approval_requests.c, t.approval_events.c
        now = utc_now()
        with self.engine.begin() as conn:
            hold_signoff_lock(conn, oem_id)
            if closed := signoff_closed(conn, oem_id, release_id):
                raise SignoffClosed(f"{closed}: its sign-off is closed")
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
            mine = [] if approver is None else [events.approver == approver]
            latest = dict(
                conn.execute(
                    select(events.change_id, func.max(events.id))
                    .where(events.oem_id == oem_id, events.change_id.in_(list(expected)), *mine)
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
                        approver=approver or "",
                        approver_role=approver_role,
                    )
                )
                ids.append(result.inserted_primary_key[0])
            notify_signoff(conn, oem_id)  # wakes the OEM's approval gates at commit
            return ids

    def withdraw_approvals(self, oem_id: str, change_ids: Iterable[str], *, actor: str, comment: str) -> list[int]:
        """Append a ``withdrawn`` event for every approver of the OEM whose latest
        decision on one of ``change_ids`` is an approval: the approval no longer stands
        and the change is pending again for that approver (a rollback done at the OEM's
        request: ``release_pipeline.rollbacks``). Rejections and overrides stay as they
        are. Under the OEM's sign-off lock, like every decision; returns the new ids."""
        change_ids = sorted(set(change_ids))
        if not change_ids:
            return []
        events = t.approval_events.c
        now = utc_now()
        with self.engine.begin() as conn:
            hold_signoff_lock(conn, oem_id)
            latest: dict[tuple[str, str], Row] = {}
            for row in conn.execute(
                select(t.approval_events)
                .where(events.oem_id == oem_id, events.change_id.in_(change_ids))
                .order_by(events.id)
            ):
                latest[(row.change_id, row.approver)] = row
            ids = []
            for (change_id, approver), row in sorted(latest.items()):
                if row.decision != Decision.APPROVED:
                    continue
                result = conn.execute(
                    t.approval_events.insert().values(
                        oem_id=oem_id,
                        change_id=change_id,
                        release_id=row.release_id,
                        decision=str(Decision.WITHDRAWN),
                        actor=actor,
                        recorded_by=actor,
                        channel="rollback",
                        comment=comment,
                        created_at=now,
                        approver=approver,
                        approver_role=row.approver_role,
                    )
                )
                ids.append(result.inserted_primary_key[0])
            notify_signoff(conn, oem_id)
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

    def change_requests(self, change_id: str, oem_ids: Iterable[str]) -> list[Row]:
        """The sign-off requests of one change to any of ``oem_ids`` (one per OEM asked)."""
        return self._of_change(t.approval_requests, change_id, oem_ids, t.approval_requests.c.oem_id)

    def change_decisions(self, change_id: str, oem_ids: Iterable[str]) -> list[Row]:
        """Every sign-off event of ``oem_ids`` on one change, oldest first: the whole
        record (each approver's latest is the one that counts)."""
        return self._of_change(t.approval_events, change_id, oem_ids, t.approval_events.c.id)

    def _of_change(self, table, change_id: str, oem_ids: Iterable[str], order) -> list[Row]:
        condition = (table.c.change_id == change_id, table.c.oem_id.in_(list(oem_ids)))
        return self._all(select(table).where(*condition).order_by(order))

    def signoff_states(self, oem_id: str, release_id: str | None = None) -> list[Row]:
        """Every change the OEM was asked to sign off (of one release, or all), with the
        change, its release's time and the latest event of each of the OEM's approvers on
        it: one row per approver who decided, one row with ``event_id`` None when no one did."""
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
                changes.reverts,
                events.c.id.label("event_id"),
                events.c.decision,
                events.c.actor,
                events.c.recorded_by,
                events.c.channel,
                events.c.comment,
                events.c.created_at.label("decided_at"),
                events.c.approver,
                events.c.approver_role,
            )
            .select_from(
                t.approval_requests.join(t.release_changes, changes.change_id == requests.change_id)
                .join(t.releases, releases.id == requests.release_id)
                .outerjoin(events, latest_per_approver(requests.oem_id, requests.change_id))
            )
            .where(requests.oem_id == oem_id)
            .order_by(requests.release_id, changes.change_id, events.c.id)
        )
        return self._all(where_given(query, (requests.release_id, release_id)))

    def signoff_votes(self, oem_ids: Iterable[str] | None = None) -> list[Row]:
        """Per OEM x requested change: the latest decision of each approver (one row per
        approver who decided, one without a decision when no one did), for the status
        matrix: the OEMs' policies make states of them."""
        requests, events = t.approval_requests.c, t.approval_events
        query = (
            select(
                requests.oem_id,
                requests.release_id,
                requests.change_id,
                events.c.id.label("event_id"),
                events.c.decision,
                events.c.approver,
                events.c.created_at.label("decided_at"),
            )
            .select_from(
                t.approval_requests.outerjoin(events, latest_per_approver(requests.oem_id, requests.change_id))
            )
            .order_by(requests.oem_id, requests.release_id, requests.change_id, events.c.id)
        )
        if oem_ids is not None:
            query = query.where(requests.oem_id.in_(list(oem_ids)))
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def signoff_record(self, oem_id: str, release_id: str) -> list[Row]:
        """Every sign-off event of the OEM on the release's changes, oldest first (the
        record staff export)."""
        events = t.approval_events.c
        query = (
            select(t.approval_events)
            .where(events.oem_id == oem_id, events.release_id == release_id)
            .order_by(events.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))


class AsyncReleaseReader:
    """Read-only asyncio access for triggers, which may run more than once and must
    never write. (The approval gates read through ``gate_poller``'s batched queries below.)"""

    def __init__(self, engine):
        self.engine = engine

    async def release_statuses(self, release_ids: Sequence[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            result = await conn.execute(release_statuses_query(release_ids))
            return {row.id: row.status for row in result}


# -- the approval gates' batched poll (release_train_airflow.gate_poller) ---------------------
# A poll is one small statement whatever the number of gates: the changes of the production
# releases in the gates' span and the newest approval event id. Only when that id moved (or a
# NOTIFY named an OEM) does a second statement read the latest decisions, of those OEMs only.
# LISTEN/NOTIFY channel of recorded sign-off decisions; the payload is the OEM id.
SIGNOFF_CHANNEL = "release_train_signoff"


def notify_signoff(conn, oem_id: str) -> None:
    """Wake the approval gates of ``oem_id`` when this transaction commits (PostgreSQL
    delivers a NOTIFY at commit, and drops it on rollback); nothing on SQLite, whose
    gates poll."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(SIGNOFF_CHANNEL, oem_id)))


def _recorded_changes(after_release_id: str, until_release_id: str):
    """Every recorded release in ``(after, until]`` with its changes (an instance getting
    one of them runs them all: L3) and whether it reached production."""
    r, c = t.releases.c, t.release_changes.c
    return (
        select(
            r.id.label("release_id"),
            (r.status == str(ReleaseStatus.DEPLOYED)).label("deployed"),
            c.change_id,
            c.reverts,
        )
        .select_from(t.releases.outerjoin(t.release_changes, c.release_id == r.id))
        .where(r.id > after_release_id, r.id <= until_release_id)
    )


def poll_query(after_release_id: str, until_release_id: str):
    """One row per change of a recorded release in ``(after, until]`` (``change_id`` None
    for a release without changes), with whether its release reached production, each
    carrying ``last_event_id``: the newest approval event's id. Always at least one row
    (release None when none is in range)."""
    events = t.approval_events.c
    newest = select(func.max(events.id).label("last_event_id")).subquery()
    recorded = _recorded_changes(after_release_id, until_release_id).subquery()
    return (
        select(
            newest.c.last_event_id,
            recorded.c.release_id,
            recorded.c.deployed,
            recorded.c.change_id,
            recorded.c.reverts,
        )
        .select_from(newest.outerjoin(recorded, true()))
        .order_by(recorded.c.release_id, recorded.c.change_id)
    )


def latest_decisions_query(
    after_release_id: str,
    until_release_id: str,
    *,
    oem_ids: Iterable[str] | None = None,
    since_event_id: int | None = None,
):
    """The latest decision of each approver of each OEM on each change of the recorded
    releases in ``(after, until]`` (``approver`` '' when the OEM signs off as one),
    walking the (oem_id, change_id, approver, id) index; the OEM's policy makes a state
    of them (``release_pipeline.signoff_policy.verdict``).

    ``oem_ids`` None reads every OEM; otherwise those OEMs, plus every OEM with an
    event newer than ``since_event_id``."""
    latest_event = t.approval_events.alias("latest_event")
    changes = _recorded_changes(after_release_id, until_release_id).with_only_columns(t.release_changes.c.change_id)
    condition = latest_event.c.change_id.in_(changes)
    if oem_ids is not None:
        who = latest_event.c.oem_id.in_(sorted(oem_ids))
        if since_event_id is not None:
            newer = select(t.approval_events.c.oem_id).where(t.approval_events.c.id > since_event_id)
            who = or_(who, latest_event.c.oem_id.in_(newer))
        condition = and_(condition, who)
    latest = (
        select(func.max(latest_event.c.id))
        .where(condition)
        .group_by(latest_event.c.oem_id, latest_event.c.change_id, latest_event.c.approver)
    )
    events = t.approval_events.c
    return select(
        events.id.label("event_id"),
        events.oem_id,
        events.change_id,
        events.approver,
        events.decision,
        events.actor,
        events.comment,
        events.recorded_by,
        events.created_at,
    ).where(events.id.in_(latest))
