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
from dataclasses import dataclass, fields
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from release_pipeline.db import connect_async, read_once_more_if_dropped
from release_pipeline.db.signoff import AsyncReleaseReader

# One async engine per (event loop, database): the triggerer runs every trigger in
# one loop, so a thousand waiting gates share one small connection pool. No pre-ping
# (a round trip per checkout): a connection found dropped is replaced on use instead.
_engines: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def release_db_reader(conn_id: str) -> AsyncReleaseReader:
    from airflow.providers.common.compat.connection import get_async_connection

    from release_train_airflow.resources import url_from_connection

    url = url_from_connection(await get_async_connection(conn_id))
    per_loop = _engines.setdefault(asyncio.get_running_loop(), {})
    if url not in per_loop:
        per_loop[url] = connect_async(url, pool_size=5, max_overflow=5)
    return AsyncReleaseReader(per_loop[url])


def _past(deadline: str | None) -> bool:
    return deadline is not None and pendulum.now("UTC") >= pendulum.parse(deadline)


@dataclass(kw_only=True, eq=False, repr=False)
class ReleaseTrainTrigger(BaseTrigger):
    """A trigger whose fields are its kwargs: declared once, ``serialize()`` returns them
    all, so the triggerer re-creates exactly the trigger the task deferred to."""

    def __post_init__(self) -> None:
        super().__init__()

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {field.name: getattr(self, field.name) for field in fields(self)},
        )


@dataclass(kw_only=True, eq=False, repr=False)
class PollingTrigger(ReleaseTrainTrigger):
    """Asks ``poll()`` every ``pause()`` seconds until it returns an event's payload, and
    yields that one event. ``poll()`` judges deadlines itself, on every poll: the clock
    can jump, so no trigger sleeps until a deadline in one go."""

    poll_interval: float

    async def poll(self) -> dict[str, Any] | None:
        """The event's payload once the wait is over, else None."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds until the next poll."""
        return self.poll_interval

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (payload := await self.poll()) is None:
            await asyncio.sleep(self.pause())
        yield TriggerEvent(payload)


@dataclass(kw_only=True, eq=False, repr=False)
class HttpStatusTrigger(PollingTrigger):
    """Polls a JSON endpoint until ``field`` takes one of ``terminal_values``.

    Transient HTTP errors are logged and polled through; the deadline ends the wait.
    """

    http_conn_id: str
    endpoint: str
    field: str
    terminal_values: list[str]
    deadline: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.terminal_values = list(self.terminal_values)
        self._last: Any = None  # the last value seen, for the deadline's event

    async def poll(self) -> dict[str, Any] | None:
        from airflow.providers.http.hooks.http import HttpAsyncHook

        try:
            async with HttpAsyncHook(method="GET", http_conn_id=self.http_conn_id).session() as http:
                response = await http.run(endpoint=self.endpoint)
                body = await response.json()
            self._last = body.get(self.field)
            if self._last in self.terminal_values:
                return {"status": "done", "value": self._last, "body": body}
        except Exception as exc:  # the remote system is down for a moment: keep waiting
            self.log.warning("polling %s/%s failed: %s", self.http_conn_id, self.endpoint, exc)
        if _past(self.deadline):
            return {"status": "deadline", "value": self._last, "deadline": self.deadline}
        return None


@dataclass(kw_only=True, eq=False, repr=False)
class ReleasesSettledTrigger(PollingTrigger):
    """Waits until every release in ``release_ids`` is recorded in a final status."""

    release_ids: list[str]
    final_statuses: list[str]
    deadline: str | None = None
    release_db_conn_id: str = "release_db"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.release_ids, self.final_statuses = list(self.release_ids), list(self.final_statuses)

    async def poll(self) -> dict[str, Any] | None:
        reader = await release_db_reader(self.release_db_conn_id)
        statuses = await read_once_more_if_dropped(
            lambda: reader.release_statuses(self.release_ids), log=self.log, reader="releases settled"
        )
        unsettled = sorted(r for r in self.release_ids if statuses.get(r) not in self.final_statuses)
        if not unsettled:
            return {"status": "done", "statuses": statuses}
        if _past(self.deadline):
            return {"status": "deadline", "unsettled": unsettled, "statuses": statuses}
        return None


GATE_MAX_OUTAGE_SECONDS = 3600.0


