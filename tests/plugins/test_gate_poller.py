"""The approval gates' shared poller: many waiting gates cost one read per poll
interval, each gate gets its own answer, a NOTIFY wakes a gate within a second on
PostgreSQL, and dropped connections are recovered from, not pre-pinged."""

from __future__ import annotations

import asyncio
import time

import pendulum
import pytest
from sqlalchemy import event, text

from release_pipeline.db import connect
from release_pipeline.models import Decision
from release_train_airflow import gate_poller
from release_train_airflow.triggers import ApprovalGateTrigger
from tests.plugins.conftest import approve_carried


def gate(oem_id: str = "acme", poll_interval: float = 0.2, **overrides) -> ApprovalGateTrigger:
    """A gate after install day's window opened, of an OEM that installs as soon as it
    approves (it waits until ``deadline``): a decision settles it at the next poll."""
    now = pendulum.now("UTC")
    args = {
        "oem_id": oem_id,
        "after_release_id": "2026.22",
        "until_release_id": "2026.24",
        "poll_interval": poll_interval,
        "settle_at": now.subtract(minutes=1).isoformat(),
        "deadline": now.add(hours=1).isoformat(),
        **overrides,
    }
    return ApprovalGateTrigger(**args)


def decide(repo, oem_id: str, decision: Decision = Decision.APPROVED) -> None:
    comment = "breaks our flows" if decision == Decision.REJECTED else None
    repo.record_decision(oem_id=oem_id, change_id="C-24", decision=decision, actor="a", channel="cli", comment=comment)


async def first_payload(trigger: ApprovalGateTrigger):
    return (await anext(trigger.run())).payload


async def shared_poller(conn_id: str = "release_db", timeout: float = 10) -> gate_poller.GatePoller:
    """This loop's poller, once it has answered every gate it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = gate_poller.poller(conn_id)
        if found is not None and found.answers and set(found.answers) == set(found._watches):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no poller of {conn_id} answered its gates within {timeout} s")


def count_statements(poller: gate_poller.GatePoller) -> list[str]:
    """Every statement the poller's engine sends from now on."""
    sent: list[str] = []
    event.listen(poller._engine.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def test_many_gates_share_one_read_per_poll_interval(released):
    oems = [f"oem{n:03d}" for n in range(200)]
    released.request_approvals("2026.24", oems)
    approve_carried(released, oems)

    async def scenario():
        waiting = [asyncio.ensure_future(first_payload(gate(oem, poll_interval=0.25))) for oem in oems]
        poller = await shared_poller()
        sent = count_statements(poller)
        started = time.monotonic()
        await asyncio.sleep(1.3)
        elapsed = time.monotonic() - started
        idle = list(sent)
        decide(released, "oem007")
        decided = await asyncio.wait_for(waiting[7], 5)
        assert not any(w.done() for n, w in enumerate(waiting) if n != 7)
        for w in waiting:
            w.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        return elapsed, idle, sent, decided

    elapsed, idle, sent, decided = asyncio.run(scenario())
    # idle: one statement per 0.25 s poll for all 200 gates (not 200 per poll)
    assert 1 <= len(idle) <= elapsed / 0.25 + 1, idle
    assert all("max(approval_events.id)" in s for s in idle)
    # a decision: the next poll reads the decisions of the OEM that has a new one, only
    decisions_reads = [s for s in sent[len(idle) :] if "latest_event" in s]
    assert len(decisions_reads) == 1
    assert decided["outcome"] == "settled"


def test_each_gate_gets_its_own_answer(released):
    decide(released, "acme")
    decide(released, "beta", Decision.REJECTED)

    async def scenario():
        acme = asyncio.ensure_future(first_payload(gate("acme")))
        beta = asyncio.ensure_future(first_payload(gate("beta")))
        gamma = asyncio.ensure_future(first_payload(gate("gamma")))
        # the same OEM, another span: no production release after 2026.24, nothing to wait for
        later = asyncio.ensure_future(
            first_payload(gate("gamma", after_release_id="2026.24", until_release_id="2026.26"))
        )
        done = await asyncio.wait_for(asyncio.gather(acme, beta, later), 10)
        await asyncio.sleep(0.6)  # three polls
        assert not gamma.done()  # C-24 still pending for gamma
        gamma.cancel()
        await asyncio.gather(gamma, return_exceptions=True)
        return done

    acme, beta, later = asyncio.run(scenario())
    assert acme == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}
    assert beta["outcome"] == "settled" and "rejected" in beta["summary"] and "breaks our flows" in beta["summary"]
    assert later == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.26 approved"}


