"""The OEM portal as a service of its own, for OEMs to reach without reaching Airflow:

    RELEASE_TRAIN_DB_URL=postgresql://... uvicorn release_train_airflow.portal.app:app --port 8081

(``docker-compose.yaml``'s ``oem-portal``; ``include/`` and ``plugins/`` on PYTHONPATH).
The same app that ``make up``'s api-server serves beside the UI, at the same path
``/oem-portal/``, so links in messages (``portal_url`` in ``config/vendor.yaml``) keep
their form behind a proxy. Besides it only ``/healthz``; no Airflow import, UI, REST or
execution API, and no Airflow secret: it needs the release database and ``config/``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import cache

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy import text

from release_pipeline.db.repository import ReleaseRepository
from release_train_airflow.portal import create_app

__all__ = ["DB_URL_ENV", "PORTAL_PREFIX", "MaskTokens", "app", "create_service"]

DB_URL_ENV = "RELEASE_TRAIN_DB_URL"
PORTAL_PREFIX = "/oem-portal"
ACCESS_LOG = "uvicorn.access"


class MaskTokens(logging.Filter):
    """Masks ``token=`` in what uvicorn's access log records (the request line's path
    with its query): the install calendar's feed token travels in its URL
    (``portal/calendar.py``). Airflow's api-server masks it in its own access log."""

    QUERY_TOKEN = re.compile(r"(?i)([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.mask(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = self.mask(record.msg)
        return True

    def mask(self, text: str) -> str:
        return self.QUERY_TOKEN.sub(r"\1***", text)


def mask_tokens_in_access_log() -> None:
    logger = logging.getLogger(ACCESS_LOG)
    if not any(isinstance(f, MaskTokens) for f in logger.filters):
        logger.addFilter(MaskTokens())


def _from_environment() -> str:
    url = os.environ.get(DB_URL_ENV, "").strip()
    if not url:
        raise RuntimeError(f"the OEM portal needs the release database: set {DB_URL_ENV} (a SQLAlchemy URL)")
    return url


def create_service(db_url: Callable[[], str] = _from_environment, **loaders) -> FastAPI:
    """``db_url`` is called once, at startup: a missing URL stops the service there,
    with a message, instead of at the first OEM's request."""

    @cache
    def repository() -> ReleaseRepository:
        return ReleaseRepository.from_url(db_url())

    @asynccontextmanager
    async def lifespan(_service: FastAPI):
        repository()
        yield
        repository().engine.dispose()

    service = FastAPI(title="OEM portal service", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    mask_tokens_in_access_log()

    @service.get("/healthz", include_in_schema=False)
    def healthz():
        """200 when the release database answers; the container's healthcheck."""
        try:
            with repository().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means unhealthy; say which kind, not the URL
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return {"status": "ok"}

    @service.get("/", include_in_schema=False)
    def root():
        return RedirectResponse(f"{PORTAL_PREFIX}/", status_code=307)

    service.mount(PORTAL_PREFIX, create_app(repository, **loaders))
    return service


app = create_service()