@dataclass(kw_only=True, eq=False, repr=False)
class ApprovalGateTrigger(ReleaseTrainTrigger):
    """Waits on an OEM's sign-off of the production releases in ``(after, until]`` until
    the gate's verdict (``release_pipeline.delivery.gate_verdict``) lets the delivery go on.

    It does not query by itself: the gates of a triggerer share one poller
    (``gate_poller``), which reads all of them at once every ``poll_interval`` and, on
    PostgreSQL, wakes at a decision's NOTIFY. It wakes a gate when its answer changed, or
    when a poll sees the clock past its next moment (install day's window, the
    deadline), so an idle gate costs nothing between its answers. While the release
    database is unreachable it waits, and only an outage longer than
    ``max_outage_seconds`` ends the wait (``outage``). A trigger holds nothing but its
    kwargs, so a triggerer restart loses nothing.
    """

    poll_interval: float
    oem_id: str
    after_release_id: str
    until_release_id: str
    settle_at: str
    deadline: str
    max_outage_seconds: float = GATE_MAX_OUTAGE_SECONDS
    release_db_conn_id: str = "release_db"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from release_train_airflow.gate_poller import Gate, watching
        from release_train_airflow.resources import signoff_policy

        gate = Gate(self.oem_id, self.after_release_id, self.until_release_id)
        unreadable_since = None  # since when the OEM's entry in config/ is invalid
        async with watching(self.release_db_conn_id, gate, self.poll_interval) as watch:
            while True:
                try:
                    # the OEM's policy as config/ says now (a file stat; parsed on change; the
                    # poller wakes the gates when the file changes)
                    policy = await asyncio.to_thread(signoff_policy, self.oem_id)
                except Exception as exc:  # an invalid entry: wait, never judge by a default
                    now = pendulum.now("UTC")
                    unreadable_since = unreadable_since or now
                    self.log.warning("approval gate of %s: its sign-off policy cannot be read: %s", self.oem_id, exc)
                    if (now - unreadable_since).total_seconds() >= self.max_outage_seconds:
                        payload = _outage(
                            "the OEM's sign-off policy could not be read",
                            unreadable_since,
                            now,
                            f"{type(exc).__name__}: {exc}",
                        )
                        break
                    await watch.next(timeout=self.poll_interval)
                    continue
                unreadable_since = None
                if (payload := self._judge(watch, policy)) is not None:
                    break
                await watch.next()
        yield TriggerEvent(payload)

    def _judge(self, watch, policy) -> dict[str, Any] | None:
        """The event's payload once the wait is over, from the poller's latest answer
        judged under the OEM's sign-off ``policy``."""
        from release_pipeline.delivery import GateVerdict, assess, gate_verdict

        now = pendulum.now("UTC")
        settle_at, deadline = pendulum.parse(self.settle_at), pendulum.parse(self.deadline)
        watch.due = next((moment for moment in sorted((settle_at, deadline)) if moment > now), now)
        outage = watch.outage(now)
        if outage is not None:  # no verdict from an answer that may be stale
            if outage < self.max_outage_seconds:
                return None
            return _outage(
                "the release database was unreachable", now.subtract(seconds=outage), now, watch.poller.last_error
            )
        answer = watch.answer
        if answer is None:  # not read yet
            return None
        signoff = assess(
            installed=self.after_release_id,
            aim=self.until_release_id,
            production=answer.production,
            states=answer.states,
            policy=policy,
        )
        verdict = gate_verdict(signoff, now=now, settle_at=settle_at, deadline=deadline)
        if verdict == GateVerdict.WAIT:
            return None
        return {"status": "done", "outcome": str(verdict), "summary": signoff.summary()}


def _outage(what: str, since: pendulum.DateTime, now: pendulum.DateTime, error: str | None) -> dict[str, Any]:
    return {
        "status": "done",
        "outcome": "outage",
        "summary": f"{what} from {since.isoformat()} to {now.isoformat()} while the approval gate waited ({error})",
    }


@dataclass(kw_only=True, eq=False, repr=False)
class MomentTrigger(PollingTrigger):
    """Fires once the clock reaches ``moment`` (ISO).

    Airflow's ``DateTimeTrigger`` sleeps in steps of up to an hour; this one looks at
    the clock every ``poll_interval`` seconds, so a moved clock (NTP, a test's pinned
    clock) is seen within one interval.
    """

    moment: str

    async def poll(self) -> dict[str, Any] | None:
        now = pendulum.now("UTC")
        if now < pendulum.parse(self.moment):
            return None
        return {"status": "done", "moment": self.moment, "at": now.isoformat()}

    def pause(self) -> float:
        left = (pendulum.parse(self.moment) - pendulum.now("UTC")).total_seconds()
        return max(0.05, min(self.poll_interval, left))


@dataclass(kw_only=True, eq=False, repr=False)
class HitlAnswerTrigger(ReleaseTrainTrigger):
    """Reads, once, the answer recorded for a human-in-the-loop task instance.

    Only the triggerer may read HITL details (the task supervisor refuses the request),
    so a retried sign-off task defers here for one read. Yields ``answered`` False when
    there is no answer (or no request) for ``ti_id``.
    """

    ti_id: str

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
