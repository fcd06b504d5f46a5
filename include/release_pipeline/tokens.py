"""OEM portal tokens: random secrets handed to an OEM user once, stored only as hashes.

A token is only as strong as its randomness, so a fast hash (SHA-256) is enough: it
cannot be brute-forced back from the database the way a password could. The prefix
lets secret scanners and humans recognise a leaked token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import pendulum

from release_pipeline.db.repository import ReleaseRepository

PREFIX = "rtp_"
# last_used_at is informational; writing it on every request would make each page
# view a write on a database the pipeline also writes
TOUCH_EVERY = pendulum.duration(minutes=5)


@dataclass(frozen=True)
class IssuedToken:
    id: int
    oem_id: str
    token: str  # shown once, never stored


@dataclass(frozen=True)
class PortalIdentity:
    """Who a valid token belongs to."""

    token_id: int
    oem_id: str
    label: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(repo: ReleaseRepository, *, oem_id: str, label: str, created_by: str) -> IssuedToken:
    if not label.strip():
        raise ValueError("a token needs a label saying who holds it")
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = repo.add_portal_token(oem_id=oem_id, token_hash=hash_token(token), label=label, created_by=created_by)
    return IssuedToken(id=token_id, oem_id=oem_id, token=token)


def authenticate(repo: ReleaseRepository, token: str | None) -> PortalIdentity | None:
    """The identity behind an active token; None for a missing, unknown or revoked one."""
    if not token or not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = repo.active_token(hash_token(token))
    if row is None:
        return None
    now = pendulum.now("UTC")
    if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
        repo.touch_portal_token(row.id, now)
    return PortalIdentity(token_id=row.id, oem_id=row.oem_id, label=row.label)
