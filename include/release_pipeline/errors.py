"""How a failure is written down where people read it later (a publication's detail,
the side-effect ledger): one form, so every record of an error reads alike."""

from __future__ import annotations

# enough for any message worth reading; a remote system's whole error page is not
DETAIL_LIMIT = 2000


def error_detail(exc: BaseException) -> str:
    """``"TypeName: message"``, cut to :data:`DETAIL_LIMIT` characters."""
    return f"{type(exc).__name__}: {exc}"[:DETAIL_LIMIT]
