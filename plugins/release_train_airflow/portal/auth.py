"""Who is calling: every portal route but the login page resolves the caller's OEM from
a portal token, and everything it reads or writes is scoped to that OEM.

The JSON API takes the token as ``Authorization: Bearer``; the HTML pages exchange it
once on the login form for an HttpOnly, SameSite=Strict cookie holding the same token,
so revoking a token ends browser sessions at once too. Unknown, expired and revoked
tokens get the same answer, so a caller learns nothing about which tokens exist, and
failed attempts are rate-limited per client address and token prefix (``ratelimit``). The cookie is
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


def resolve(portal: Portal, token: str | None, kind: str = "portal") -> Caller | None:
    repo = portal.repository()
    identity = authenticate(repo, token, kind=kind)
    if identity is None:
        return None
    oem = portal.registry().oems.get(identity.oem_id)
    if oem is None:  # the OEM left the registry: its tokens no longer open anything
        return None
    return Caller(identity, oem, Audience.oem(oem, portal.vendor()), repo, portal, token)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sign_in(request: Request, portal: Portal, token: str, kind: str = "portal") -> Caller | None:
    """``resolve`` for a token the client presented, counting failures against its
    address and the token's prefix; raises ``TooManySignIns`` while that pair is locked out.
    ``kind``: the token kind the route takes (``feed``: the install calendar only)."""
    limiter = portal.sign_in_limiter
    address = client_address(request)
    limiter.check(address, token)
    caller = resolve(portal, token, kind)
    if caller is None:
        limiter.failed(address, token)
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


def secure_cookie(request: Request, portal: Portal) -> bool:
    """Secure unless the portal's configured URL is plain http on this machine and the
    request did not come over https (uvicorn's proxy headers make a TLS proxy's
    ``X-Forwarded-Proto: https`` the request's scheme)."""
    url = urlsplit(portal.vendor().portal_url)
    return request.url.scheme == "https" or not (url.scheme == "http" and url.hostname in LOCAL_HOSTS)


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` as browsers write it in ``Origin`` (no default port);
    None for anything else (``null``, a relative or malformed URL)."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")


def same_origin_form(request: Request, portal: Portal) -> bool:
    """Whether a form post without a session (login, logout) comes from the portal's own
    pages. Those forms have no session to derive a CSRF token from, so a cross-site page
    could otherwise post an attacker's token to ``/login`` and sign the victim's browser in
    as another OEM (login CSRF). Every current browser sends ``Origin`` with a form post
    (and ``Sec-Fetch-Site``); ``Referer`` is the fallback. A post carrying none of them is
    not from a browser, so it cannot carry a victim's browser anywhere: it is let through.
    The portal's own origin is its ``portal_url``'s or the one the request was sent to."""
    if request.headers.get("sec-fetch-site") in {"cross-site", "same-site"}:
        return False
    own = {origin_of(portal.vendor().portal_url), origin_of(str(request.base_url))} - {None}
    if "origin" in request.headers:
        return origin_of(request.headers["origin"]) in own
    if "referer" in request.headers:
        return origin_of(request.headers["referer"]) in own
    return True