def test_the_latest_decision_counts_not_the_first(released):
    """acme approved, then rejected: rejected; beta rejected, then approved: approved."""
    decide(released, "acme")
    decide(released, "acme", Decision.REJECTED)
    decide(released, "beta", Decision.REJECTED)
    decide(released, "beta")

    async def scenario():
        return await asyncio.wait_for(asyncio.gather(first_payload(gate("acme")), first_payload(gate("beta"))), 10)

    acme, beta = asyncio.run(scenario())
    assert acme["outcome"] == "settled" and "rejected" in acme["summary"], acme
    assert beta == {"status": "done", "outcome": "settled", "summary": "every change up to 2026.24 approved"}


def test_a_release_reaching_production_is_waited_for(released, calendar):
    """Only production releases count; one that gets there while gates wait is read."""
    from release_pipeline.models import Change, ChangeType, ReleaseStatus

    decide(released, "acme")
    release = calendar.release_by_id("2026.25")
    change = Change("C-25", ChangeType.FIX, "core", "x", "", False, release.at, "2026.25")
    released.record_release(release, [change], changes_since=None, changes_until=None, actor="t")

    async def scenario():
        # 2026.25 is not in production: acme approved all there is
        return await asyncio.wait_for(first_payload(gate("acme", until_release_id="2026.25")), 10)

    assert asyncio.run(scenario())["summary"] == "every change up to 2026.25 approved"

    released.set_release_status("2026.25", ReleaseStatus.DEPLOYED, actor="test")
    released.request_approvals("2026.25", ["acme"])

    async def again():
        # before install day's window opens: the gate waits, whatever is decided meanwhile
        opens = pendulum.now("UTC").add(seconds=1.5).isoformat()
        waiting = asyncio.ensure_future(first_payload(gate("acme", until_release_id="2026.25", settle_at=opens)))
        poller = await shared_poller()
        assert not waiting.done()  # C-25 pending now
        released.record_decision(
            oem_id="acme", change_id="C-25", decision=Decision.REJECTED, actor="a", channel="cli", comment="no"
        )
        event = await asyncio.wait_for(waiting, 5)
        return poller, event

    poller, event = asyncio.run(again())
    # the gate read 2026.25 as a production release: its change counts, and settles it
    assert event["outcome"] == "settled" and "C-25 (release 2026.25) rejected" in event["summary"]
    assert poller._tasks == [] and poller._engine is None  # closed with its last gate


def test_the_poller_closes_with_its_last_gate_and_is_built_again(released):
    decide(released, "acme")

    async def twice():
        first = await first_payload(gate("acme"))
        assert gate_poller.poller("release_db") is None
        second = await first_payload(gate("acme"))
        return first, second

    first, second = asyncio.run(twice())
    assert first == second and first["outcome"] == "settled"


