"""Rollout waves: the only SQL for ``wave_halts``, the halt and resume history of releases.

The rules (when a release is halted, for whom) are ``release_pipeline.waves``; this store
only appends events, one writer at a time per release, and reads them back in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Connection, Row, select

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store
from release_pipeline.models import ReleaseDbError


class WaveStore(Store):
    def append_wave_event(
        self,
        release_id: str,
        decide: Callable[[list[Row]], dict | None],
        *,
        at: dt.datetime,
    ) -> tuple[list[Row], dict | None]:
        """Append the event ``decide(history)`` returns (None: nothing), ``history`` being the
        release's events so far, oldest first, read under a lock on the release so two
        instances rolling back at once decide one after the other. Returns the history and
        the appended event's values (with its ``id``)."""
        with self.engine.begin() as conn:
            self._lock_release(conn, release_id)
            history = list(conn.execute(_history(release_id)))
            event = decide(history)
            if event is None:
                return history, None
            values = {"release_id": release_id, "at": at, **event}
            result = conn.execute(t.wave_halts.insert().values(**values))
            return history, {**values, "id": result.inserted_primary_key[0]}

    def wave_events(self, release_id: str | None = None) -> list[Row]:
        """Every halt and resume (of ``release_id``, or of every release), oldest first."""
        query = select(t.wave_halts).order_by(t.wave_halts.c.release_id, t.wave_halts.c.id)
        if release_id is not None:
            query = query.where(t.wave_halts.c.release_id == release_id)
        return self._all(query)

    def _lock_release(self, conn: Connection, release_id: str) -> None:
        """The release's row, locked until commit (SQLite: the database's write lock)."""
        if conn.dialect.name == "postgresql":
            row = conn.execute(select(t.releases.c.id).where(t.releases.c.id == release_id).with_for_update()).first()
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            row = conn.execute(select(t.releases.c.id).where(t.releases.c.id == release_id)).first()
        if row is None:
            raise ReleaseDbError(f"release {release_id} is not recorded")


def _history(release_id: str):
    return select(t.wave_halts).where(t.wave_halts.c.release_id == release_id).order_by(t.wave_halts.c.id)
