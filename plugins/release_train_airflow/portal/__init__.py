"""The OEM portal: a FastAPI app that Airflow's api-server serves at ``/oem-portal``
(registered by ``plugins/release_train_plugin.py``), and that tests build in-process.

It reads and writes only through the release database repository and the domain's
sign-off rules; each caller sees and changes its own OEM's data only.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from release_pipeline import inputs
from release_pipeline.db.repository import ReleaseRepository
from release_train_airflow.portal import api, calendar, pages
from release_train_airflow.portal.auth import INVALID_TOKEN, Caller, LoginRequired, docs_caller
from release_train_airflow.portal.context import Portal
from release_train_airflow.portal.guarded import GuardedResponses
from release_train_airflow.portal.ratelimit import TooManySignIns

__all__ = ["create_app"]


def create_app(repository: ReleaseRepository | Callable[[], ReleaseRepository], **loaders) -> FastAPI:
    """``repository`` is the release database or a callable returning it (resolved per
    request, so building the app touches nothing); ``loaders`` may replace
    ``load_registry``/``load_vendor``/``load_calendar``/``load_roadmap_config`` and the
    clock ``now`` (tests)."""
    get_repository = repository if callable(repository) else (lambda: repository)
    app = FastAPI(
        title="OEM portal",
        description="Sign off releases, follow deliveries, give feedback and read the roadmap. "
        "Every call needs `Authorization: Bearer <portal token>`.",
        version="1",
        # served below behind a token instead: the schema is the map of the API
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.portal = Portal(get_repository, **loaders)
    # every response checked whole for the OEM it is for (guarded.py): the one filter
    app.add_middleware(GuardedResponses, portal=app.state.portal)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(calendar.router)  # the install calendar: feed tokens only
    _docs(app)

    @app.exception_handler(TooManySignIns)
    def _throttled(request: Request, exc: TooManySignIns):
        headers = {"Retry-After": str(exc.retry_after)}
        if wants_json(request):
            return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)
        response = pages.page(request, "error.html", None, 429, message=str(exc))
        response.headers.update(headers)
        return response

    @app.exception_handler(405)
    def _not_allowed(request: Request, exc: StarletteHTTPException):
        """Starlette answers a method a path does not take from the first route of that
        path alone (``GET /api/v1/feedback``: ``Allow: GET``); ``Allow`` names the methods
        of every route of the path, so ``POST`` too."""
        allowed = {
            method
            for route in app.router.routes
            if route.matches(request.scope)[0] != Match.NONE
            for method in getattr(route, "methods", None) or ()
        }
        headers = {"Allow": ", ".join(sorted(allowed))}
        if wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)
        response = pages.page(request, "error.html", None, 405, message=exc.detail)
        response.headers.update(headers)
        return response

    @app.exception_handler(LoginRequired)
    def _login(request: Request, _exc: LoginRequired):
        return RedirectResponse(str(request.url_for("login_form")), status_code=303)

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, exc: RequestValidationError):
        """One readable sentence naming the field, plus each field at fault (``api.Problem``)."""
        errors = [readable(e) for e in exc.errors()] or [{"loc": [], "msg": "invalid request", "type": "invalid"}]
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse({"detail": f"{where}: {first['msg']}" if where else first["msg"], "errors": errors}, 422)

    return app


def wants_json(request: Request) -> bool:
    path = request.scope.get("path", "")
    return "/api/" in path or path.endswith("/openapi.json")


def servers(request: Request) -> list[dict]:
    """The schema's ``servers``: the path the portal is mounted at (``/oem-portal`` in the
    api-server of ``make up`` and in the portal service alike), relative to the host the
    schema was fetched from. Without it, a generated client (schemathesis,
    openapi-generator) calls ``/api/v1/...`` on the host's root: Airflow's removed API."""
    return [{"url": request.scope.get("root_path", "").rstrip("/") or "/", "description": "this OEM portal"}]


def _docs(app: FastAPI) -> None:
    """``/openapi.json``, ``/docs`` and ``/redoc`` for a caller with a token (a tool's bearer
    token, or a signed-in browser's cookie, which Swagger UI's own fetch sends along)."""

    def schema_url(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/") + "/openapi.json"

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request, caller: Caller | None = Depends(docs_caller)):
        if caller is None:
            raise HTTPException(
                401, f"the API schema needs a portal token: {INVALID_TOKEN}", {"WWW-Authenticate": "Bearer"}
            )
        return {**app.openapi(), "servers": servers(request)}

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request, caller: Caller | None = Depends(docs_caller)):
        if caller is None:
            raise LoginRequired()
        return get_swagger_ui_html(openapi_url=schema_url(request), title=f"{app.title} API")

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request, caller: Caller | None = Depends(docs_caller)):
        if caller is None:
            raise LoginRequired()
        return get_redoc_html(openapi_url=schema_url(request), title=f"{app.title} API")


# pydantic names the union member in the location of its errors (body.Rejection.comment);
# the caller wrote body.comment
UNION_TAGS = {"approved", "rejected", "Approval", "Rejection"}


def readable(error: dict) -> dict:
    """One validation error as ``api.FieldProblem``, in the caller's terms."""
    loc = list(error.get("loc", ()))
    msg, kind = str(error.get("msg")), str(error.get("type"))
    unseen = inputs.unseen_problem(error["input"]) if isinstance(error.get("input"), str) else None
    if kind == "string_pattern_mismatch" and unseen:
        msg = unseen  # say which character, not the pattern
    elif len(loc) > 1 and loc[0] == "body" and loc[1] in UNION_TAGS:
        no_comment = loc[2:] == ["comment"] and kind in {"missing", "string_pattern_mismatch"}
        if loc[1] in {"rejected", "Rejection"} and no_comment:
            msg = "a rejection needs a comment saying why"
    if len(loc) > 1 and loc[0] == "body" and loc[1] in UNION_TAGS:
        del loc[1]
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        ctx = error.get("ctx") or {}
        loc.append(str(ctx.get("discriminator", "decision")).strip("'"))
        msg = f"Input should be {ctx.get('expected_tags', 'one of the documented values')}".replace(", ", " or ")
        if kind == "union_tag_not_found":
            msg = "Field required"
    return {"loc": loc, "msg": msg, "type": kind}
