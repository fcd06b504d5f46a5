"""Regressions and rollbacks requested by OEMs: the only SQL for ``regression_reports``,
``rollback_requests`` and ``rollback_events``.

A rollback request's history is append-only (``rollback_events``); its row keeps the
latest status and decision for the listings. Every write that depends on what an OEM
has open runs under the OEM's sign-off lock (:func:`hold_signoff_lock`), so two
requests at once never both open, and two staff decisions never both land.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Row, select, update

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, hold_signoff_lock, utc_now, where_given
from release_pipeline.models import ReleaseDbError, RollbackStatus

OPEN = (RollbackStatus.REQUESTED, RollbackStatus.APPROVED)
# the moves a request may make, and from where
MOVES = {
    RollbackStatus.APPROVED: (RollbackStatus.REQUESTED,),
    RollbackStatus.REFUSED: (RollbackStatus.REQUESTED,),
    RollbackStatus.DONE: (RollbackStatus.APPROVED,),
    RollbackStatus.FAILED: (RollbackStatus.APPROVED,),
}


class RollbackConflict(ReleaseDbError):
    """The request is not in a state that allows the move (decided meanwhile, or another open)."""


def _open_request(conn: Connection, oem_id: str) -> Row | None:
    requests = t.rollback_requests.c
    return conn.execute(
        select(t.rollback_requests)
        .where(requests.oem_id == oem_id, requests.status.in_([str(s) for s in OPEN]))
        .order_by(requests.id)
        .limit(1)
    ).first()


class RollbackStore(Store):
    # -- regression reports ----------------------------------------------------------------
    def add_regression_report(
        self, *, oem_id: str, release_id: str, description: str, reported_by: str, channel: str, at: dt.datetime
    ) -> Row:
        with self.engine.begin() as conn:
            result = conn.execute(
                t.regression_reports.insert().values(
                    oem_id=oem_id,
                    release_id=release_id,
                    description=description,
                    reported_by=reported_by,
                    channel=channel,
                    created_at=at,
                )
            )
            report_id = result.inserted_primary_key[0]
            return conn.execute(select(t.regression_reports).where(t.regression_reports.c.id == report_id)).one()

    def regression_report(self, report_id: int) -> Row | None:
        return self._first(select(t.regression_reports).where(t.regression_reports.c.id == report_id))

    def regression_reports(
        self, oem_id: str | None = None, *, release_id: str | None = None, unalerted: bool = False
    ) -> list[Row]:
        """Newest first; ``unalerted``: only those whose vendor alert has not gone out."""
        reports = t.regression_reports.c
        query = select(t.regression_reports).order_by(reports.id.desc())
        if unalerted:
            query = query.where(reports.vendor_alerted_at.is_(None))
        return self._all(where_given(query, (reports.oem_id, oem_id), (reports.release_id, release_id)))

    def mark_regression_alerted(self, report_id: int, *, at: dt.datetime) -> None:
        reports = t.regression_reports.c
        with self.engine.begin() as conn:
            conn.execute(
                update(t.regression_reports)
                .where(reports.id == report_id, reports.vendor_alerted_at.is_(None))
                .values(vendor_alerted_at=at)
            )

    # -- rollback requests -------------------------------------------------------------------
    def add_rollback_request(
        self,
        *,
        oem_id: str,
        from_release_id: str,
        to_release_id: str,
        reason: str,
        requested_by: str,
        channel: str,
        at: dt.datetime,
        regression_id: int | None = None,
    ) -> Row:
        """A new request, unless the OEM has one open (:class:`RollbackConflict`)."""
        with self.engine.begin() as conn:
            hold_signoff_lock(conn, oem_id)
            if (other := _open_request(conn, oem_id)) is not None:
                raise RollbackConflict(
                    f"OEM {oem_id!r} already has rollback request #{other.id} open ({other.status}); one at a time"
                )
            result = conn.execute(
                t.rollback_requests.insert().values(
                    oem_id=oem_id,
                    from_release_id=from_release_id,
                    to_release_id=to_release_id,
                    regression_id=regression_id,
                    reason=reason,
                    requested_by=requested_by,
                    channel=channel,
                    status=str(RollbackStatus.REQUESTED),
                    created_at=at,
                    updated_at=utc_now(),
                )
            )
            request_id = result.inserted_primary_key[0]
            conn.execute(
                t.rollback_events.insert().values(
                    request_id=request_id,
                    status=str(RollbackStatus.REQUESTED),
                    actor=requested_by,
                    detail=reason,
                    created_at=at,
                )
            )
            return conn.execute(select(t.rollback_requests).where(t.rollback_requests.c.id == request_id)).one()

    def rollback_request(self, request_id: int) -> Row | None:
        return self._first(select(t.rollback_requests).where(t.rollback_requests.c.id == request_id))

    def rollback_requests(self, oem_id: str | None = None, *, status: str | None = None) -> list[Row]:
        """Newest first."""
        requests = t.rollback_requests.c
        query = select(t.rollback_requests).order_by(requests.id.desc())
        return self._all(where_given(query, (requests.oem_id, oem_id), (requests.status, status)))

    def open_rollback_request(self, oem_id: str) -> Row | None:
        with self.engine.connect() as conn:
            return _open_request(conn, oem_id)

    def rollback_history(self, request_id: int) -> list[Row]:
        events = t.rollback_events.c
        return self._all(select(t.rollback_events).where(events.request_id == request_id).order_by(events.id))

    def move_rollback_request(
        self, request_id: int, status: RollbackStatus, *, actor: str, detail: str, at: dt.datetime
    ) -> Row:
        """Move the request to ``status`` (a staff decision, or the rollback's outcome) and
        append the event, in one transaction under the OEM's lock; a request not in a
        state the move starts from is refused (:class:`RollbackConflict`) and nothing
        is written."""
        status = RollbackStatus(status)
        requests = t.rollback_requests.c
        with self.engine.begin() as conn:
            oem_id = conn.scalar(select(requests.oem_id).where(requests.id == request_id))
            if oem_id is None:
                raise ReleaseDbError(f"no rollback request #{request_id}")
            hold_signoff_lock(conn, oem_id)
            row = conn.execute(select(t.rollback_requests).where(requests.id == request_id)).one()
            if row.status not in MOVES[status]:
                by = f" by {row.decided_by}" if row.decided_by and row.status != RollbackStatus.REQUESTED else ""
                raise RollbackConflict(
                    f"rollback request #{request_id} is already {row.status}{by}: cannot be {status}"
                )
            values: dict = {"status": str(status), "updated_at": utc_now()}
            if status in (RollbackStatus.APPROVED, RollbackStatus.REFUSED):
                values |= {"decided_by": actor, "decided_at": at, "decision_reason": detail}
            else:
                values |= {"finished_at": at, "detail": detail}
            conn.execute(update(t.rollback_requests).where(requests.id == request_id).values(**values))
            conn.execute(
                t.rollback_events.insert().values(
                    request_id=request_id, status=str(status), actor=actor, detail=detail, created_at=at
                )
            )
            return conn.execute(select(t.rollback_requests).where(requests.id == request_id)).one()
