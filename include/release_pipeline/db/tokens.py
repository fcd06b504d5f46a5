"""OEM portal tokens: the only SQL for ``portal_tokens`` (stored as hashes only)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from release_pipeline.db import schema as t
from release_pipeline.db.store import Store, utc_now, where_given
from release_pipeline.models import ReleaseDbError


class TokenStore(Store):
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
        kind: str = "portal",
    ) -> int:
        """A new token (bound to ``approver`` of the OEM's sign-off policy, if given); with
        ``replaces``, the token of that id is revoked in the same transaction (a rotation:
        never both valid, never neither)."""
        tokens = t.portal_tokens.c
        try:
            with self.engine.begin() as conn:
                now = utc_now()
                if replaces is not None:
                    revoked = conn.execute(
                        update(t.portal_tokens)
                        .where(tokens.id == replaces, tokens.revoked_at.is_(None))
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
                        kind=kind,
                    )
                )
                return result.inserted_primary_key[0]
        except IntegrityError:
            raise ReleaseDbError("a token with this hash already exists") from None

    def revoke_portal_token(self, token_id: int) -> bool:
        tokens = t.portal_tokens.c
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t.portal_tokens)
                .where(tokens.id == token_id, tokens.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
            return result.rowcount == 1

    def touch_portal_token(self, token_id: int, at: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(t.portal_tokens).where(t.portal_tokens.c.id == token_id).values(last_used_at=at))

    def active_token(self, token_hash: str) -> Row | None:
        tokens = t.portal_tokens.c
        query = select(t.portal_tokens).where(tokens.token_hash == token_hash, tokens.revoked_at.is_(None))
        return self._first(query)

    def portal_token(self, token_id: int) -> Row | None:
        return self._first(select(t.portal_tokens).where(t.portal_tokens.c.id == token_id))

    def portal_tokens(self, oem_id: str | None = None) -> list[Row]:
        tokens = t.portal_tokens.c
        query = select(t.portal_tokens).order_by(tokens.id)
        return self._all(where_given(query, (tokens.oem_id, oem_id)))
