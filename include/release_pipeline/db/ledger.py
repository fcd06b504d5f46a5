"""What the pipeline sent out, and what it held back: the only SQL for
``side_effects`` (the idempotency ledger), ``publications`` and ``held_sends``.

A side effect's key is written before the effect is performed, so a retry knows
whether an earlier attempt got that far.
"""

from __future__ import annotations

from sqlalchemy import Row, case, select, update

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, utc_now, where_given
from release_pipeline.models import ReleaseDbError, SideEffectClaim, SideEffectStatus


class LedgerStore(Store):
    # -- idempotency ledger ------------------------------------------------------------
    def claim_side_effect(self, key: str, kind: str) -> SideEffectClaim:
        """Record that the side effect ``key`` is about to be performed.

        Returns ``done=True`` when an earlier attempt completed it; otherwise the
        attempt number (an attempt > 1 follows one whose outcome is unknown, so the
        external call itself must be idempotent by the same key).
        """
        now = utc_now()
        ledger = t.side_effects.c
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
            row = conn.execute(select(t.side_effects).where(ledger.key == key)).one()
            if row.status == SideEffectStatus.DONE:
                return SideEffectClaim(key=key, done=True, attempt=row.attempts, result=row.result)
            conn.execute(
                update(t.side_effects)
                .where(ledger.key == key)
                .values(attempts=row.attempts + 1, status=str(SideEffectStatus.STARTED), updated_at=now)
            )
            return SideEffectClaim(key=key, done=False, attempt=row.attempts + 1, result=row.result)

    def finish_side_effect(self, key: str, *, result: dict | None = None, failed: bool = False) -> None:
        status = SideEffectStatus.FAILED if failed else SideEffectStatus.DONE
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(t.side_effects)
                .where(t.side_effects.c.key == key)
                .values(status=str(status), result=result, updated_at=utc_now())
            )
            if updated.rowcount != 1:
                raise ReleaseDbError(f"side effect {key!r} was never claimed")

    def side_effect(self, key: str) -> Row | None:
        return self._first(select(t.side_effects).where(t.side_effects.c.key == key))

    def sent_in_thread(self, kind: str, audience: str, thread: str) -> list[str]:
        """The ``message_id`` of every completed side effect of ``kind`` whose result
        names this audience and thread, oldest first: an e-mail thread's earlier messages."""
        ledger = t.side_effects.c
        query = (
            select(ledger.result["message_id"].as_string())
            .where(
                ledger.kind == kind,
                ledger.status == str(SideEffectStatus.DONE),
                ledger.result["audience"].as_string() == audience,
                ledger.result["thread"].as_string() == thread,
            )
            .order_by(ledger.updated_at, ledger.key)
        )
        return [row[0] for row in self._all(query)]

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
        now = utc_now()
        values = {"status": status, "location": location, "detail": detail, "updated_at": now}
        with self.engine.begin() as conn:
            conn.execute(
                self._insert(t.publications)
                .values(kind=kind, scope_key=scope_key, audience=audience, channel=channel, created_at=now, **values)
                .on_conflict_do_update(index_elements=["kind", "scope_key", "audience", "channel"], set_=values)
            )

    def publications(self, *, kind: str | None = None, scope_key: str | None = None) -> list[Row]:
        publications = t.publications.c
        query = select(t.publications).order_by(
            publications.kind, publications.scope_key, publications.audience, publications.channel
        )
        return self._all(where_given(query, (publications.kind, kind), (publications.scope_key, scope_key)))

    def update_publications_of_held(self, held_id: int, *, status: str, detail: str) -> int:
        """Publications recorded as failed because send #``held_id`` was held."""
        publications = t.publications.c
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.publications)
                .where(publications.status == "failed", publications.detail.like(f"%held send #{held_id} %"))
                .values(
                    status=case(
                        (publications.channel.in_(["oem_portal", "docs_portal"]), "published"),
                        (publications.channel == "oem_package", "delegated"),
                        else_=status,
                    ),
                    detail=detail,
                    updated_at=utc_now(),
                )
            )
            return done.rowcount

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
        now = utc_now()
        held = t.held_sends.c
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
            row = conn.execute(select(held.id, held.attempts, held.status).where(held.key == key)).one()
            if inserted.rowcount == 1:
                return row.id, True
            conn.execute(
                update(t.held_sends)
                .where(held.id == row.id)
                .values(attempts=row.attempts + 1, released_by=None, released_at=None, detail=None, **values)
            )
            return row.id, row.status != "held"

    def held_sends(self, *, status: str | None = None, oem_id: str | None = None) -> list[Row]:
        held = t.held_sends.c
        query = select(t.held_sends).order_by(held.id)
        return self._all(where_given(query, (held.status, status), (held.oem_id, oem_id)))

    def held_send(self, held_id: int | None = None, *, key: str | None = None) -> Row | None:
        held = t.held_sends.c
        condition = held.id == held_id if key is None else held.key == key
        return self._first(select(t.held_sends).where(condition))

    def release_held_send(self, held_id: int, *, by: str, detail: str, payload: dict | None = None) -> bool:
        """Mark a held send as sent after all; False when it was released already."""
        held = t.held_sends.c
        values = {"status": "released", "released_by": by, "released_at": utc_now(), "detail": detail}
        if payload is not None:
            values["payload"] = payload
        with self.engine.begin() as conn:
            done = conn.execute(
                update(t.held_sends)
                .where(held.id == held_id, held.status == "held")
                .values(updated_at=values["released_at"], **values)
            )
            return done.rowcount == 1