def test_an_outage_is_waited_out_then_reported_after_max_outage(released, monkeypatch):
    """A gate gives up only after its ``max_outage_seconds``, with the last error;
    the others keep waiting, and the poller picks up again when the database is back."""
    failing = {"on": True}
    real_read = gate_poller.GatePoller._read

    async def read(self, *args):
        if failing["on"]:
            raise ConnectionError("server closed the connection unexpectedly")
        return await real_read(self, *args)

    monkeypatch.setattr(gate_poller.GatePoller, "_read", read)

    async def scenario():
        patient = asyncio.ensure_future(first_payload(gate("gamma", poll_interval=0.05, max_outage_seconds=600)))
        event = await first_payload(gate("acme", poll_interval=0.05, max_outage_seconds=0.5))
        poller = gate_poller.poller("release_db")
        assert poller.outage_since is not None and not patient.done()
        failing["on"] = False
        recovered = await shared_poller()
        assert recovered.outage_since is None and not patient.done()  # gamma still pending
        patient.cancel()
        await asyncio.gather(patient, return_exceptions=True)
        return event

    started = pendulum.now("UTC")
    event = asyncio.run(scenario())
    assert event["outcome"] == "outage" and "unreachable" in event["summary"]
    assert "ConnectionError: server closed the connection unexpectedly" in event["summary"]
    assert (pendulum.now("UTC") - started).total_seconds() >= 0.5


@pytest.mark.parametrize("steps_after_news", range(4))
def test_a_cancel_arriving_with_news_is_never_lost(steps_after_news):
    """A gate cancelled as its poller tells it news (or as the database goes away) ends
    cancelled: on Python 3.11 ``asyncio.wait_for`` swallowed such a cancel, the gate went
    on waiting, and the outage test hung in CI. Each step lets the loop run once more
    between the news and the cancel, across the moments the race needs."""
    poller = gate_poller.GatePoller("release_db")
    poller.outage_since = pendulum.now("UTC")  # while the database is away a gate's wait is bounded
    watch = gate_poller.Watch(poller, gate_poller.Gate("acme", "2026.22", "2026.24"), poll_interval=30)

    async def scenario():
        waiting = asyncio.ensure_future(watch.next())
        await asyncio.sleep(0.01)
        watch.tell()
        for _ in range(steps_after_news):
            await asyncio.sleep(0)
        cancel_delivered = waiting.cancel()  # False only when the wait had already ended
        await asyncio.gather(waiting, return_exceptions=True)
        return cancel_delivered, waiting

    cancel_delivered, waiting = asyncio.run(scenario())
    assert waiting.cancelled() == cancel_delivered


def test_a_bounded_wait_ends_at_its_bound_or_its_event():
    async def scenario():
        never = asyncio.Event()
        started = time.monotonic()
        await gate_poller.wait_at_most(never, 0.05)
        timed_out_after = time.monotonic() - started
        soon = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, soon.set)
        started = time.monotonic()
        await gate_poller.wait_at_most(soon, 30)
        return timed_out_after, time.monotonic() - started

    timed_out_after, woken_after = asyncio.run(scenario())
    assert 0.05 <= timed_out_after < 5
    assert woken_after < 5


def test_the_pause_doubles_while_the_database_is_away():
    poller = gate_poller.GatePoller("release_db")
    for oem_id, interval in (("acme", 30.0), ("beta", 1.0)):
        waiting = gate_poller.Gate(oem_id, "2026.22", "2026.24")
        poller._watches[waiting] = {gate_poller.Watch(poller, waiting, interval)}
    assert [poller.pause(failures) for failures in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert poller.pause(20) == gate_poller.MAX_BACKOFF_SECONDS


# -- PostgreSQL: NOTIFY and dropped connections --------------------------------------------------
# LISTEN/NOTIFY is PostgreSQL's; SQLite gates poll (the tests above run on both)
on_postgresql = pytest.mark.parametrize("release_db_url", ["postgresql"], indirect=True)


def terminate(url: str, where: str) -> int:
    engine = connect(url)
    with engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}"
            )
        ).scalar_one()
    engine.dispose()
    return killed


async def signed_off_within(repo, waiting: asyncio.Future, oem_id: str = "acme") -> float:
    started = time.monotonic()
    await asyncio.to_thread(decide, repo, oem_id)
    await asyncio.wait_for(waiting, 5)
    return time.monotonic() - started


