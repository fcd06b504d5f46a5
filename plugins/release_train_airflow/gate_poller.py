"""One poller for every approval gate waiting in a triggerer.

A thousand waiting gates must not cost a thousand queries per poll interval. The
gates of one triggerer (one event loop) that read the same release database share a
``GatePoller``: once per interval it runs one small statement (the production
releases' changes in the gates' span and the newest approval event id), reads
decisions again only for the OEMs that have new ones, and hands each gate its
answer. Its cost follows the number of decisions, not of gates.

On PostgreSQL it also ``LISTEN``s: a recorded decision sends a ``NOTIFY`` naming its
OEM (``release_pipeline.db.signoff.notify_signoff``), which wakes the poller at
once, so a sign-off reaches its gate in well under a second. Polling stays as the
fallback and is the only way on SQLite.

Nothing here is needed to restart: a trigger holds only its kwargs, and the poller
is built again, lazily, by the first gate that waits (and closed with the last).
There is no pre-ping per poll: a statement that finds its connection dropped is run
again once on a new one, and a lost ``LISTEN`` connection is opened again (the next
poll then reads every gate's OEM, since a NOTIFY may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pendulum

from release_pipeline.db.signoff import SIGNOFF_CHANNEL, change_approval, latest_decisions_query, poll_query
from release_pipeline.models import ChangeApproval

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0  # the longest pause between polls while the database is away
BURST_SECONDS = 0.05  # gates deferring, or decisions landing, within this are read together
LISTEN_READY_SECONDS = 2.0  # how long a new poller waits for LISTEN before its first read
LISTEN_RETRY_SECONDS = (0.5, 30.0)  # first and longest pause before opening LISTEN again


async def wait_at_most(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancel that arrives just as
    the event is set, and a gate whose cancel was lost (a cleared task, the triggerer
    moving it) would wait on forever. ``asyncio.timeout`` tells its own expiry from a
    cancel from outside."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


@dataclass(frozen=True)
class Gate:
    """What a gate waits on: an OEM's sign-off of what an instance on ``after`` newly runs
    with ``until``: every change of the recorded releases in ``(after, until]``."""

    oem_id: str
    after_release_id: str
    until_release_id: str

    def covers(self, release_id: str) -> bool:
        return self.after_release_id < release_id <= self.until_release_id


@dataclass(frozen=True)
class GateAnswer:
    """A gate's read of the release database: what ``release_pipeline.delivery.assess`` takes."""

    production: tuple[str, ...]  # release ids that reached production, oldest first
    # each approver's latest decision on each of their changes (one undecided row per
    # change no one decided on): what the OEM's sign-off policy makes a state of
    states: tuple[ChangeApproval, ...]


class Watch:
    """One waiting trigger's line to the poller."""

    def __init__(self, poller: GatePoller, gate: Gate, poll_interval: float):
        self.poller = poller
        self.gate = gate
        self.poll_interval = poll_interval
        self.started = pendulum.now("UTC")
        self.due: pendulum.DateTime | None = None  # when the clock alone may change the verdict
        self._news = asyncio.Event()

    @property
    def answer(self) -> GateAnswer | None:
        """The latest answer, None until the first read succeeded."""
        return self.poller.answers.get(self.gate)

    def outage(self, now: pendulum.DateTime) -> float | None:
        """Seconds this gate has waited on an unreachable database (None: reachable).
        A gate that began waiting during an outage counts from its own start."""
        since = self.poller.outage_since
        if since is None:
            return None
        return (now - max(since, self.started)).total_seconds()

    async def next(self, timeout: float | None = None) -> None:
        """Until the answer changed, ``due`` came (seen at a poll), the database became
        unreachable, or ``config/oems.yaml`` changed; while the database is unreachable,
        or at most ``timeout`` seconds, every ``poll_interval`` (to count the outage)."""
        if self.poller.outage_since is None and timeout is None:
            await self._news.wait()
        else:
            await wait_at_most(self._news, timeout or self.poll_interval)
        self._news.clear()

    def tell(self) -> None:
        self._news.set()


