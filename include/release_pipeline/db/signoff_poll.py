"""The approval gates' batched reads: what one poller asks, once per poll, for every
gate a triggerer holds, and the wake-up a recorded decision sends on PostgreSQL.

A poll is one small statement whatever the number of gates: the changes of the
production releases in the gates' span, and the newest approval event id. Only when
that id moved (or a NOTIFY named an OEM) does a second statement read the latest
decisions, of those OEMs only.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, func, or_, select, true

from release_pipeline.db import schema as t
from release_pipeline.models import ReleaseStatus

# LISTEN/NOTIFY channel of recorded sign-off decisions; the payload is the OEM id.
SIGNOFF_CHANNEL = "release_train_signoff"


def notify_signoff(conn, oem_id: str) -> None:
    """Wake the approval gates of ``oem_id`` when this transaction commits (PostgreSQL
    delivers a NOTIFY at commit, and drops it on rollback); nothing on SQLite, whose
    gates poll."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(SIGNOFF_CHANNEL, oem_id)))


def _production_changes(after_release_id: str, until_release_id: str):
    r, c = t.releases.c, t.release_changes.c
    return (
        select(r.id.label("release_id"), c.change_id)
        .select_from(t.releases.outerjoin(t.release_changes, c.release_id == r.id))
        .where(r.id > after_release_id, r.id <= until_release_id, r.status == str(ReleaseStatus.DEPLOYED))
    )


def poll_query(after_release_id: str, until_release_id: str):
    """One row per change of a production release in ``(after, until]`` (``change_id``
    None for a release without changes), each carrying ``last_event_id``: the newest
    approval event's id. Always at least one row (release None when none is in range)."""
    e = t.approval_events.c
    newest = select(func.max(e.id).label("last_event_id")).subquery()
    production = _production_changes(after_release_id, until_release_id).subquery()
    return (
        select(newest.c.last_event_id, production.c.release_id, production.c.change_id)
        .select_from(newest.outerjoin(production, true()))
        .order_by(production.c.release_id, production.c.change_id)
    )


def latest_decisions_query(
    after_release_id: str,
    until_release_id: str,
    *,
    oem_ids: Iterable[str] | None = None,
    since_event_id: int | None = None,
):
    """Each OEM's latest decision on each change of the production releases in
    ``(after, until]``, walking the (oem_id, change_id, id) index.

    ``oem_ids`` None reads every OEM; otherwise those OEMs, plus every OEM with an
    event newer than ``since_event_id``."""
    e = t.approval_events.alias("latest_event")
    changes = _production_changes(after_release_id, until_release_id).with_only_columns(t.release_changes.c.change_id)
    condition = e.c.change_id.in_(changes)
    if oem_ids is not None:
        who = e.c.oem_id.in_(sorted(oem_ids))
        if since_event_id is not None:
            newer = select(t.approval_events.c.oem_id).where(t.approval_events.c.id > since_event_id)
            who = or_(who, e.c.oem_id.in_(newer))
        condition = and_(condition, who)
    latest = select(func.max(e.c.id)).where(condition).group_by(e.c.oem_id, e.c.change_id)
    a = t.approval_events.c
    return select(a.id, a.oem_id, a.change_id, a.decision, a.actor, a.comment, a.created_at).where(a.id.in_(latest))
