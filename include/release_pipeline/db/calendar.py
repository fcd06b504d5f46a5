"""The install calendar's revisions: the only SQL for ``calendar_event_revisions``.

One row per OEM x event UID: the hash of what the event last said, its SEQUENCE and
when it last changed (``release_pipeline.install_calendar`` decides; this only stores)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store


@dataclass(frozen=True)
class EventRevision:
    uid: str
    content_hash: str
    sequence: int
    changed_at: dt.datetime


class CalendarStore(Store):
    def calendar_revisions(self, oem_id: str) -> dict[str, EventRevision]:
        revisions = t.calendar_event_revisions.c
        rows = self._all(select(t.calendar_event_revisions).where(revisions.oem_id == oem_id))
        return {r.uid: EventRevision(r.uid, r.content_hash, r.sequence, r.changed_at) for r in rows}

    def save_calendar_revisions(self, oem_id: str, changed: list[EventRevision]) -> None:
        """Store the revisions of events that are new or changed. Two feed requests that
        saw the same change race to write the same row: the update is taken only where
        the stored hash differs and the stored sequence is lower, so the loser writes
        nothing and one change never bumps the sequence twice."""
        if not changed:
            return
        table = t.calendar_event_revisions
        with self.engine.begin() as conn:
            for revision in changed:
                insert = self._insert(table).values(
                    oem_id=oem_id,
                    uid=revision.uid,
                    content_hash=revision.content_hash,
                    sequence=revision.sequence,
                    changed_at=revision.changed_at,
                )
                conn.execute(
                    insert.on_conflict_do_update(
                        index_elements=["oem_id", "uid"],
                        set_={
                            "content_hash": insert.excluded.content_hash,
                            "sequence": insert.excluded.sequence,
                            "changed_at": insert.excluded.changed_at,
                        },
                        where=(table.c.content_hash != insert.excluded.content_hash)
                        & (table.c.sequence < insert.excluded.sequence),
                    )
                )