class GatePoller:
    """Reads the sign-off of every waiting gate of one release database, for one event loop."""

    def __init__(self, conn_id: str):
        self.conn_id = conn_id
        self.answers: dict[Gate, GateAnswer] = {}
        self.outage_since: pendulum.DateTime | None = None
        self.last_error: str | None = None
        self.statements = 0  # statements run, for tests and the benchmark
        self.listener_pid: int | None = None  # the LISTEN connection's backend, while it is open
        self._watches: dict[Gate, set[Watch]] = {}
        self._engine = None
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._listening = asyncio.Event()
        # what the answers were built from
        self._span: tuple[str, str] | None = None
        # (release, reached production, change, the change it reverts) of the span read
        self._recorded: tuple[tuple[str, bool, str | None, str | None], ...] | None = None
        self._last_event_id: int | None = None
        self._decisions: dict[str, dict[str, dict[str, object]]] = {}  # OEM -> change -> approver -> latest row
        # what the next read must look at again
        self._dirty: set[str] = set()
        self._full = True
        self._config_stamp: object = None  # config/oems.yaml as last seen (the gates' policies)

    # -- gates come and go --------------------------------------------------------------------
    def add(self, gate: Gate, poll_interval: float) -> Watch:
        watch = Watch(self, gate, poll_interval)
        self._watches.setdefault(gate, set()).add(watch)
        if gate not in self.answers:
            self._wake.set()
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self._poll_loop(), name=f"approval gates: {self.conn_id}"))
        return watch

    def remove(self, watch: Watch) -> bool:
        """Forget ``watch``; True when it was the last."""
        same_gate = self._watches.get(watch.gate, set())
        same_gate.discard(watch)
        if not same_gate:
            self._watches.pop(watch.gate, None)
            self.answers.pop(watch.gate, None)
        return not self._watches

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    @property
    def interval(self) -> float:
        return min(w.poll_interval for watches in self._watches.values() for w in watches)

    def pause(self, failures: int) -> float:
        """Seconds until the next poll: the shortest poll interval of the gates, doubled
        with each failed poll in a row while the database is away (capped)."""
        if not failures:
            return self.interval
        return min(self.interval * 2**failures, MAX_BACKOFF_SECONDS)

    # -- polling ------------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        failures = 0
        while self._watches:
            try:
                await self.poll()
            except Exception as exc:  # the release database is away: keep the gates waiting, say so
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("approval gates (%s): release database error (%s): %s", self.conn_id, failures, exc)
                if self.outage_since is None:
                    self.outage_since = pendulum.now("UTC")
                    self._tell_all()
            else:
                if failures:
                    log.info("approval gates (%s): release database back after %s errors", self.conn_id, failures)
                    self._tell_all()  # judge again on a fresh answer
                failures, self.outage_since, self.last_error = 0, None, None
            self._tell_due()
            if self._config_changed():
                self._tell_all()  # an OEM's sign-off policy may have changed: judge again
            if not self._watches:
                return
            await wait_at_most(self._wake, self.pause(failures))
            if self._wake.is_set():
                await asyncio.sleep(BURST_SECONDS)
                self._wake.clear()

    async def poll(self) -> None:
        """One read for every waiting gate; tells each gate whose answer changed."""
        from release_pipeline.db import read_once_more_if_dropped

        engine = await self._ready_engine()
        gates = list(self._watches)
        span = (min(g.after_release_id for g in gates), max(g.until_release_id for g in gates))
        dirty, self._dirty = self._dirty, set()
        full, self._full = self._full, False
        try:
            read = await read_once_more_if_dropped(
                lambda: self._read(engine, gates, span, dirty, full), log=log, reader=f"approval gates ({self.conn_id})"
            )
        except BaseException:
            self._dirty |= dirty
            self._full = self._full or full
            raise
        self._apply(gates, span, *read)

    async def _read(self, engine, gates: list[Gate], span, dirty: set[str], full: bool):
        async with engine.connect() as conn:
            rows = (await conn.execute(poll_query(*span))).all()
            self.statements += 1
            last_event_id = rows[0].last_event_id
            recorded = tuple(
                (r.release_id, bool(r.deployed), r.change_id, r.reverts) for r in rows if r.release_id is not None
            )
            if recorded != self._recorded or span != self._span:
                full = True  # another release cut or in production, or a gate beyond the span read so far
            if last_event_id is not None and self._last_event_id is not None and last_event_id < self._last_event_id:
                full = True  # events went away (a restored database): trust nothing read before
            oems = {g.oem_id for g in gates}
            asked = dirty | (oems - self._decisions.keys())
            if not (full or asked or last_event_id != self._last_event_id):
                return recorded, last_event_id, None, set()
            query = latest_decisions_query(
                *span,
                oem_ids=None if full else asked,
                since_event_id=None if full else (self._last_event_id or 0),
            )
            decisions = (await conn.execute(query)).all()
            self.statements += 1
            return recorded, last_event_id, decisions, oems if full else asked

    def _apply(self, gates: list[Gate], span, recorded, last_event_id, decisions, reread: set[str]) -> None:
        self._span, self._recorded, self._last_event_id = span, recorded, last_event_id
        if decisions is not None:
            reread = (reread | {row.oem_id for row in decisions}) & {g.oem_id for g in gates}
            for oem_id in reread:
                self._decisions[oem_id] = {}
            for row in decisions:
                if row.oem_id in reread:
                    self._decisions[row.oem_id].setdefault(row.change_id, {})[row.approver] = row
        watched = {g.oem_id for g in gates}
        for oem_id in set(self._decisions) - watched:
            del self._decisions[oem_id]
        for gate in gates:
            if gate in self.answers and gate.oem_id not in reread:
                continue  # nothing it depends on was read again
            answer = self._answer(gate)
            if self.answers.get(gate) != answer:
                self.answers[gate] = answer
                for watch in self._watches.get(gate, ()):
                    watch.tell()

    def _answer(self, gate: Gate) -> GateAnswer:
        decided = self._decisions.get(gate.oem_id, {})
        states = [
            change_approval(change_id, release_id, event, reverts)
            for release_id, _, change_id, reverts in self._recorded or ()
            if change_id is not None and gate.covers(release_id)
            for event in sorted(decided.get(change_id, {}).values(), key=lambda e: e.event_id) or [None]
        ]
        production = sorted({r for r, deployed, _, _ in self._recorded or () if deployed and gate.covers(r)})
        return GateAnswer(production=tuple(production), states=tuple(states))

    def _tell_due(self) -> None:
        """Wake the gates whose verdict the clock alone may have changed. Looked at once
        per poll, not slept until: the clock can jump (NTP, a test's pinned clock)."""
        now = pendulum.now("UTC")
        for watches in self._watches.values():
            for watch in watches:
                if watch.due is not None and watch.due <= now:
                    watch.tell()

    def _config_changed(self) -> bool:
        """Whether ``config/oems.yaml`` changed since the last poll (one stat per poll)."""
        from release_train_airflow.resources import oems_config_stamp

        try:
            stamp = oems_config_stamp()
        except OSError:
            stamp = None
        changed = self._config_stamp is not None and stamp != self._config_stamp
        self._config_stamp = stamp
        return changed

    def _tell_all(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.tell()

    # -- the connection ---------------------------------------------------------------------------
    async def _ready_engine(self):
        if self._engine is None:
            from airflow.providers.common.compat.connection import get_async_connection

            from release_pipeline.db import connect_async
            from release_train_airflow.resources import url_from_connection

            url = url_from_connection(await get_async_connection(self.conn_id))
            # one poll at a time: one connection, and no pre-ping (a dropped one is retried)
            self._engine = connect_async(url, pool_size=1, max_overflow=1)
            if self._engine.dialect.name == "postgresql":
                self._tasks.append(asyncio.create_task(self._listen(), name=f"approval gates LISTEN: {self.conn_id}"))
                await wait_at_most(self._listening, LISTEN_READY_SECONDS)
        return self._engine

    async def _listen(self) -> None:
        """Keep a ``LISTEN`` open; every NOTIFY marks its OEM for the next read and wakes it."""
        import psycopg

        args, params = self._engine.dialect.create_connect_args(self._engine.url)
        pause = LISTEN_RETRY_SECONDS[0]
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(*args, **params, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {SIGNOFF_CHANNEL}")
                    if self._listening.is_set():  # reopened: what was sent meanwhile is lost
                        self._full = True
                        self._wake.set()
                    self.listener_pid = conn.info.backend_pid
                    self._listening.set()
                    pause = LISTEN_RETRY_SECONDS[0]
                    async for note in conn.notifies():
                        self._dirty.add(note.payload)
                        self._wake.set()
            except Exception as exc:  # the database went away or dropped us: poll, and listen again
                log.warning("approval gates (%s): LISTEN lost (%s); polling until it is back", self.conn_id, exc)
            self.listener_pid = None
            await asyncio.sleep(pause)
            pause = min(pause * 2, LISTEN_RETRY_SECONDS[1])


# One poller per (event loop, release-database connection id): the triggerer runs all its
# triggers in one loop, so that is one per triggerer process and database.
_pollers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def poller(conn_id: str) -> GatePoller | None:
    """This loop's poller of ``conn_id``, if a gate is waiting on it."""
    return _pollers.get(asyncio.get_running_loop(), {}).get(conn_id)


@contextlib.asynccontextmanager
async def watching(conn_id: str, gate: Gate, poll_interval: float) -> AsyncIterator[Watch]:
    """Wait on ``gate`` through the shared poller, building it if this is the first gate."""
    per_loop = _pollers.setdefault(asyncio.get_running_loop(), {})
    shared = per_loop.get(conn_id)
    if shared is None:
        shared = per_loop[conn_id] = GatePoller(conn_id)
    watch = shared.add(gate, poll_interval)
    try:
        yield watch
    finally:
        if shared.remove(watch):
            if per_loop.get(conn_id) is shared:
                del per_loop[conn_id]
            await shared.close()
