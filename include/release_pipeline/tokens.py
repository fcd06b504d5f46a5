"""OEM portal tokens: random secrets handed to an OEM user once, stored only as hashes.

A token is only as strong as its randomness, so a fast hash (SHA-256) is enough: it
cannot be brute-forced back from the database the way a password could. The prefix
lets secret scanners and humans recognise a leaked token.

Every token expires (``DEFAULT_VALIDITY`` after issue unless staff choose otherwise), so
a token that leaked unnoticed stops working on its own; ``rotate_token`` hands its
holder a fresh one and revokes the old one in one step.

A token is bound to one approver of its OEM's sign-off policy (``approver``) when the
policy names its approvers: the portal records that person's decisions with it.

A token has a kind. A ``portal`` token opens the pages and the API; a ``feed`` token
(prefix ``rtc_``) opens the OEM's install calendar and nothing else. A calendar app cannot
send a header, so a feed token travels in the URL, where it ends up in the app's sync
service and in proxies' logs: it must not be able to sign anything off. Each kind is
accepted only where it belongs (``authenticate(..., kind=)``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pendulum

from release_pipeline import inputs
from release_pipeline.db.repository import ReleaseRepository

PREFIX = "rtp_"
FEED_PREFIX = "rtc_"  # same length: the sign-in limiter's prefix (ratelimit.PREFIX_CHARS) holds
KINDS = {"portal": PREFIX, "feed": FEED_PREFIX}
# last_used_at is informational; writing it on every request would make each page
# view a write on a database the pipeline also writes
TOUCH_EVERY = pendulum.duration(minutes=5)
DEFAULT_VALIDITY = pendulum.duration(days=90)
MAX_VALIDITY = pendulum.duration(days=366)


@dataclass(frozen=True)
class IssuedToken:
    id: int
    oem_id: str
    token: str  # shown once, never stored
    expires_at: dt.datetime
    kind: str = "portal"


@dataclass(frozen=True)
class PortalIdentity:
    """Who a valid token belongs to."""

    token_id: int
    oem_id: str
    label: str
    approver: str | None = None  # the sign-off policy's approver it speaks for


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    repo: ReleaseRepository,
    *,
    oem_id: str,
    label: str,
    created_by: str,
    valid_for: dt.timedelta = DEFAULT_VALIDITY,
    now: dt.datetime | None = None,
    replaces: int | None = None,
    approver: str | None = None,
    kind: str = "portal",
) -> IssuedToken:
    """A new token of ``kind`` for ``oem_id`` (bound to ``approver`` of its sign-off
    policy, checked by the caller against the policy), valid for ``valid_for`` from
    ``now``; with ``replaces``, that token is revoked in the same transaction. A feed
    token signs nothing off, so it speaks for no approver."""
    if kind not in KINDS:
        raise ValueError(f"a token is of kind {' or '.join(sorted(KINDS))}, not {kind!r}")
    if kind == "feed" and approver:
        raise ValueError("a feed token only reads the install calendar: it speaks for no approver")
    if not label.strip():
        raise ValueError("a token needs a label saying who holds it")
    inputs.NAME.check("label", label)
    inputs.NAME.check("issued by", created_by)
    if not dt.timedelta(0) < valid_for <= MAX_VALIDITY:
        raise ValueError(f"a token is valid for 1 to {MAX_VALIDITY.in_days()} days")
    expires_at = pendulum.instance(now or pendulum.now("UTC")) + valid_for
    token = KINDS[kind] + secrets.token_urlsafe(32)
    token_id = repo.add_portal_token(
        oem_id=oem_id,
        token_hash=hash_token(token),
        label=label,
        created_by=created_by,
        expires_at=expires_at,
        replaces=replaces,
        approver=approver,
        kind=kind,
    )
    return IssuedToken(id=token_id, oem_id=oem_id, token=token, expires_at=expires_at, kind=kind)


def rotate_token(
    repo: ReleaseRepository,
    token_id: int,
    *,
    created_by: str,
    valid_for: dt.timedelta = DEFAULT_VALIDITY,
    now: dt.datetime | None = None,
    approver: Callable[[str, str | None], str | None] | None = None,
) -> IssuedToken:
    """A replacement for token ``token_id`` (same OEM and holder), which is revoked.
    An expired token can be rotated; a revoked one cannot (it was ended on purpose). The
    replacement is of the same kind.
    ``approver(oem_id, current approver)`` gives the replacement's approver (default:
    the old token's)."""
    row = repo.portal_token(token_id)
    if row is None:
        raise LookupError(f"no portal token {token_id}")
    if row.revoked_at is not None:
        raise LookupError(f"portal token {token_id} ({row.oem_id}, {row.label!r}) is revoked: issue a new one")
    bound = approver(row.oem_id, row.approver) if approver and row.kind != "feed" else row.approver
    return issue_token(
        repo,
        oem_id=row.oem_id,
        label=row.label,
        created_by=created_by,
        valid_for=valid_for,
        now=now,
        replaces=token_id,
        approver=bound,
        kind=row.kind,
    )


def authenticate(
    repo: ReleaseRepository, token: str | None, now: dt.datetime | None = None, *, kind: str = "portal"
) -> PortalIdentity | None:
    """The identity behind an active token of ``kind``; None for a missing, unknown,
    expired or revoked one, and for a token of another kind (a feed token on a page, a
    portal token in the calendar's URL)."""
    if not token or not token.startswith(KINDS[kind]) or len(token) > 200:
        return None
    row = repo.active_token(hash_token(token))
    if row is None or row.kind != kind:
        return None
    now = pendulum.instance(now or pendulum.now("UTC"))
    if row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        repo.touch_portal_token(row.id, now)
    return PortalIdentity(token_id=row.id, oem_id=row.oem_id, label=row.label, approver=row.approver)