@on_postgresql
def test_notify_wakes_a_gate_within_a_second(released):
    """A 30 s poll, and yet the sign-off reaches its gate at once."""

    async def scenario():
        waiting = asyncio.ensure_future(first_payload(gate("acme", poll_interval=30)))
        poller = await shared_poller()
        assert poller.listener_pid is not None
        return await signed_off_within(released, waiting)

    assert asyncio.run(scenario()) < 1.0


@on_postgresql
def test_a_dropped_listen_connection_is_opened_again(released, release_db_url):
    async def scenario():
        waiting = asyncio.ensure_future(first_payload(gate("acme", poll_interval=30)))
        poller = await shared_poller()
        first = poller.listener_pid
        assert terminate(release_db_url, f"pid = {first}") == 1
        for _ in range(100):
            if poller.listener_pid not in (None, first):
                break
            await asyncio.sleep(0.05)
        assert poller.listener_pid not in (None, first), "LISTEN was not opened again"
        return await signed_off_within(released, waiting)

    assert asyncio.run(scenario()) < 1.0


@on_postgresql
def test_a_dropped_query_connection_is_replaced_without_an_outage(released, release_db_url, caplog):
    """No pre-ping: the poll that finds its connection dropped reads again on a new one."""

    async def scenario():
        waiting = asyncio.ensure_future(first_payload(gate("acme", poll_interval=0.2)))
        poller = await shared_poller()
        assert terminate(release_db_url, f"pid <> {poller.listener_pid}") >= 1
        released.engine.dispose()  # the test's own connection went, too
        await asyncio.sleep(0.5)  # polls find their connection dropped
        return await signed_off_within(released, waiting), poller

    with caplog.at_level("INFO", logger=gate_poller.log.name):
        took, poller = asyncio.run(scenario())
    assert took < 1.0
    said = [r.getMessage() for r in caplog.records if r.name == gate_poller.log.name]
    assert any("connection dropped" in m and "reading on a new one" in m for m in said), said
    assert not any("release database error" in m for m in said), said  # no outage


def test_an_outage_and_its_end_are_logged_word_for_word(released, monkeypatch, caplog):
    """What the triggerer's log tells an operator: each failed poll with its count and
    error, and the end of the outage with how many polls failed."""
    failures = {"left": 2}
    real_read = gate_poller.GatePoller._read

    async def read(self, *args):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("server closed the connection unexpectedly")
        return await real_read(self, *args)

    monkeypatch.setattr(gate_poller.GatePoller, "_read", read)
    decide(released, "acme")

    async def scenario():
        waiting = asyncio.ensure_future(first_payload(gate("acme", poll_interval=0.01)))
        poller = None
        while poller is None or not poller._tasks:
            await asyncio.sleep(0.01)
            poller = gate_poller.poller("release_db")
        task = poller._tasks[0].get_name()
        errors = []
        while failures["left"] or poller.outage_since is not None:
            errors.append(poller.last_error)
            await asyncio.sleep(0.005)
        return task, {e for e in errors if e}, poller.last_error, await asyncio.wait_for(waiting, 10)

    with caplog.at_level("INFO", logger=gate_poller.log.name):
        task, errors, last_error, payload = asyncio.run(scenario())
    assert task == "approval gates: release_db"
    assert errors == {"ConnectionError: server closed the connection unexpectedly"} and last_error is None
    assert payload["outcome"] == "settled"
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == gate_poller.log.name]
    assert said == [
        (
            "WARNING",
            "approval gates (release_db): release database error (1): server closed the connection unexpectedly",
        ),
        (
            "WARNING",
            "approval gates (release_db): release database error (2): server closed the connection unexpectedly",
        ),
        ("INFO", "approval gates (release_db): release database back after 2 errors"),
    ]
