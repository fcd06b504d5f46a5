"""The OEM's install calendar as an iCalendar feed: ``GET /oem-portal/calendar.ics?token=``.

A calendar app cannot send a header, so the token is in the URL: a *feed* token
(``release-train token issue --oem X --label L --feed``), which opens this feed and nothing
else, and which no other route takes. A portal token is refused here: it can sign off,
and a URL leaks (the app's sync service, a proxy's log). Failures count against the same
sign-in limit as every other route (``ratelimit``); the response passes the same
response filter (``guarded``), so the feed is checked whole for the OEM it is for.
The portal service's access log records the URL with the token masked (``app.py``).
See docs/install-calendar.md.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from release_pipeline.install_calendar import feed
from release_train_airflow.portal.auth import INVALID_TOKEN, portal, sign_in
from release_train_airflow.portal.context import Portal
from release_train_airflow.portal.views import branded

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MISSING = "missing feed token: subscribe with the calendar URL your release manager gave you (…/calendar.ics?token=…)"
UNAVAILABLE = "the install calendar could not be built just now: your calendar app will try again"


@router.get("/calendar.ics")
def calendar_feed(request: Request, token: str = "", portal: Portal = Depends(portal)):
    if not token:
        return PlainTextResponse(MISSING, 401)
    caller = sign_in(request, portal, token, kind="feed")
    if caller is None:
        return PlainTextResponse(INVALID_TOKEN, 401)
    try:
        body = feed(caller.repo, portal.calendar(), caller.oem, portal.now(), say=lambda text: branded(caller, text))
    except Exception:  # one OEM's broken feed says so to its app; the log has why
        log.exception("install calendar of %s could not be built", caller.oem.id)
        return PlainTextResponse(UNAVAILABLE, 503, headers={"Retry-After": "300"})
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": 'inline; filename="installs.ics"',
            # the app's own copy may be kept, but asked for again each time: it is one OEM's
            "Cache-Control": "private, no-cache",
        },
    )
