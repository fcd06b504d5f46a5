"""The portal's response filter: the one place every response an OEM receives is checked
whole, after the views have white-labelled what they could.

Each response body (JSON, HTML, any text) and its ``Location`` header pass the guard of
the OEM signed in for the request (``request.state.recipient``, set at sign-in), or,
without one, a guard that allows no OEM's names and not the vendor's. JSON is read as
parsed (every string of it, keys too), HTML and text as they stand; the guard itself
decodes entities, percent-encoding and IDNA and reads look-alike and invisible
characters (:mod:`release_pipeline.notes.normalise`). A response that would carry a
foreign name is not sent: the caller gets ``503`` and a sentence saying it was withheld,
the server log gets what was found. Field-level redaction in the views keeps that rare;
this filter is what makes it never leak (ids, components, error messages, headers
included), whatever a view forgets.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from release_pipeline.held import describe_leaks
from release_pipeline.notes import Leak
from release_train_airflow.portal.context import Portal

log = logging.getLogger(__name__)
WITHHELD = "This response was withheld: it did not pass the portal's white-label check. Please try again later."
WITHHELD_STATUS = 503
_TEXTUAL = ("application/json", "text/", "application/javascript", "application/xml", "image/svg")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _keys_and_values(value: Any) -> Any:
    """A parsed JSON document with its object keys kept as strings to check too."""
    if isinstance(value, dict):
        return [[str(k), _keys_and_values(v)] for k, v in value.items()]
    if isinstance(value, list):
        return [_keys_and_values(v) for v in value]
    return value


class GuardedResponses:
    """ASGI middleware around the portal app (see the module docstring)."""

    def __init__(self, app, portal: Portal):
        self.app = app
        self.portal = portal

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # shared with request.state of the routes
        start: dict | None = None
        body: list[bytes] = []

        async def capture(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    await self._send_checked(state.get("recipient"), start, b"".join(body), send)
            else:
                await send(message)

        await self.app(scope, receive, capture)

    def leaks(self, recipient: str | None, headers: list[tuple[bytes, bytes]], body: bytes) -> list[Leak]:
        guard = self.portal.guard(recipient)
        found = guard.scan(_header(headers, b"location"), "Location")
        content_type = _header(headers, b"content-type").lower()
        if body and (not content_type or content_type.startswith(_TEXTUAL)):
            text = body.decode("utf-8", errors="replace")
            if content_type.startswith("application/json"):
                try:
                    return found + guard.scan_value(_keys_and_values(json.loads(text)), "body")
                except ValueError:
                    pass
            found += guard.scan(text, "body")
        return found

    async def _send_checked(self, recipient: str | None, start: dict | None, body: bytes, send) -> None:
        headers = list(start.get("headers", [])) if start else []
        leaks = self.leaks(recipient, headers, body)
        if not leaks:
            if start is not None:
                await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        log.warning(
            "portal response for %s withheld (status %s): %s",
            recipient or "nobody signed in",
            start.get("status") if start else "?",
            "; ".join(describe_leaks(leaks)),
        )
        if _header(headers, b"content-type").lower().startswith("text/html"):
            content, kind = f"<!doctype html><title>Withheld</title><p>{WITHHELD}</p>".encode(), b"text/html"
        else:
            content, kind = json.dumps({"detail": WITHHELD}).encode(), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": WITHHELD_STATUS,
                "headers": [
                    (b"content-type", kind + b"; charset=utf-8"),
                    (b"content-length", str(len(content)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})
