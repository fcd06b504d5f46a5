"""The simulated vendor platform's HTTP APIs (and the ``/_sim`` control API tests use)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pendulum
from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict

from simulator.mailbox import index_page, mailbox_page
from simulator.state import Deployment, SimulatorState


class DeployRequest(BaseModel):
    release_id: str


class Page(BaseModel):
    title: str
    markdown: str
    html: str | None = None
    meta: dict[str, Any] = {}


class ProductionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deploy_fails: bool | None = None
    deploy_seconds: float | None = None
    healthy: bool | None = None
    default_qa: str | None = None


class OemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = None
    healthy: bool | None = None
    install_failures: int | None = None
    break_on_install: bool | None = None
    install_seconds: float | None = None


class Down(BaseModel):
    down: bool


class MailPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refused_recipients: list[str]


def _merged_at(change: dict) -> dt.datetime:
    return pendulum.parse(change["merged_at"])


def build_app(state: SimulatorState) -> FastAPI:
    app = FastAPI(title="AVA platform simulator")

    @app.middleware("http")
    async def record_requests(request: Request, call_next):
        if not request.url.path.startswith("/_sim"):
            state.requests.append({"method": request.method, "path": request.url.path, "query": str(request.url.query)})
        return await call_next(request)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    # -- change feed ------------------------------------------------------------------
    @app.get("/feed/changes")
    async def changes(since: dt.datetime, until: dt.datetime):
        if state.feed_raw is not None:
            return Response(state.feed_raw, media_type="application/json")
        if since.tzinfo is None or until.tzinfo is None:
            raise HTTPException(422, "since and until need a timezone")
        merged = [c for c in state.changes if since <= _merged_at(c) < until]
        return {"since": since.isoformat(), "until": until.isoformat(), "changes": merged}

    # -- QA system ----------------------------------------------------------------------
    @app.get("/qa/releases/{release_id}")
    async def qa_status(release_id: str):
        status = state.qa.get(release_id, state.default_qa)
        return {"release_id": release_id, "status": status, "report": f"/qa/releases/{release_id}/report"}

    # -- vendor production -----------------------------------------------------------------
    @app.post("/production/deployments", status_code=202)
    async def deploy(body: DeployRequest, response: Response, idempotency_key: str | None = Header(None)):
        if idempotency_key:
            for existing in state.deployments.values():
                if existing.idempotency_key == idempotency_key:
                    response.status_code = 200
                    return _deployment(existing)
        deployment = Deployment(
            id=state.next_id("dep"),
            release_id=body.release_id,
            idempotency_key=idempotency_key,
            started=time.monotonic(),
            will_fail=state.deploy_fails,
            seconds=state.deploy_seconds,
        )
        state.deployments[deployment.id] = deployment
        return _deployment(deployment)

    @app.get("/production/deployments/{deployment_id}")
    async def deployment_status(deployment_id: str):
        deployment = state.deployments.get(deployment_id)
        if deployment is None:
            raise HTTPException(404, f"no deployment {deployment_id}")
        if deployment.status == "succeeded":
            state.production_version = deployment.release_id
        return _deployment(deployment)

    def _deployment(d: Deployment) -> dict:
        return {"id": d.id, "release_id": d.release_id, "status": d.status}

    @app.get("/production/health")
    async def production_health():
        body = {"status": "ok" if state.production_healthy else "degraded", "version": state.production_version}
        return JSONResponse(body, status_code=200 if state.production_healthy else 503)

    # -- documentation portals: "ava" and one per OEM ----------------------------------------
    @app.put("/docs/{portal}/pages/{key:path}")
    async def publish_page(portal: str, key: str, page: Page):
        if portal in state.portals_down:
            raise HTTPException(503, f"documentation portal {portal} is under maintenance")
        pages = state.docs.setdefault(portal, {})
        revision = pages.get(key, {}).get("revision", 0) + 1
        pages[key] = {**page.model_dump(), "revision": revision, "updated_at": pendulum.now("UTC").isoformat()}
        return {"url": f"/docs/{portal}/pages/{key}", "revision": revision}

    @app.get("/docs/{portal}/pages/{key:path}")
    async def read_page(portal: str, key: str):
        page = state.docs.get(portal, {}).get(key)
        if page is None:
            raise HTTPException(404, f"no page {key} on portal {portal}")
        return page

    # -- OEM instances' health ----------------------------------------------------------------
    @app.get("/oems/{oem_id}/health")
    async def oem_health(oem_id: str):
        instance = state.oems.get(oem_id)
        if instance is None:
            raise HTTPException(404, f"no OEM instance {oem_id}")
        body = {"status": "ok" if instance.healthy else "unhealthy", "version": instance.version}
        return JSONResponse(body, status_code=200 if instance.healthy else 503)

    # -- notification sink ----------------------------------------------------------------------
    @app.post("/notify/{channel}", status_code=202)
    async def notify(channel: str, request: Request, idempotency_key: str | None = Header(None)):
        if channel in state.channels_down:
            raise HTTPException(503, f"channel {channel} is not accepting messages")
        try:
            message = await request.json()
        except ValueError:
            raise HTTPException(400, "a notification is a JSON object") from None
        entry = {
            "id": state.next_id("msg"),
            "channel": channel,
            "idempotency_key": idempotency_key,
            "received_at": pendulum.now("UTC").isoformat(),
            "message": message,
        }
        state.notifications.append(entry)
        return {"id": entry["id"]}

    # -- the OEMs' mailboxes (what the SMTP server received) -----------------------------------
    @app.get("/mailbox", response_class=HTMLResponse)
    async def mailboxes():
        return index_page(state.mail, sorted(state.oems))

    @app.get("/mailbox/{oem_id}", response_class=HTMLResponse)
    async def mailbox(oem_id: str):
        if oem_id not in state.oems:
            raise HTTPException(404, f"no OEM {oem_id}")
        return mailbox_page(oem_id, state.mail)

    # -- control API for tests and demos -------------------------------------------------------------
    @app.post("/_sim/reset")
    async def reset():
        state.reset()
        return {"reset": True}

    @app.get("/_sim/state")
    async def snapshot():
        return state.snapshot()

    @app.post("/_sim/changes")
    async def add_changes(changes: list[dict[str, Any]]):
        state.changes.extend(changes)
        return {"changes": len(state.changes)}

    @app.put("/_sim/feed/raw")
    async def feed_raw(request: Request):
        body = (await request.body()).decode()
        state.feed_raw = body or None
        return {"raw": state.feed_raw is not None}

    @app.put("/_sim/qa/{release_id}")
    async def set_qa(release_id: str, body: dict[str, str]):
        state.qa[release_id] = body["status"]
        return {"release_id": release_id, "status": body["status"]}

    @app.patch("/_sim/production")
    async def patch_production(patch: ProductionPatch):
        if patch.deploy_fails is not None:
            state.deploy_fails = patch.deploy_fails
        if patch.deploy_seconds is not None:
            state.deploy_seconds = patch.deploy_seconds
        if patch.healthy is not None:
            state.production_healthy = patch.healthy
        if patch.default_qa is not None:
            state.default_qa = patch.default_qa
        return {"ok": True}

    @app.patch("/_sim/docs/{portal}")
    async def patch_portal(portal: str, body: Down):
        (state.portals_down.add if body.down else state.portals_down.discard)(portal)
        return {"portal": portal, "down": body.down}

    @app.patch("/_sim/channels/{channel}")
    async def patch_channel(channel: str, body: Down):
        (state.channels_down.add if body.down else state.channels_down.discard)(channel)
        return {"channel": channel, "down": body.down}

    @app.patch("/_sim/mail")
    async def patch_mail(patch: MailPatch):
        state.refused_recipients = {a.lower() for a in patch.refused_recipients}
        return {"refused_recipients": sorted(state.refused_recipients)}

    @app.patch("/_sim/oems/{oem_id}")
    async def patch_oem(oem_id: str, patch: OemPatch):
        instance = state.oems.get(oem_id)
        if instance is None:
            raise HTTPException(404, f"no OEM instance {oem_id}")
        for name, value in patch.model_dump(exclude_unset=True).items():
            setattr(instance, name, value)
        return {"oem_id": oem_id, "version": instance.version}

    return app
