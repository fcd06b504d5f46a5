"""Who is calling: every portal route but the login page resolves the caller's OEM from
a portal token, and everything it reads or writes is scoped to that OEM.

The JSON API takes the token as ``Authorization: Bearer``; the HTML pages exchange it
once on the login form for an HttpOnly, SameSite=Strict cookie holding the same token,
so revoking a token ends browser sessions at once too. Unknown, expired and revoked
tokens get the same answer, so a caller learns nothing about which tokens exist, and
failed attempts are rate-limited per client address (``ratelimit``). The cookie is
``Secure`` unless the portal's configured URL is plain-http localhost: behind a TLS proxy
the request itself looks like http, so its scheme cannot decide.

The API docs (``/docs``, ``/redoc``, ``/openapi.json``) need the same token, as a bearer
token or the session cookie of a signed-in browser.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.notes import Audience
from release_pipeline.registry import Oem
from release_pipeline.tokens import PortalIdentity, authenticate
from release_train_airflow.portal.context import Portal

COOKIE = "oem_portal_token"
INVALID_TOKEN = "invalid or revoked portal token"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

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


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sign_in(request: Request, portal: Portal, token: str) -> Caller | None:
    """``resolve`` for a token the client presented, counting failures against its
    address; raises ``TooManySignIns`` while the address is locked out."""
    limiter = portal.sign_in_limiter
    address = client_address(request)
    limiter.check(address)
    caller = resolve(portal, token)
    if caller is None:
        limiter.failed(address)
    else:  # whom the response is for: the response filter (portal/guarded.py) checks it for them
        request.state.recipient = caller.oem.id
    return caller


def api_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    portal: Portal = Depends(portal),
) -> Caller:
    if credentials is None:
        raise HTTPException(
            401, "missing portal token: send 'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    caller = sign_in(request, portal, credentials.credentials)
    if caller is None:
        raise HTTPException(401, INVALID_TOKEN, {"WWW-Authenticate": "Bearer"})
    return caller


def page_caller(request: Request, portal: Portal = Depends(portal)) -> Caller:
    token = request.cookies.get(COOKIE)
    caller = sign_in(request, portal, token) if token else None
    if caller is None:
        raise LoginRequired()
    return caller


def docs_caller(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    portal: Portal = Depends(portal),
) -> Caller | None:
    """A bearer token (tools) or the session cookie (a signed-in browser); None without either."""
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    return sign_in(request, portal, token) if token else None


def secure_cookie(portal: Portal) -> bool:
    """Secure unless the portal's configured URL is plain http on this machine."""
    url = urlsplit(portal.vendor().portal_url)
    return not (url.scheme == "http" and url.hostname in LOCAL_HOSTS)
