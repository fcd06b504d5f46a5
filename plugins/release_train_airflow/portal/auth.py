"""Who is calling: every portal route but the login page resolves the caller's OEM from
a portal token, and everything it reads or writes is scoped to that OEM.

The JSON API takes the token as ``Authorization: Bearer``; the HTML pages exchange it
once on the login form for an HttpOnly, SameSite=Strict cookie holding the same token,
so revoking a token ends browser sessions at once too. Unknown and revoked tokens get
the same answer, so a caller learns nothing about which tokens exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.notes import Audience
from release_pipeline.registry import Oem
from release_pipeline.tokens import PortalIdentity, authenticate
from release_train_airflow.portal.context import Portal

COOKIE = "oem_portal_token"
INVALID_TOKEN = "invalid or revoked portal token"

bearer = HTTPBearer(auto_error=False, description="an OEM portal token (`release-train token issue`)")


@dataclass(frozen=True)
class Caller:
    """An authenticated OEM user and what a request may touch on its behalf."""

    identity: PortalIdentity
    oem: Oem
    audience: Audience
    repo: ReleaseRepository
    portal: Portal
    token: str

    @property
    def csrf(self) -> str:
        """The value HTML forms echo back: derived from the token, which a cross-site
        page cannot read, so it cannot forge a form post either."""
        return hmac.new(self.token.encode(), b"oem-portal-form", hashlib.sha256).hexdigest()

    def valid_csrf(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(value, self.csrf)


class LoginRequired(Exception):
    """An HTML page was asked for without a valid session; answered with the login page."""


def portal(request: Request) -> Portal:
    return request.app.state.portal


def resolve(portal: Portal, token: str | None) -> Caller | None:
    repo = portal.repository()
    identity = authenticate(repo, token)
    if identity is None:
        return None
    oem = portal.registry().oems.get(identity.oem_id)
    if oem is None:  # the OEM left the registry: its tokens no longer open anything
        return None
    return Caller(identity, oem, Audience.oem(oem, portal.vendor()), repo, portal, token)


def api_caller(
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer), portal: Portal = Depends(portal)
) -> Caller:
    if credentials is None:
        raise HTTPException(
            401, "missing portal token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    caller = resolve(portal, credentials.credentials)
    if caller is None:
        raise HTTPException(401, INVALID_TOKEN, {"WWW-Authenticate": "Bearer"})
    return caller


def page_caller(request: Request, portal: Portal = Depends(portal)) -> Caller:
    caller = resolve(portal, request.cookies.get(COOKIE))
    if caller is None:
        raise LoginRequired()
    return caller
