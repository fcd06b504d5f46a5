"""Closing sign-off (R3) is atomic: recording a decision and starting an install take
the same lock (a PostgreSQL advisory lock per OEM, SQLite's write lock), so a decision
either lands before the install's last look and counts there, or is refused (409 in
the portal, exit 2 in the CLI). Never recorded and ignored.

Each interleaving is forced, not hoped for: the install runs between a decision's check
and its write; the install waits while a decision's transaction is open; a decision
waits while the install's last look runs. On both release databases.
"""

from __future__ import annotations

import threading

import pytest

from release_pipeline.db import signoff as signoff_store
from release_pipeline.delivery_process import DeliveryEnded
from release_pipeline.models import Decision, DeliveryStatus
from release_pipeline.signoff import Conflict
from tests.builders import DeliveryWorld

WAIT = 20  # seconds a thread may take at most; a healthy run takes milliseconds


def rejections(world) -> list[str]:
    return [
        e.change_id for c in world.CHANGES for e in world.repo.approval_history("acme", c) if e.decision == "rejected"
    ]


def assert_never_accepted_and_ignored(world) -> None:
    """The rule itself: the instance runs 2026.24 only if no rejection was recorded."""
    assert (world.instance.running == "2026.24") != bool(rejections(world)), (world.instance.running, rejections(world))


def waited_for(first: Outcome, second: Outcome, go: threading.Event, world) -> bool:
    """``second`` started while ``first`` is parked inside its transaction until ``go``:
    whether ``second`` was still waiting a second later. Then both finish, and the rule
    holds whatever the answer (checked first: on the old code it is what fails)."""
    second.join(1.0)
    waited = second.is_alive()
    go.set()
    first.join(WAIT)
    second.join(WAIT)
    assert_never_accepted_and_ignored(world)
    return waited


def test_a_rejection_checked_before_the_install_and_written_after_its_last_look_is_refused(world, monkeypatch):
    """The defect of issue 23: ``decide`` checked that sign-off was open, the install then
    started and took its last look, and the rejection was written after it. The write now
    checks again under the lock, so the rejection is refused with a Conflict."""
    plan = world.process().settle(world.plan())
    record = world.repo.record_decisions
    installs = []

    def install_between_check_and_write(**kwargs):
        installs.append(world.process().install(plan))  # decide's own check has passed
        return record(**kwargs)

    monkeypatch.setattr(world.repo, "record_decisions", install_between_check_and_write)
    with pytest.raises(Conflict, match=r"the install of 2026\.24 on the instance has started: its sign-off is closed"):
        world.decide("rejected", "CHG-2")
    assert installs and world.instance.running == "2026.24"
    assert rejections(world) == []
    assert_never_accepted_and_ignored(world)


def test_an_install_waits_for_a_decision_being_recorded_and_its_last_look_counts_it(world, monkeypatch):
    """A rejection's transaction is open (its event written, not committed) when the
    install starts: the install waits for it, and its last look then stops the install."""
    plan = world.process().settle(world.plan())
    inside, go = threading.Event(), threading.Event()
    notify = signoff_store.notify_signoff

    def hold_the_decision_open(conn, oem_id):
        notify(conn, oem_id)
        inside.set()
        assert go.wait(WAIT)

    monkeypatch.setattr(signoff_store, "notify_signoff", hold_the_decision_open)
    decider = Outcome(lambda: world.decide("rejected", "CHG-2"))
    assert inside.wait(WAIT)
    installer = Outcome(lambda: world.process().install(plan))
    assert waited_for(decider, installer, go, world), "the install did not wait for the decision's transaction"
    assert decider.error is None and len(decider.result) == 1
    assert isinstance(installer.error, DeliveryEnded) and "stopped before the install" in str(installer.error)
    assert world.repo.delivery("acme", "2026.24").status == DeliveryStatus.REJECTED
    assert world.instance.ran == []


def test_a_decision_waits_for_the_installs_last_look_and_is_then_refused(world, monkeypatch):
    """The install holds the lock while it takes its last look: a rejection sent then
    waits, finds the delivery installing, and is refused; the approved release installs."""
    plan = world.process().settle(world.plan())
    inside, go = threading.Event(), threading.Event()
    process = world.process()
    assess = process.assess

    def slow_last_look(installed, until):
        look = assess(installed, until)
        inside.set()
        assert go.wait(WAIT)
        return look

    monkeypatch.setattr(process, "assess", slow_last_look)
    installer = Outcome(lambda: process.install(plan))
    assert inside.wait(WAIT)
    decider = Outcome(lambda: world.decide("rejected", "CHG-2"))
    assert waited_for(installer, decider, go, world), "the decision did not wait for the install's last look"
    assert installer.error is None and world.instance.running == "2026.24"
    assert isinstance(decider.error, Conflict) and "has started" in str(decider.error)


def test_an_approval_that_lands_first_is_what_the_last_look_installs(repo, calendar):
    """The other side of the lock: a decision committed before the install counts."""
    world = DeliveryWorld(repo, calendar)
    world.decide("approved", "CHG-1", "CHG-2")
    plan = world.plan()
    world.decide("approved", "CHG-3")
    world.process().install({**plan})
    assert world.instance.running == "2026.24"
    assert [e.decision for e in repo.approval_history("acme", "CHG-3")] == [Decision.APPROVED]


class Outcome(threading.Thread):
    """``call()`` in a thread; its result or the exception it raised."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call, self.result, self.error = call, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.call()
        except Exception as exc:
            self.error = exc
