"""The portal's server-rendered pages: log in with a token, sign off, give feedback.

Form posts answer with a redirect (303) on success, so a reload does not submit twice,
and with the page and a 4xx status when refused. Form fields obey the same bounds as
the JSON API (``release_pipeline.inputs``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from release_pipeline import inputs
from release_pipeline.inputs import InvalidInput
from release_pipeline.models import FeedbackCategory, ReleaseDbError
from release_pipeline.roadmap import CATEGORY_LABELS, FeedbackLimitReached
from release_pipeline.signoff import SignoffError, release_for, releases_for
from release_train_airflow.portal import views
from release_train_airflow.portal.auth import (
    COOKIE,
    INVALID_TOKEN,
    Caller,
    page_caller,
    portal,
    same_origin_form,
    secure_cookie,
    sign_in,
)
from release_train_airflow.portal.context import Portal

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)


def page(request: Request, name: str, caller: Caller | None, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "caller": caller,
            "me": views.me(caller) if caller else None,
            "csrf": caller.csrf if caller else "",
            **context,
        },
        status_code=status_code,
    )


def see_other(request: Request, name: str, **params) -> RedirectResponse:
    return RedirectResponse(str(request.url_for(name, **params)), status_code=303)


def forbidden_form(request: Request, caller: Caller | None) -> HTMLResponse:
    return page(request, "error.html", caller, 403, message="this form expired or came from another site: reload it")


def cookie_path(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + "/"


@router.get("/")
def home(request: Request, _caller: Caller = Depends(page_caller)):
    return see_other(request, "releases_page")


@router.get("/login")
def login_form(request: Request):
    return page(request, "login.html", None)


@router.post("/login")
def login(request: Request, token: str = Form(""), portal: Portal = Depends(portal)):
    if not same_origin_form(request, portal):
        return forbidden_form(request, None)
    caller = sign_in(request, portal, token.strip())
    if caller is None:
        return page(request, "login.html", None, 401, error=INVALID_TOKEN)
    response = see_other(request, "releases_page")
    response.set_cookie(
        COOKIE,
        caller.token,
        httponly=True,
        samesite="strict",
        secure=secure_cookie(request, portal),
        path=cookie_path(request),
        max_age=12 * 3600,
    )
    return response


@router.post("/logout")
def logout(request: Request, portal: Portal = Depends(portal)):
    if not same_origin_form(request, portal):
        return forbidden_form(request, None)
    response = see_other(request, "login_form")
    response.delete_cookie(COOKIE, path=cookie_path(request))
    return response


@router.get("/releases")
def releases_page(request: Request, caller: Caller = Depends(page_caller)):
    releases = [
        views.release_summary(caller, r) for r in releases_for(caller.repo, caller.oem.id, views.policy(caller))
    ]
    return page(request, "releases.html", caller, releases=releases)


@router.get("/releases/{release_id}")
def release_page(request: Request, release_id: str, done: str | None = None, caller: Caller = Depends(page_caller)):
    try:
        inputs.RELEASE.check("release", release_id)
    except InvalidInput as exc:
        return page(request, "error.html", caller, 404, message=str(exc))
    try:
        release = views.release_detail(
            caller, release_for(caller.repo, caller.oem.id, release_id, views.policy(caller))
        )
    except SignoffError as exc:
        return page(request, "error.html", caller, views.signoff_status(exc), message=str(exc))
    return page(request, "release.html", caller, release=release, notes=Markup(release["notes"]["html"]), done=done)


@router.get("/changes/{change_id}")
def change_page(request: Request, change_id: str, caller: Caller = Depends(page_caller)):
    try:
        inputs.CHANGE.check("change", change_id)
        found = views.change_trace(caller, change_id)
    except InvalidInput as exc:
        return page(request, "error.html", caller, 404, message=str(exc))
    except SignoffError as exc:
        return page(request, "error.html", caller, views.signoff_status(exc), message=str(exc))
    return page(request, "change.html", caller, change=found)


@router.post("/releases/{release_id}/decisions")
def decide_form(
    request: Request,
    release_id: str,
    decision: str = Form(""),
    change: list[str] = Form(default_factory=list),
    comment: str = Form(""),
    csrf: str = Form(""),
    caller: Caller = Depends(page_caller),
):
    if not caller.valid_csrf(csrf):
        return forbidden_form(request, caller)
    try:
        inputs.RELEASE.check("release", release_id)
        for change_id in change:
            inputs.CHANGE.check("change", change_id)
        inputs.COMMENT.check("comment", comment)
    except InvalidInput as exc:
        return page(request, "error.html", caller, 422, message=str(exc))
    try:
        views.decide(caller, release_id, decision, change or None, comment)
    except SignoffError as exc:
        status = views.signoff_status(exc)
        try:
            release = views.release_detail(
                caller, release_for(caller.repo, caller.oem.id, release_id, views.policy(caller))
            )
        except SignoffError:
            return page(request, "error.html", caller, status, message=str(exc))
        notes = Markup(release["notes"]["html"])
        return page(request, "release.html", caller, status, release=release, notes=notes, error=str(exc))
    return RedirectResponse(
        str(request.url_for("release_page", release_id=release_id).include_query_params(done=decision)), 303
    )


@router.get("/deliveries")
def deliveries_page(request: Request, caller: Caller = Depends(page_caller)):
    return page(request, "deliveries.html", caller, deliveries=views.deliveries(caller))


@router.get("/next-install")
def next_install_page(request: Request, caller: Caller = Depends(page_caller)):
    return page(request, "next_install.html", caller, forecast=views.next_install(caller))


@router.get("/feedback")
def feedback_page(request: Request, done: int | None = None, caller: Caller = Depends(page_caller)):
    return page(request, "feedback.html", caller, **_feedback_context(caller), done=done)


def _feedback_context(caller: Caller) -> dict:
    return {"categories": CATEGORY_LABELS, "entries": views.feedback(caller)}


@router.post("/feedback")
def feedback_form(
    request: Request,
    category: str = Form(""),
    title: str = Form(""),
    body: str = Form(""),
    component: str = Form(""),
    csrf: str = Form(""),
    caller: Caller = Depends(page_caller),
):
    if not caller.valid_csrf(csrf):
        return forbidden_form(request, caller)
    error, status = None, 422
    if category not in {str(c) for c in FeedbackCategory}:
        error = "choose a category"
    else:
        try:
            inputs.TITLE.check("title", title)
            inputs.BODY.check("body", body)
            inputs.COMPONENT.check("component", component)
        except InvalidInput as exc:
            error = str(exc)
    if error is None:
        try:
            feedback_id = views.record_feedback(
                caller, category=FeedbackCategory(category), title=title, body=body, component=component.strip() or None
            )
        except FeedbackLimitReached as exc:
            error, status = str(exc), 429
        except ReleaseDbError as exc:
            error = str(exc)
        else:
            return RedirectResponse(str(request.url_for("feedback_page").include_query_params(done=feedback_id)), 303)
    form = {"category": category, "title": title, "body": body, "component": component}
    return page(request, "feedback.html", caller, status, **_feedback_context(caller), error=error, form=form)


@router.get("/roadmap")
def roadmap_page(request: Request, caller: Caller = Depends(page_caller)):
    return page(request, "roadmap.html", caller, roadmap=views.roadmap(caller))


@router.get("/rollbacks")
def rollbacks_page(request: Request, done: str | None = None, caller: Caller = Depends(page_caller)):
    return page(request, "rollbacks.html", caller, view=views.rollbacks_view(caller), done=done)


def _rollback_form(request: Request, caller: Caller, csrf: str, act) -> HTMLResponse | RedirectResponse:
    """Check the form's CSRF token, run ``act``; on success see the page again, else show why."""
    if not caller.valid_csrf(csrf):
        return forbidden_form(request, caller)
    try:
        done = act()
    except InvalidInput as exc:
        error, status = str(exc), 422
    except SignoffError as exc:
        error, status = str(exc), views.rollback_status(exc)
    else:
        return RedirectResponse(str(request.url_for("rollbacks_page").include_query_params(done=done)), 303)
    return page(request, "rollbacks.html", caller, status, view=views.rollbacks_view(caller), error=error)


@router.post("/rollbacks/regressions")
def regression_form(
    request: Request,
    release_id: str = Form(""),
    description: str = Form(""),
    csrf: str = Form(""),
    caller: Caller = Depends(page_caller),
):
    def act() -> str:
        inputs.RELEASE.check("release", release_id)
        inputs.COMMENT.check("description", description)
        found = views.report_regression(caller, release_id, description, "portal")
        return f"regression report {found['id']}"

    return _rollback_form(request, caller, csrf, act)


@router.post("/rollbacks/requests")
def rollback_form(
    request: Request,
    release_id: str = Form(""),
    reason: str = Form(""),
    regression_id: str = Form(""),
    csrf: str = Form(""),
    caller: Caller = Depends(page_caller),
):
    def act() -> str:
        inputs.RELEASE.check("release", release_id)
        inputs.COMMENT.check("reason", reason)
        if regression_id.strip() and not regression_id.strip().isdigit():
            raise InvalidInput(f"regression: {regression_id!r} is not a report number")
        linked = int(regression_id) if regression_id.strip() else None
        found = views.request_rollback(caller, release_id, reason, linked, "portal")
        return f"rollback request {found['id']}"

    return _rollback_form(request, caller, csrf, act)
