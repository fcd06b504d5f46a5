"""The release database repository: every read and write of release data goes
through here, on SQLite and PostgreSQL alike.

Writes that a rerun may repeat are idempotent upserts keyed by release and OEM;
approvals are append-only events whose latest one is the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pendulum
from sqlalchemy import Engine, Row, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from release_pipeline.db import schema as t
from release_pipeline.models import (
    Change,
    ChangeType,
    Decision,
    DeliveryStatus,
    FeedbackCategory,
    ReleaseStatus,
    SideEffectStatus,
)
from release_pipeline.release_calendar import Release


class ReleaseDbError(ValueError):
    """A write the release database refuses; the message names what and why."""


def _now() -> pendulum.DateTime:
    return pendulum.now("UTC")


@dataclass(frozen=True)
class ChangeApproval:
    """The latest decision of one approver of an OEM on one change (``decision`` None: no
    one decided yet); the OEM's sign-off policy makes the change's state of them."""

    change_id: str
    release_id: str
    decision: Decision | None
    actor: str | None
    comment: str | None
    decided_at: dt.datetime | None
    approver: str | None = None  # None: no approver named (the OEM as one)
    event_id: int | None = None
    recorded_by: str | None = None


@dataclass(frozen=True)
class SideEffectClaim:
    key: str
    done: bool  # True: performed by an earlier attempt, do not repeat
    attempt: int
    result: dict | None


class ReleaseRepository:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> ReleaseRepository:
        from release_pipeline.db import connect

        return cls(connect(url))

    def _insert(self, table):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    # -- releases and their changes -------------------------------------------------
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
        now = _now()
        status = ReleaseStatus.CUT if changes else ReleaseStatus.EMPTY
        with self.engine.begin() as conn:
            existing = conn.execute(select(t.releases).where(t.releases.c.id == release.id)).first()
            if existing is not None:
                known = set(
                    conn.scalars(
                        select(t.release_changes.c.change_id).where(t.release_changes.c.release_id == release.id)
                    )
                )
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
                    select(t.release_changes.c.change_id, t.release_changes.c.release_id).where(
                        t.release_changes.c.change_id.in_(ids)
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
                            "created_at": now,
                        }
                        for c in changes
                    ],
                )
            self._event(conn, release.id, "cut", actor, f"{len(changes)} change(s), status {status}", now)
        return True

    def record_baseline_release(self, release: Release, *, actor: str, reason: str) -> bool:
        """A release that predates the pipeline (e.g. what OEM instances already run)."""
        now = _now()
        with self.engine.begin() as conn:
            if conn.execute(select(t.releases.c.id).where(t.releases.c.id == release.id)).first():
                return False
            conn.execute(
                t.releases.insert().values(
                    id=release.id,
                    train_index=release.index,
                    release_at=release.at,
                    status=ReleaseStatus.DEPLOYED,
                    status_reason=f"baseline: {reason}",
                    created_at=now,
                    updated_at=now,
                )
            )
            self._event(conn, release.id, "baseline", actor, reason, now)
        return True

    def release(self, release_id: str) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.releases).where(t.releases.c.id == release_id)).first()

    def releases(self, statuses: Iterable[ReleaseStatus] | None = None) -> list[Row]:
        query = select(t.releases).order_by(t.releases.c.id)
        if statuses is not None:
            query = query.where(t.releases.c.status.in_([str(s) for s in statuses]))
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def release_ids(self, statuses: Iterable[ReleaseStatus] | None = None) -> set[str]:
        """The ids alone: what a delivery plan checks against, every run."""
        query = select(t.releases.c.id)
        if statuses is not None:
            query = query.where(t.releases.c.status.in_([str(s) for s in statuses]))
        with self.engine.connect() as conn:
            return set(conn.scalars(query))

    def latest_release(self, statuses: Iterable[ReleaseStatus], before: str | None = None) -> Row | None:
        query = (
            select(t.releases)
            .where(t.releases.c.status.in_([str(s) for s in statuses]))
            .order_by(t.releases.c.id.desc())
            .limit(1)
        )
        if before is not None:
            query = query.where(t.releases.c.id < before)
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    def set_release_status(
        self, release_id: str, status: ReleaseStatus, *, actor: str, reason: str | None = None
    ) -> None:
        now = _now()
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
            if conn.execute(select(t.releases.c.id).where(t.releases.c.id == release_id)).first() is None:
                raise ReleaseDbError(f"release {release_id!r} is not recorded")
            self._event(conn, release_id, event, actor, detail, _now())

    def release_events(self, release_id: str) -> list[Row]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.release_events)
                    .where(t.release_events.c.release_id == release_id)
                    .order_by(t.release_events.c.id)
                )
            )

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

    def _changes(self, condition) -> list[Change]:
        c = t.release_changes.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.release_changes).where(condition).order_by(c.release_id, c.change_id))
            return [
                Change(
                    id=r.change_id,
                    type=ChangeType(r.type),
                    component=r.component,
                    title=r.title,
                    description=r.description,
                    breaking=r.breaking,
                    merged_at=r.merged_at,
                    release_id=r.release_id,
                )
                for r in rows
            ]

    def changes_by_id(self, change_ids: Iterable[str]) -> dict[str, Change]:
        return {c.id: c for c in self._changes(t.release_changes.c.change_id.in_(list(change_ids)))}

    def changes_mentioning(self, fragments: Iterable[str], limit: int = 50) -> list[Change]:
        """Changes whose title, description or component contains any of ``fragments``
        (case-insensitively): where a leak in a rendered text came from."""
        c = t.release_changes.c
        conditions = [
            func.lower(column).contains(fragment.lower(), autoescape=True)
            for fragment in dict.fromkeys(fragments)
            if fragment.strip()
            for column in (c.title, c.description, c.component)
        ]
        if not conditions:
            return []
        return self._changes(or_(*conditions))[:limit]

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
        c = t.release_changes.c
        with self.engine.begin() as conn:
            row = conn.execute(select(t.release_changes).where(c.change_id == change_id)).first()
            if row is None:
                raise ReleaseDbError(f"no change {change_id!r}")
            wanted = {"title": title, "description": description, "component": component}
            values = {k: v for k, v in wanted.items() if v is not None and v != getattr(row, k)}
            if "title" in values and not values["title"].strip():
                raise ReleaseDbError("a change's title must not be empty")
            if not values:
                return []
            conn.execute(update(t.release_changes).where(c.change_id == change_id).values(**values))
            self._event(conn, row.release_id, "change_edited", actor, f"{change_id}: {', '.join(values)}", _now())
            return list(values)

    # -- sign-off -------------------------------------------------------------------
    def request_approvals(self, release_id: str, oem_ids: Iterable[str]) -> int:
        """Ask each OEM to sign off every change of the release; returns how many
        requests are new (a rerun adds none)."""
        now = _now()
        with self.engine.begin() as conn:
            change_ids = list(
                conn.scalars(select(t.release_changes.c.change_id).where(t.release_changes.c.release_id == release_id))
            )
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
        c = t.approval_requests.c
        query = select(c.release_id).where(c.oem_id == oem_id, c.release_id > after, c.release_id <= until)
        with self.engine.connect() as conn:
            return set(conn.scalars(query.distinct()))

    def approval_requests(self, oem_id: str, release_id: str | None = None) -> list[Row]:
        c = t.approval_requests.c
        query = select(t.approval_requests).where(c.oem_id == oem_id).order_by(c.release_id, c.change_id)
        if release_id is not None:
            query = query.where(c.release_id == release_id)
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
        approver: str | None = None,
        approver_role: str | None = None,
    ) -> int:
        """Append a sign-off event; refuses a change the OEM was not asked to sign off."""
        with self.engine.begin() as conn:
            request = conn.execute(
                select(t.approval_requests).where(
                    t.approval_requests.c.oem_id == oem_id, t.approval_requests.c.change_id == change_id
                )
            ).first()
            if request is None:
                raise ReleaseDbError(f"OEM {oem_id!r} has no sign-off request for change {change_id!r}")
            if decision == Decision.REJECTED and not (comment or "").strip():
                raise ReleaseDbError(f"rejecting change {change_id!r} needs a comment saying why")
            result = conn.execute(
                t.approval_events.insert().values(
                    oem_id=oem_id,
                    change_id=change_id,
                    release_id=request.release_id,
                    decision=str(Decision(decision)),
                    actor=actor,
                    recorded_by=recorded_by,
                    channel=channel,
                    comment=comment,
                    created_at=_now(),
                    approver=approver or "",
                    approver_role=approver_role,
                )
            )
            return result.inserted_primary_key[0]

    def approval_states(self, oem_id: str, after_release_id: str | None, until_release_id: str) -> list[ChangeApproval]:
        with self.engine.connect() as conn:
            rows = conn.execute(approval_states_query(oem_id, after_release_id, until_release_id))
            return [change_approval(r) for r in rows]

    def approval_history(self, oem_id: str, change_id: str) -> list[Row]:
        e = t.approval_events.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(t.approval_events).where(e.oem_id == oem_id, e.change_id == change_id).order_by(e.id)
                )
            )

    # -- deliveries and installed versions -------------------------------------------
    def upsert_delivery(self, oem_id: str, release_id: str, *, status: DeliveryStatus, **fields: Any) -> None:
        allowed = {
            "cycle_key",
            "from_release_id",
            "run_id",
            "started_at",
            "finished_at",
            "detail",
            "log_excerpt",
            "attempt",
        }
        if unknown := set(fields) - allowed:
            raise TypeError(f"unknown delivery fields: {sorted(unknown)}")
        now = _now()
        values = {"status": str(status), "updated_at": now, **fields}
        statement = self._insert(t.deliveries).values(oem_id=oem_id, release_id=release_id, created_at=now, **values)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["oem_id", "release_id"], set_=values))

    def delivery(self, oem_id: str, release_id: str) -> Row | None:
        d = t.deliveries.c
        with self.engine.connect() as conn:
            return conn.execute(select(t.deliveries).where(d.oem_id == oem_id, d.release_id == release_id)).first()

    def deliveries(self, oem_id: str | None = None) -> list[Row]:
        d = t.deliveries.c
        query = select(t.deliveries).order_by(d.oem_id, d.release_id)
        if oem_id is not None:
            query = query.where(d.oem_id == oem_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def withdraw_waiting_delivery(self, oem_id: str, release_id: str, *, run_id: str) -> None:
        """Forget a run's forecast (a ``waiting`` row it wrote) once it aims elsewhere."""
        d = t.deliveries.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.deliveries).where(
                    d.oem_id == oem_id,
                    d.release_id == release_id,
                    d.run_id == run_id,
                    d.status == str(DeliveryStatus.WAITING),
                )
            )

    def production_release_ids(self, after_release_id: str, until_release_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(production_release_ids_query(after_release_id, until_release_id)))

    def installed_version(self, oem_id: str) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.installed_versions).where(t.installed_versions.c.oem_id == oem_id)).first()

    def installed_versions(self) -> dict[str, Row]:
        with self.engine.connect() as conn:
            return {r.oem_id: r for r in conn.execute(select(t.installed_versions))}

    def set_installed_version(self, oem_id: str, release_id: str, *, at: dt.datetime | None = None) -> None:
        now = _now()
        with self.engine.begin() as conn:
            if conn.execute(select(t.releases.c.id).where(t.releases.c.id == release_id)).first() is None:
                raise ReleaseDbError(f"OEM {oem_id!r}: release {release_id!r} is not recorded")
            previous = conn.scalar(
                select(t.installed_versions.c.release_id).where(t.installed_versions.c.oem_id == oem_id)
            )
            if previous == release_id:
                return
            values = {
                "release_id": release_id,
                "previous_release_id": previous,
                "installed_at": at or now,
                "updated_at": now,
            }
            conn.execute(
                self._insert(t.installed_versions)
                .values(oem_id=oem_id, **values)
                .on_conflict_do_update(index_elements=["oem_id"], set_=values)
            )

    # -- instance locks ----------------------------------------------------------------
    def acquire_instance_lock(self, oem_id: str, holder: str, *, ttl: dt.timedelta) -> str | None:
        """Take the OEM instance's lock for ``holder``; returns None when taken, else
        the holder of the live lock that refused it. A lock past its expiry (its holder
        died) is taken over; the same holder taking it again renews it."""
        now = _now()
        lock = t.instance_locks.c
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.instance_locks).where(
                    lock.oem_id == oem_id, (lock.expires_at <= now) | (lock.holder == holder)
                )
            )
            inserted = conn.execute(
                self._insert(t.instance_locks)
                .values(oem_id=oem_id, holder=holder, acquired_at=now, expires_at=now + ttl)
                .on_conflict_do_nothing()
            )
            if inserted.rowcount == 1:
                return None
            return conn.scalar(select(lock.holder).where(lock.oem_id == oem_id)) or "another holder"

    def release_instance_lock(self, oem_id: str, holder: str) -> None:
        lock = t.instance_locks.c
        with self.engine.begin() as conn:
            conn.execute(delete(t.instance_locks).where(lock.oem_id == oem_id, lock.holder == holder))

    # -- publications ----------------------------------------------------------------
    def record_publication(
        self,
        *,
        kind: str,
        scope_key: str,
        audience: str,
        channel: str,
        status: str,
        location: str | None = None,
        detail: str | None = None,
    ) -> None:
        now = _now()
        values = {"status": status, "location": location, "detail": detail, "updated_at": now}
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(t.publications)
                .values(kind=kind, scope_key=scope_key, audience=audience, channel=channel, created_at=now, **values)
                .on_conflict_do_update(index_elements=["kind", "scope_key", "audience", "channel"], set_=values)
            )

    def publications(self, *, kind: str | None = None, scope_key: str | None = None) -> list[Row]:
        p = t.publications.c
        query = select(t.publications).order_by(p.kind, p.scope_key, p.audience, p.channel)
        if kind is not None:
            query = query.where(p.kind == kind)
        if scope_key is not None:
            query = query.where(p.scope_key == scope_key)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # -- idempotency ledger ------------------------------------------------------------
    def claim_side_effect(self, key: str, kind: str) -> SideEffectClaim:
        """Record that the side effect ``key`` is about to be performed.

        Returns ``done=True`` when an earlier attempt completed it; otherwise the
        attempt number (an attempt > 1 follows one whose outcome is unknown, so the
        external call itself must be idempotent by the same key).
        """
        now = _now()
        s = t.side_effects.c
        with self.engine.begin() as conn:
            inserted = conn.execute(
                self._insert(t.side_effects)
                .values(
                    key=key, kind=kind, status=str(SideEffectStatus.STARTED), attempts=1, created_at=now, updated_at=now
                )
                .on_conflict_do_nothing()
            )
            if inserted.rowcount == 1:
                return SideEffectClaim(key=key, done=False, attempt=1, result=None)
            row = conn.execute(select(t.side_effects).where(s.key == key)).one()
            if row.status == SideEffectStatus.DONE:
                return SideEffectClaim(key=key, done=True, attempt=row.attempts, result=row.result)
            conn.execute(
                update(t.side_effects)
                .where(s.key == key)
                .values(attempts=row.attempts + 1, status=str(SideEffectStatus.STARTED), updated_at=now)
            )
            return SideEffectClaim(key=key, done=False, attempt=row.attempts + 1, result=row.result)

    def finish_side_effect(self, key: str, *, result: dict | None = None, failed: bool = False) -> None:
        status = SideEffectStatus.FAILED if failed else SideEffectStatus.DONE
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(t.side_effects)
                .where(t.side_effects.c.key == key)
                .values(status=str(status), result=result, updated_at=_now())
            )
            if updated.rowcount != 1:
                raise ReleaseDbError(f"side effect {key!r} was never claimed")

    def side_effect(self, key: str) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.side_effects).where(t.side_effects.c.key == key)).first()

    def side_effects(self, kind: str | None = None) -> list[Row]:
        query = select(t.side_effects).order_by(t.side_effects.c.key)
        if kind is not None:
            query = query.where(t.side_effects.c.kind == kind)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # -- held sends (the white-label guard) ------------------------------------------------
    def hold_send(
        self,
        *,
        key: str,
        oem_id: str,
        channel: str,
        conn_id: str,
        method: str,
        endpoint: str,
        payload: dict,
        leaks: list[dict],
        sources: dict | None = None,
    ) -> tuple[int, bool]:
        """Record (or refresh) a held send; returns ``(id, first_time)``. A send held
        again keeps its id and counts the attempt; a released one is held anew."""
        now = _now()
        h = t.held_sends.c
        values = {
            "oem_id": oem_id,
            "channel": channel,
            "conn_id": conn_id,
            "method": method,
            "endpoint": endpoint,
            "payload": payload,
            "leaks": leaks,
            "sources": sources or {},
            "status": "held",
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            inserted = conn.execute(
                self._insert(t.held_sends)
                .values(key=key, attempts=1, created_at=now, **values)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = conn.execute(select(h.id, h.attempts, h.status).where(h.key == key)).one()
            if inserted.rowcount == 1:
                return row.id, True
            conn.execute(
                update(t.held_sends)
                .where(h.id == row.id)
                .values(attempts=row.attempts + 1, released_by=None, released_at=None, detail=None, **values)
            )
            return row.id, row.status != "held"

    def held_sends(self, *, status: str | None = None, oem_id: str | None = None) -> list[Row]:
        h = t.held_sends.c
        query = select(t.held_sends).order_by(h.id)
        if status is not None:
            query = query.where(h.status == status)
        if oem_id is not None:
            query = query.where(h.oem_id == oem_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def held_send(self, held_id: int | None = None, *, key: str | None = None) -> Row | None:
        h = t.held_sends.c
        condition = h.id == held_id if key is None else h.key == key
        with self.engine.connect() as conn:
            return conn.execute(select(t.held_sends).where(condition)).first()

    def release_held_send(self, held_id: int, *, by: str, detail: str, payload: dict | None = None) -> bool:
        """Mark a held send as sent after all; False when it was released already."""
        h = t.held_sends.c
        values = {"status": "released", "released_by": by, "released_at": _now(), "detail": detail}
        if payload is not None:
            values["payload"] = payload
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.held_sends)
                .where(h.id == held_id, h.status == "held")
                .values(updated_at=values["released_at"], **values)
            )
            return done.rowcount == 1

    def update_publications_of_held(self, held_id: int, *, status: str, detail: str) -> int:
        """Publications recorded as failed because send #``held_id`` was held."""
        p = t.publications.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.publications)
                .where(p.status == "failed", p.detail.like(f"%held send #{held_id} %"))
                .values(
                    status=case(
                        (p.channel.in_(["oem_portal", "docs_portal"]), "published"),
                        (p.channel == "oem_package", "delegated"),
                        else_=status,
                    ),
                    detail=detail,
                    updated_at=_now(),
                )
            )
            return done.rowcount

    # -- feedback and roadmap --------------------------------------------------------------
    def record_feedback(
        self,
        *,
        oem_id: str,
        category: FeedbackCategory,
        title: str,
        body: str,
        submitted_by: str,
        channel: str,
        component: str | None = None,
        recorded_by: str | None = None,
        at: dt.datetime | None = None,
    ) -> int:
        category = FeedbackCategory(category)
        if not title.strip():
            raise ReleaseDbError(f"feedback from OEM {oem_id!r} needs a title")
        with self.engine.begin() as conn:
            result = conn.execute(
                t.feedback.insert().values(
                    oem_id=oem_id,
                    category=str(category),
                    title=title.strip(),
                    body=body,
                    component=component,
                    submitted_by=submitted_by,
                    recorded_by=recorded_by,
                    channel=channel,
                    created_at=at or _now(),
                )
            )
            return result.inserted_primary_key[0]

    def feedback(self, *, since: dt.datetime | None = None, oem_id: str | None = None) -> list[Row]:
        f = t.feedback.c
        query = select(t.feedback).order_by(f.created_at, f.id)
        if since is not None:
            query = query.where(f.created_at >= since)
        if oem_id is not None:
            query = query.where(f.oem_id == oem_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def record_feedback_request(self, oem_id: str, period_key: str) -> bool:
        """True when this OEM had not yet been asked for feedback in ``period_key``."""
        with self.engine.begin() as conn:
            result = conn.execute(
                self._insert(t.feedback_requests)
                .values(oem_id=oem_id, period_key=period_key, requested_at=_now())
                .on_conflict_do_nothing()
            )
            return result.rowcount == 1

    def last_feedback_request(self, oem_id: str) -> Row | None:
        r = t.feedback_requests.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.feedback_requests).where(r.oem_id == oem_id).order_by(r.requested_at.desc()).limit(1)
            ).first()

    def upsert_planned_item(
        self,
        item_id: str,
        *,
        title: str,
        component: str | None = None,
        target_release_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        values = {"title": title, "component": component, "target_release_id": target_release_id, "detail": detail}
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(t.planned_items)
                .values(id=item_id, created_at=_now(), **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )

    def planned_items(self) -> list[Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.planned_items).order_by(t.planned_items.c.id)))

    def planned_item(self, item_id: str) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.planned_items).where(t.planned_items.c.id == item_id)).first()

    def publish_planned_item(
        self,
        item_id: str,
        *,
        title: str,
        description: str,
        by: str,
        kind: str | None = None,
        component: str | None = None,
        target_release_id: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """A new roadmap item in the vendor's words; refuses an id already taken."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.planned_items.insert().values(
                        id=item_id,
                        title=title,
                        description=description,
                        kind=kind,
                        component=component,
                        target_release_id=target_release_id,
                        updated_by=by,
                        created_at=at or _now(),
                    )
                )
        except IntegrityError:
            raise ReleaseDbError(f"roadmap item id {item_id!r} is already taken") from None

    def update_planned_item(self, item_id: str, *, by: str, **values: Any) -> bool:
        """Change fields of a database item (title, description, component, kind,
        target_release_id, hidden_at); False when there is no such row."""
        allowed = {"title", "description", "component", "kind", "target_release_id", "hidden_at"}
        if unknown := set(values) - allowed:
            raise ReleaseDbError(f"planned item fields {sorted(unknown)} cannot be changed")
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.planned_items).where(t.planned_items.c.id == item_id).values(updated_by=by, **values)
            )
            return result.rowcount == 1

    def free_planned_item_id(self, also_taken: Iterable[str] = (), prefix: str = "item-") -> str:
        """The next unused ``item-N`` id: a number, never derived from anyone's text."""
        with self.engine.connect() as conn:
            taken = set(conn.execute(select(t.planned_items.c.id)).scalars()) | set(also_taken)
        numbers = [int(i[len(prefix) :]) for i in taken if i.startswith(prefix) and i[len(prefix) :].isdigit()]
        return f"{prefix}{max(numbers, default=0) + 1}"

    def link_feedback(self, feedback_id: int, item_id: str | None, *, by: str, at: dt.datetime | None = None) -> bool:
        """Attach an ask to a roadmap item (``None`` detaches it); False: no such feedback."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.feedback)
                .where(t.feedback.c.id == feedback_id)
                .values(item_id=item_id, linked_by=by, linked_at=at or _now())
            )
            return result.rowcount == 1

    def feedback_times_since(self, oem_id: str, since: dt.datetime) -> list[pendulum.DateTime]:
        """When each of the OEM's feedback items after ``since`` was recorded, oldest first."""
        f = t.feedback.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(f.created_at).where(f.oem_id == oem_id, f.created_at > since).order_by(f.created_at)
                ).scalars()
            )

    def save_roadmap_snapshot(
        self,
        *,
        horizon: list[str],
        items: list[dict],
        changes: dict,
        run_id: str | None,
        candidates: list[dict] | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                t.roadmap_snapshots.insert().values(
                    horizon=horizon,
                    items=items,
                    changes=changes,
                    run_id=run_id,
                    candidates=candidates,
                    created_at=_now(),
                )
            )
            return result.inserted_primary_key[0]

    def latest_roadmap_snapshot(self) -> Row | None:
        r = t.roadmap_snapshots.c
        with self.engine.connect() as conn:
            return conn.execute(select(t.roadmap_snapshots).order_by(r.id.desc()).limit(1)).first()

    # -- portal tokens -------------------------------------------------------------------
    def add_portal_token(
        self,
        *,
        oem_id: str,
        token_hash: str,
        label: str,
        created_by: str,
        expires_at: dt.datetime,
        replaces: int | None = None,
        approver: str | None = None,
    ) -> int:
        """A new token; with ``replaces``, the token of that id is revoked in the same
        transaction (a rotation: never both valid, never neither)."""
        try:
            with self.engine.begin() as conn:
                now = _now()
                if replaces is not None:
                    revoked = conn.execute(
                        update(t.portal_tokens)
                        .where(t.portal_tokens.c.id == replaces, t.portal_tokens.c.revoked_at.is_(None))
                        .values(revoked_at=now)
                    )
                    if revoked.rowcount != 1:
                        raise ReleaseDbError(f"portal token {replaces} is already revoked")
                result = conn.execute(
                    t.portal_tokens.insert().values(
                        oem_id=oem_id,
                        token_hash=token_hash,
                        label=label,
                        created_by=created_by,
                        created_at=now,
                        expires_at=expires_at,
                        approver=approver,
                    )
                )
                return result.inserted_primary_key[0]
        except IntegrityError:
            raise ReleaseDbError("a token with this hash already exists") from None

    def revoke_portal_token(self, token_id: int) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.portal_tokens)
                .where(t.portal_tokens.c.id == token_id, t.portal_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            return result.rowcount == 1

    def active_token(self, token_hash: str) -> Row | None:
        p = t.portal_tokens.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.portal_tokens).where(p.token_hash == token_hash, p.revoked_at.is_(None))
            ).first()

    def portal_tokens(self, oem_id: str | None = None) -> list[Row]:
        p = t.portal_tokens.c
        query = select(t.portal_tokens).order_by(p.id)
        if oem_id is not None:
            query = query.where(p.oem_id == oem_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # -- OEM portal, operator CLI and roadmap planning ------------------------------------
    def _latest_event_id(self, oem_column, change_column):
        e = t.approval_events.c
        return (
            select(func.max(e.id))
            .where(e.oem_id == oem_column, e.change_id == change_column)
            .correlate_except(t.approval_events)
            .scalar_subquery()
        )

    def signoff_states(self, oem_id: str, release_id: str | None = None) -> list[Row]:
        """Every change the OEM was asked to sign off (of one release, or all), with the
        change, its release's time and the latest event of each of the OEM's approvers on
        it: one row per approver who decided, one row with ``event_id`` None when no one did."""
        r, c, e, rel = t.approval_requests.c, t.release_changes.c, t.approval_events, t.releases.c
        query = (
            select(
                r.oem_id,
                r.release_id,
                r.requested_at,
                rel.release_at,
                c.change_id,
                c.type,
                c.component,
                c.title,
                c.description,
                c.breaking,
                c.merged_at,
                e.c.id.label("event_id"),
                e.c.decision,
                e.c.actor,
                e.c.recorded_by,
                e.c.channel,
                e.c.comment,
                e.c.created_at.label("decided_at"),
                e.c.approver,
                e.c.approver_role,
            )
            .select_from(
                t.approval_requests.join(t.release_changes, c.change_id == r.change_id)
                .join(t.releases, rel.id == r.release_id)
                .outerjoin(e, latest_per_approver(r.oem_id, r.change_id))
            )
            .where(r.oem_id == oem_id)
            .order_by(r.release_id, c.change_id, e.c.id)
        )
        if release_id is not None:
            query = query.where(r.release_id == release_id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def signoff_votes(self, oem_ids: Iterable[str] | None = None) -> list[Row]:
        """Per OEM x requested change: the latest decision of each approver (one row per
        approver who decided, one without a decision when no one did), for the status
        matrix: the OEMs' policies make states of them."""
        r, e = t.approval_requests.c, t.approval_events
        query = (
            select(
                r.oem_id,
                r.release_id,
                r.change_id,
                e.c.id.label("event_id"),
                e.c.decision,
                e.c.approver,
                e.c.created_at.label("decided_at"),
            )
            .select_from(t.approval_requests.outerjoin(e, latest_per_approver(r.oem_id, r.change_id)))
            .order_by(r.oem_id, r.release_id, r.change_id, e.c.id)
        )
        if oem_ids is not None:
            query = query.where(r.oem_id.in_(list(oem_ids)))
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def signoff_record(self, oem_id: str, release_id: str) -> list[Row]:
        """Every sign-off event of the OEM on the release's changes, oldest first (the
        record staff export)."""
        e = t.approval_events.c
        query = select(t.approval_events).where(e.oem_id == oem_id, e.release_id == release_id).order_by(e.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

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
        """
        decision = Decision(decision)
        if decision != Decision.APPROVED and not (comment or "").strip():
            raise ReleaseDbError(
                f"{'a rejection' if decision == Decision.REJECTED else 'an override'} needs a comment saying why"
            )
        if not expected:
            raise ReleaseDbError("no changes to decide on")
        r, e = t.approval_requests.c, t.approval_events.c
        now = _now()
        with self.engine.begin() as conn:
            requested = set(
                conn.scalars(
                    select(r.change_id)
                    .where(r.oem_id == oem_id, r.release_id == release_id, r.change_id.in_(list(expected)))
                    .with_for_update()
                )
            )
            if missing := sorted(set(expected) - requested):
                raise ReleaseDbError(
                    f"OEM {oem_id!r} has no sign-off request for change {missing[0]!r} in {release_id}"
                )
            mine = [] if approver is None else [e.approver == approver]
            latest = dict(
                conn.execute(
                    select(e.change_id, func.max(e.id))
                    .where(e.oem_id == oem_id, e.change_id.in_(list(expected)), *mine)
                    .group_by(e.change_id)
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
            return ids

    def signoff_summary(self) -> list[Row]:
        """Per OEM x release: how many changes were requested, approved and rejected
        (by the latest event of each)."""
        r, e = t.approval_requests.c, t.approval_events
        approved = func.sum(case((e.c.decision == str(Decision.APPROVED), 1), else_=0))
        rejected = func.sum(case((e.c.decision == str(Decision.REJECTED), 1), else_=0))
        query = (
            select(
                r.oem_id,
                r.release_id,
                func.count().label("requested"),
                approved.label("approved"),
                rejected.label("rejected"),
            )
            .select_from(t.approval_requests.outerjoin(e, e.c.id == self._latest_event_id(r.oem_id, r.change_id)))
            .group_by(r.oem_id, r.release_id)
            .order_by(r.oem_id, r.release_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def feedback_item(self, feedback_id: int) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.feedback).where(t.feedback.c.id == feedback_id)).first()

    def touch_portal_token(self, token_id: int, at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.portal_tokens).where(t.portal_tokens.c.id == token_id).values(last_used_at=at))

    def portal_token(self, token_id: int) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.portal_tokens).where(t.portal_tokens.c.id == token_id)).first()

    def roadmap_snapshot_for_run(self, run_id: str) -> Row | None:
        r = t.roadmap_snapshots.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.roadmap_snapshots).where(r.run_id == run_id).order_by(r.id.desc()).limit(1)
            ).first()

    def roadmap_snapshot(self, snapshot_id: int) -> Row | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.roadmap_snapshots).where(t.roadmap_snapshots.c.id == snapshot_id)).first()


def latest_per_approver(oem_column, change_column):
    """Join condition on ``approval_events``: the latest event of each approver (``''``
    counts as one) of the OEM on the change, walking the (oem_id, change_id, approver,
    id) index."""
    e, later = t.approval_events.c, t.approval_events.alias("later").c
    latest = (
        select(func.max(later.id))
        .where(later.oem_id == e.oem_id, later.change_id == e.change_id, later.approver == e.approver)
        .scalar_subquery()
    )
    return and_(e.oem_id == oem_column, e.change_id == change_column, e.id == latest)


def approval_states_query(oem_id: str, after_release_id: str | None, until_release_id: str):
    """The approval gate's single query: every change of a release in ``(after, until]``
    that reached the vendor production (only those are asked for, so only those can
    block), with the latest decision of each of the OEM's approvers on it (one row per
    approver who decided; one row without a decision when no one did). Shared by the
    repository and the triggers' async reader; the policy is applied in Python
    (``release_pipeline.signoff_policy.verdict``)."""
    c, e = t.release_changes.c, t.approval_events
    condition = and_(c.release_id <= until_release_id, t.releases.c.status == str(ReleaseStatus.DEPLOYED))
    if after_release_id is not None:
        condition = and_(condition, c.release_id > after_release_id)
    return (
        select(
            c.change_id,
            c.release_id,
            e.c.decision,
            e.c.actor,
            e.c.comment,
            e.c.created_at,
            e.c.approver,
            e.c.id.label("event_id"),
            e.c.recorded_by,
        )
        .select_from(
            t.release_changes.join(t.releases, t.releases.c.id == c.release_id).outerjoin(
                e, latest_per_approver(oem_id, c.change_id)
            )
        )
        .where(condition)
        .order_by(c.release_id, c.change_id, e.c.id)
    )


def production_release_ids_query(after_release_id: str, until_release_id: str):
    """Releases in ``(after, until]`` that reached the vendor production."""
    r = t.releases.c
    return (
        select(r.id)
        .where(r.id > after_release_id, r.id <= until_release_id, r.status == str(ReleaseStatus.DEPLOYED))
        .order_by(r.id)
    )


def release_statuses_query(release_ids: Sequence[str]):
    return select(t.releases.c.id, t.releases.c.status).where(t.releases.c.id.in_(list(release_ids)))


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
            return [change_approval(r) for r in result]

    async def production_release_ids(self, after_release_id: str, until_release_id: str) -> list[str]:
        async with self.engine.connect() as conn:
            return list(await conn.scalars(production_release_ids_query(after_release_id, until_release_id)))

    async def release_statuses(self, release_ids: Sequence[str]) -> dict[str, str]:
        async with self.engine.connect() as conn:
            result = await conn.execute(release_statuses_query(release_ids))
            return {r.id: r.status for r in result}


def change_approval(row) -> ChangeApproval:
    return ChangeApproval(
        change_id=row.change_id,
        release_id=row.release_id,
        decision=Decision(row.decision) if row.decision else None,
        actor=row.actor,
        comment=row.comment,
        decided_at=row.created_at,
        approver=row.approver or None,
        event_id=row.event_id,
        recorded_by=row.recorded_by,
    )
