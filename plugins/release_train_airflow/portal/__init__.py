"""The OEM portal: a FastAPI app that Airflow's api-server serves at ``/oem-portal``
(registered by ``plugins/release_train_plugin.py``), and that tests build in-process.

It reads and writes only through the release database repository and the domain's
sign-off rules; each caller sees and changes its own OEM's data only.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from release_pipeline.db.repository import ReleaseRepository
from release_train_airflow.portal import api, pages
from release_train_airflow.portal.auth import LoginRequired
from release_train_airflow.portal.context import Portal

__all__ = ["create_app"]


def create_app(repository: ReleaseRepository | Callable[[], ReleaseRepository], **loaders) -> FastAPI:
    """``repository`` is the release database or a callable returning it (resolved per
    request, so building the app touches nothing); ``loaders`` may replace
    ``load_registry``/``load_vendor``/``load_calendar`` (tests)."""
    get_repository = repository if callable(repository) else (lambda: repository)
    app = FastAPI(
        title="OEM portal",
        description="Sign off releases, follow deliveries, give feedback and read the roadmap. "
        "Every call needs `Authorization: Bearer <portal token>`.",
        version="1",
    )
    app.state.portal = Portal(get_repository, **loaders)
    app.include_router(api.router)
    app.include_router(pages.router)

    @app.exception_handler(LoginRequired)
    def _login(request: Request, _exc: LoginRequired):
        return RedirectResponse(str(request.url_for("login_form")), status_code=303)

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError):
        """One readable sentence naming the field, plus FastAPI's details."""
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(
            {"detail": f"{where}: {first['msg']}" if where else first["msg"], "errors": jsonable(errors)},
            status_code=422,
        )

    return app


def jsonable(errors: list[dict]) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
