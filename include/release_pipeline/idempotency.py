"""Perform an external side effect at most once per idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.errors import error_detail


def perform_once(
    repo: ReleaseRepository, key: str, kind: str, action: Callable[[str], dict[str, Any] | None]
) -> tuple[bool, dict[str, Any] | None]:
    """Run ``action(key)`` unless an earlier attempt completed it.

    The key is stored before the action runs. ``action`` gets the key to hand to the
    remote system (e.g. as an ``Idempotency-Key`` header), so a retry after an attempt
    that died midway cannot act twice either. Returns ``(performed_now, result)``.
    """
    claim = repo.claim_side_effect(key, kind)
    if claim.done:
        return False, claim.result
    try:
        result = action(key)
    except Exception as exc:
        # what the failed attempt did get done, for the next one (an exception's ``ledger_result``)
        done = getattr(exc, "ledger_result", None) or {}
        repo.finish_side_effect(key, result={"error": error_detail(exc), **done}, failed=True)
        raise
    repo.finish_side_effect(key, result=result)
    return True, result
