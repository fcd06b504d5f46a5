"""Triggers: the waiting of the release train, done in the triggerer so a waiting task
holds no worker slot.

Each trigger holds only ids, endpoints and times; it reads and never writes (a
trigger may run more than once) and yields exactly one event. They do not sleep
until a deadline in one go: the clock can jump, and each poll re-checks it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from release_pipeline.db import connect_async
from release_pipeline.db.repository import AsyncReleaseReader

# One async engine per (event loop, database): the triggerer runs every trigger in
# one loop, so a thousand waiting gates share one small connection pool.
_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def release_db_reader(conn_id: str) -> AsyncReleaseReader:
    from airflow.providers.common.compat.connection import get_async_connection

    from release_train_airflow.resources import url_from_connection

    url = url_from_connection(await get_async_connection(conn_id))
    per_loop = _engines.setdefault(asyncio.get_running_loop(), {})
    if url not in per_loop:
        per_loop[url] = connect_async(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
    return AsyncReleaseReader(per_loop[url])


def _past(deadline: str | None) -> bool:
    return deadline is not None and pendulum.now("UTC") >= pendulum.parse(deadline)


class HttpStatusTrigger(BaseTrigger):
    """Polls a JSON endpoint until ``field`` takes one of ``terminal_values``.

    Transient HTTP errors are logged and polled through; the deadline ends the wait.
    """

    def __init__(
        self,
        http_conn_id: str,
        endpoint: str,
        field: str,
        terminal_values: list[str],
        poll_interval: float,
        deadline: str | None = None,
    ):
        super().__init__()
        self.http_conn_id = http_conn_id
        self.endpoint = endpoint
        self.field = field
        self.terminal_values = list(terminal_values)
        self.poll_interval = poll_interval
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "http_conn_id": self.http_conn_id,
                "endpoint": self.endpoint,
                "field": self.field,
                "terminal_values": self.terminal_values,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.http.hooks.http import HttpAsyncHook

        hook = HttpAsyncHook(method="GET", http_conn_id=self.http_conn_id)
        last: Any = None
        while True:
            try:
                async with hook.session() as http:
                    response = await http.run(endpoint=self.endpoint)
                    body = await response.json()
                last = body.get(self.field)
                if last in self.terminal_values:
                    yield TriggerEvent({"status": "done", "value": last, "body": body})
                    return
            except Exception as exc:  # the remote system is down for a moment: keep waiting
                self.log.warning("polling %s/%s failed: %s", self.http_conn_id, self.endpoint, exc)
            if _past(self.deadline):
                yield TriggerEvent({"status": "deadline", "value": last, "deadline": self.deadline})
                return
            await asyncio.sleep(self.poll_interval)


class ReleasesSettledTrigger(BaseTrigger):
    """Waits until every release in ``release_ids`` is recorded in a final status."""

    def __init__(
        self,
        release_ids: list[str],
        final_statuses: list[str],
        poll_interval: float,
        deadline: str | None = None,
        release_db_conn_id: str = "release_db",
    ):
        super().__init__()
        self.release_ids = list(release_ids)
        self.final_statuses = list(final_statuses)
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.release_db_conn_id = release_db_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "release_ids": self.release_ids,
                "final_statuses": self.final_statuses,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "release_db_conn_id": self.release_db_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        reader = await release_db_reader(self.release_db_conn_id)
        while True:
            statuses = await reader.release_statuses(self.release_ids)
            unsettled = sorted(r for r in self.release_ids if statuses.get(r) not in self.final_statuses)
            if not unsettled:
                yield TriggerEvent({"status": "done", "statuses": statuses})
                return
            if _past(self.deadline):
                yield TriggerEvent({"status": "deadline", "unsettled": unsettled, "statuses": statuses})
                return
            await asyncio.sleep(self.poll_interval)


GATE_MAX_OUTAGE_SECONDS = 3600.0
GATE_MAX_BACKOFF_SECONDS = 300.0


class ApprovalGateTrigger(BaseTrigger):
    """Polls an OEM's sign-off of the production releases in ``(after, until]`` (two
    indexed queries per poll, whatever the number of changes) until the gate's verdict
    (``release_pipeline.delivery.gate_verdict``) lets the delivery go on.

    Release-database errors are logged and polled through with a growing pause; only
    an outage longer than ``max_outage_seconds`` ends the wait (``outage``). Nothing
    is kept between polls but the outage's start, so a triggerer restart loses nothing.
    """

    def __init__(
        self,
        oem_id: str,
        after_release_id: str,
        until_release_id: str,
        poll_interval: float,
        settle_at: str,
        deadline: str,
        max_outage_seconds: float = GATE_MAX_OUTAGE_SECONDS,
        release_db_conn_id: str = "release_db",
    ):
        super().__init__()
        self.oem_id = oem_id
        self.after_release_id = after_release_id
        self.until_release_id = until_release_id
        self.poll_interval = poll_interval
        self.settle_at = settle_at
        self.deadline = deadline
        self.max_outage_seconds = max_outage_seconds
        self.release_db_conn_id = release_db_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "oem_id": self.oem_id,
                "after_release_id": self.after_release_id,
                "until_release_id": self.until_release_id,
                "poll_interval": self.poll_interval,
                "settle_at": self.settle_at,
                "deadline": self.deadline,
                "max_outage_seconds": self.max_outage_seconds,
                "release_db_conn_id": self.release_db_conn_id,
            },
        )

    async def _verdict(self):
        from release_pipeline.delivery import assess, gate_verdict
        from release_train_airflow.resources import signoff_policy

        reader = await release_db_reader(self.release_db_conn_id)
        after, until = self.after_release_id, self.until_release_id
        signoff = assess(
            installed=after,
            aim=until,
            production=await reader.production_release_ids(after, until),
            states=await reader.approval_states(self.oem_id, after, until),
            # the OEM's policy as config/ says now (a file stat per poll; parsed on change)
            policy=await asyncio.to_thread(signoff_policy, self.oem_id),
        )
        verdict = gate_verdict(
            signoff,
            now=pendulum.now("UTC"),
            settle_at=pendulum.parse(self.settle_at),
            deadline=pendulum.parse(self.deadline),
        )
        return verdict, signoff

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from release_pipeline.delivery import GateVerdict

        outage_since, failures = None, 0
        while True:
            try:
                verdict, signoff = await self._verdict()
                outage_since, failures = None, 0
                if verdict != GateVerdict.WAIT:
                    yield TriggerEvent({"status": "done", "outcome": str(verdict), "summary": signoff.summary()})
                    return
            except Exception as exc:  # the release database is away: keep the wait, say so
                now = pendulum.now("UTC")
                outage_since = outage_since or now
                failures += 1
                self.log.warning("approval gate of %s: release database error (%s): %s", self.oem_id, failures, exc)
                if (now - outage_since).total_seconds() >= self.max_outage_seconds:
                    yield TriggerEvent(
                        {
                            "status": "done",
                            "outcome": "outage",
                            "summary": f"the release database was unreachable from {outage_since.isoformat()} "
                            f"to {now.isoformat()} while the approval gate waited ({type(exc).__name__}: {exc})",
                        }
                    )
                    return
                await asyncio.sleep(min(self.poll_interval * 2**failures, GATE_MAX_BACKOFF_SECONDS))
                continue
            await asyncio.sleep(self.poll_interval)


class MomentTrigger(BaseTrigger):
    """Fires once the clock reaches ``moment`` (ISO).

    Airflow's ``DateTimeTrigger`` sleeps in steps of up to an hour; this one looks at
    the clock every ``poll_interval`` seconds, so a moved clock (NTP, a test's pinned
    clock) is seen within one interval.
    """

    def __init__(self, moment: str, poll_interval: float):
        super().__init__()
        self.moment = moment
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"moment": self.moment, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        target = pendulum.parse(self.moment)
        while (now := pendulum.now("UTC")) < target:
            await asyncio.sleep(max(0.05, min(self.poll_interval, (target - now).total_seconds())))
        yield TriggerEvent({"status": "done", "moment": self.moment, "at": now.isoformat()})


class HitlAnswerTrigger(BaseTrigger):
    """Reads, once, the answer recorded for a human-in-the-loop task instance.

    Only the triggerer may read HITL details (the task supervisor refuses the request),
    so a retried sign-off task defers here for one read. Yields ``answered`` False when
    there is no answer (or no request) for ``ti_id``.
    """

    def __init__(self, ti_id: str):
        super().__init__()
        self.ti_id = ti_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {"ti_id": self.ti_id})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from uuid import UUID

        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail
        from asgiref.sync import sync_to_async

        try:
            detail = await sync_to_async(get_hitl_detail_content_detail)(ti_id=UUID(self.ti_id))
        except Exception as exc:  # no request recorded for this task instance
            yield TriggerEvent({"answered": False, "reason": f"{type(exc).__name__}: {exc}"})
            return
        if not detail.response_received or not detail.chosen_options:
            yield TriggerEvent({"answered": False, "reason": "the request is still open"})
            return
        user = detail.responded_by_user
        yield TriggerEvent(
            {
                "answered": True,
                "chosen_options": list(detail.chosen_options),
                "params_input": detail.params_input or {},
                "responded_at": detail.responded_at.isoformat(),
                "responded_by_user": {"id": user.id, "name": user.name} if user else None,
            }
        )
