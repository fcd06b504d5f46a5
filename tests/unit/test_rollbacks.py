"""Regressions and rollbacks requested by OEMs (``release_pipeline.rollbacks``, the
rules R1-R5) and the approved rollback's run (``DeliveryProcess.roll_back_on_request``),
on both release databases, over the in-memory instance and outbox."""

from __future__ import annotations

import pendulum
import pytest

from release_pipeline import rollbacks
from release_pipeline.delivery_process import CommandResult, DeliveryEnded, DeliveryFailed
from release_pipeline.models import Decision, DeliveryStatus, RollbackStatus
from release_pipeline.signoff import Conflict, Invalid, NotFound
from tests.builders import DeliveryWorld

# Thursdays 22:00 to Fridays 04:00 in Berlin (UTC+1 in December)
NIGHTS = {"maintenance_window": {"days": ["thu"], "start": "22:00", "end": "04:00"}}
INSTALL_WINDOW = pendulum.datetime(2026, 12, 3, 21, 5, tz="UTC")  # install day's window, Thu 3 Dec
NEXT_WINDOW = pendulum.datetime(2026, 12, 10, 21, tz="UTC")  # Thu 10 Dec, 22:00 Berlin
AFTER_FREEZE = pendulum.datetime(2027, 1, 7, 21, tz="UTC")  # the year-end freeze ends 4 Jan
REPORTED = pendulum.datetime(2026, 12, 4, 9, tz="UTC")


class Alerts:
    def __init__(self, fail: bool = False):
        self.sent, self.fail = [], fail

    def __call__(self, subject, lines, *, key):
        if self.fail:
            raise ConnectionError("the vendor's channel is down")
        self.sent.append((key, subject, lines))


def delivered(repo, calendar, target: str = "2026.24", **oem) -> DeliveryWorld:
    """acme upgraded from 2026.22 to ``target`` by a delivery, every change approved."""
    world = DeliveryWorld(repo, calendar, **NIGHTS, **oem)
    world.decide("approved")
    world.now = INSTALL_WINDOW
    steps = world.process()
    plan = steps.plan(run_id="run-1", target_override=target)
    steps.verify(plan, steps.install(plan))
    assert repo.installed_version("acme").release_id == target
    return world


def approved_rollback(world, at=REPORTED) -> int:
    asked = rollbacks.request_rollback(
        world.repo,
        oem_id="acme",
        release_id=world.repo.installed_version("acme").release_id,
        reason="SSO logins fail since the upgrade",
        actor="ann@acme",
        channel="portal",
        at=at,
    )
    rollbacks.approve(world.repo, asked.id, by="rita", reason="confirmed on our side", at=at)
    return asked.id


# -- R1 report --------------------------------------------------------------------------------
def test_a_regression_is_reported_on_the_running_release_and_the_vendor_alerted_once(repo, calendar):
    delivered(repo, calendar)
    alerts = Alerts()
    found = rollbacks.report(
        repo,
        oem_id="acme",
        release_id="2026.24",
        description="  Exports time out since the upgrade  ",
        actor="ann@acme",
        channel="api",
        at=REPORTED,
        alert=alerts,
    )
    assert (found.release_id, found.description, found.reported_at) == (
        "2026.24",
        "Exports time out since the upgrade",
        REPORTED,
    )
    assert found.vendor_alerted_at == REPORTED
    [(key, subject, lines)] = alerts.sent
    assert (
        key == f"regression:acme:{found.id}"
        and subject == f"OEM acme: regression reported on 2026.24 (report #{found.id})"
    )
    assert "Exports time out since the upgrade" in lines
    assert rollbacks.alert_pending(repo, alerts) == []  # nothing left to alert
    assert len(alerts.sent) == 1


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"release_id": "2026.23"}, Conflict, "the release your instance runs (2026.24), not 2026.23"),
        ({"description": "   "}, Invalid, "description: a value is required"),
        ({"actor": ""}, Invalid, "needs the name of who does it"),
        ({"channel": "fax"}, Invalid, "unknown channel 'fax'"),
    ],
)
def test_a_bad_report_is_refused_saying_what_is_wrong(repo, calendar, fields, error, message):
    delivered(repo, calendar)
    given = {"release_id": "2026.24", "description": "broken", "actor": "ann@acme", "channel": "portal", **fields}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        rollbacks.report(repo, oem_id="acme", at=REPORTED, **given)
    assert repo.regression_reports() == []


def test_a_report_stands_when_the_alert_fails_and_is_alerted_later(repo, calendar):
    delivered(repo, calendar)
    found = rollbacks.report(
        repo,
        oem_id="acme",
        release_id="2026.24",
        description="broken",
        actor="ann@acme",
        channel="portal",
        at=REPORTED,
        alert=Alerts(fail=True),
    )
    assert found.vendor_alerted_at is None and [r.id for r in repo.regression_reports(unalerted=True)] == [found.id]
    later = Alerts()
    assert rollbacks.alert_pending(repo, later, at=REPORTED.add(minutes=15)) == [found.id]
    assert [key for key, _, _ in later.sent] == [f"regression:acme:{found.id}"]
    assert repo.regression_report(found.id).vendor_alerted_at == REPORTED.add(minutes=15)


def test_a_regression_report_halts_its_release_for_the_later_waves_once(repo, calendar):
    """Whoever alerts the vendor of a report halts the release first (docs/waves.md): the
    OEMs of later waves wait for it until staff resume it; a resume is not undone by the
    same report."""
    from release_pipeline import waves

    delivered(repo, calendar)
    found = rollbacks.report(
        repo, oem_id="acme", release_id="2026.24", description="broken", actor="ann", channel="portal", at=REPORTED
    )
    alerts = Alerts()
    assert rollbacks.alert_pending(repo, alerts, at=REPORTED, wave_of={"acme": 1}.__getitem__) == [found.id]
    halt = waves.halt_of(repo, "2026.24")
    assert (halt.cause, halt.wave, halt.oem_id, halt.actor) == ("regression", 1, "acme", "oem:acme")
    assert f"report #{found.id}" in halt.detail
    assert [key for key, _, _ in alerts.sent] == [f"wave:halted:2026.24:{halt.id}", f"regression:acme:{found.id}"]
    waves.resume(repo, "2026.24", reason="fixed on our side", actor="rita", at=REPORTED.add(hours=2))
    assert rollbacks.alert_pending(repo, alerts, at=REPORTED.add(hours=3), wave_of={"acme": 1}.__getitem__) == []
    assert waves.halt_of(repo, "2026.24") is None and len(alerts.sent) == 2
    # reported where the alert goes at once (a trusted host): halted there too
    again = rollbacks.report(
        repo, oem_id="acme", release_id="2026.24", description="still", actor="ann", channel="api",
        at=REPORTED.add(hours=4), alert=alerts, wave=1,
    )  # fmt: skip
    assert waves.halt_of(repo, "2026.24").detail.startswith(f"regression reported by acme (report #{again.id})")


# -- R2 request -------------------------------------------------------------------------------
def test_a_rollback_goes_back_to_the_version_the_delivery_came_from_one_request_at_a_time(repo, calendar):
    delivered(repo, calendar)
    regression = rollbacks.report(
        repo, oem_id="acme", release_id="2026.24", description="broken", actor="ann", channel="portal", at=REPORTED
    )
    asked = rollbacks.request_rollback(
        repo,
        oem_id="acme",
        release_id="2026.24",
        reason="broken",
        actor="ann@acme",
        channel="portal",
        regression_id=regression.id,
        at=REPORTED,
    )
    assert (asked.from_release_id, asked.to_release_id, asked.status) == ("2026.24", "2026.22", "requested")
    assert asked.regression_id == regression.id
    with pytest.raises(Conflict, match=rf"already has rollback request #{asked.id} open \(requested\)"):
        rollbacks.request_rollback(
            repo, oem_id="acme", release_id="2026.24", reason="again", actor="bob", channel="api", at=REPORTED
        )
    rollbacks.refuse(repo, asked.id, by="rita", reason="a fix ships on Monday", at=REPORTED)
    again = rollbacks.request_rollback(
        repo, oem_id="acme", release_id="2026.24", reason="still broken", actor="bob", channel="api", at=REPORTED
    )
    assert again.status == "requested"  # the refused one is closed


def test_no_rollback_without_a_delivery_to_undo_nor_for_another_release(repo, calendar):
    world = DeliveryWorld(repo, calendar)  # acme runs 2026.22, recorded, never delivered
    ask = {"oem_id": "acme", "reason": "broken", "actor": "ann", "channel": "portal", "at": REPORTED}
    with pytest.raises(Conflict, match="not upgraded to 2026.22 by a delivery: there is no earlier version"):
        rollbacks.request_rollback(repo, release_id="2026.22", **ask)
    with pytest.raises(Conflict, match=r"the release your instance runs \(2026.22\), not 2026.24"):
        rollbacks.request_rollback(repo, release_id="2026.24", **ask)
    with pytest.raises(NotFound, match="no release is recorded on the instance of zeta"):
        rollbacks.request_rollback(repo, **{**ask, "oem_id": "zeta"}, release_id="2026.22")
    assert repo.rollback_requests() == [] and world.instance.ran == []


def test_a_regression_of_another_oem_cannot_be_named(repo, calendar):
    delivered(repo, calendar)
    repo.set_installed_version("other", "2026.24")
    theirs = rollbacks.report(
        repo, oem_id="other", release_id="2026.24", description="x", actor="o", channel="api", at=REPORTED
    )
    with pytest.raises(NotFound, match=f"no regression report #{theirs.id} of yours"):
        rollbacks.request_rollback(
            repo,
            oem_id="acme",
            release_id="2026.24",
            reason="r",
            actor="ann",
            channel="api",
            regression_id=theirs.id,
            at=REPORTED,
        )


# -- R3 decision ------------------------------------------------------------------------------
def test_staff_decide_once_with_a_reason_and_the_history_keeps_every_step(repo, calendar):
    delivered(repo, calendar)
    asked = rollbacks.request_rollback(
        repo, oem_id="acme", release_id="2026.24", reason="broken", actor="ann", channel="portal", at=REPORTED
    )
    with pytest.raises(Invalid, match="--reason: a value is required"):
        rollbacks.approve(repo, asked.id, by="rita", reason=" ")
    approved = rollbacks.approve(repo, asked.id, by="rita", reason="confirmed", at=REPORTED.add(hours=1))
    assert (approved.status, approved.decided_by, approved.decision_reason) == ("approved", "rita", "confirmed")
    assert approved.decided_at == REPORTED.add(hours=1)
    for decide in (rollbacks.approve, rollbacks.refuse):
        with pytest.raises(Conflict, match=rf"request #{asked.id} is already approved by rita: cannot be"):
            decide(repo, asked.id, by="sam", reason="late")
    with pytest.raises(NotFound, match="no rollback request #999"):
        rollbacks.refuse(repo, 999, by="sam", reason="x")
    history = [(e.status, e.actor, e.detail) for e in repo.rollback_history(asked.id)]
    assert history == [("requested", "ann", "broken"), ("approved", "rita", "confirmed")]


def test_an_approval_is_refused_once_the_instance_moved_on(repo, calendar):
    delivered(repo, calendar)
    asked = rollbacks.request_rollback(
        repo, oem_id="acme", release_id="2026.24", reason="broken", actor="ann", channel="portal", at=REPORTED
    )
    repo.set_installed_version("acme", "2026.23")  # e.g. an operator's manual fix
    with pytest.raises(Conflict, match="was for 2026.24, but the instance of acme now runs 2026.23: refuse it"):
        rollbacks.approve(repo, asked.id, by="rita", reason="ok")
    assert repo.rollback_request(asked.id).status == "requested"


# -- R4 execution -----------------------------------------------------------------------------
def test_an_approved_rollback_waits_for_the_window_then_runs_and_is_recorded(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = REPORTED  # Friday morning: the window is shut
    steps = world.process()
    assert steps.rollback_window() == NEXT_WINDOW
    with pytest.raises(DeliveryEnded, match="waits for the maintenance window"):
        steps.roll_back_on_request(request_id, run_id="rb-1")
    assert not [c for c, _ in world.instance.ran if "rollback" in c]

    world.now = NEXT_WINDOW.add(minutes=1)
    sent_before = len(world.outbox.sent)
    outcome = world.process().roll_back_on_request(request_id, run_id="rb-2")
    assert outcome.startswith("rolled back to 2026.22 after: rollback requested by the OEM")
    assert [(c, t) for c, t in world.instance.ran if "rollback" in c] == [("ava-ctl rollback 2026.22", 1800)]
    row = repo.delivery("acme", "2026.24")
    assert (row.status, row.run_id, row.finished_at) == (DeliveryStatus.ROLLED_BACK, "rb-2", NEXT_WINDOW.add(minutes=1))
    assert "SSO logins fail" in row.detail and "approved by rita" in row.detail
    assert repo.installed_version("acme").release_id == "2026.22"
    done = rollbacks.request_of(repo, request_id)
    assert (done.status, done.finished_at) == (RollbackStatus.DONE, NEXT_WINDOW.add(minutes=1))
    assert repo.acquire_instance_lock("acme", "probe", ttl=pendulum.duration(seconds=1)) is None  # lock released
    assert world.outbox.docs[-1] == ("2026.24", "2026.22")
    told = world.outbox.sent[sent_before:]
    assert [(to, key) for to, key, _, _ in told] == [
        ("vendor", f"rollback:done_vendor:acme:{request_id}"),
        ("oem", f"rollback:done:acme:{request_id}"),
    ]
    subject, lines = told[1][2:]
    assert subject == "Your Acme Cloud instance runs 2026.22 again"
    assert "on 10 December 2026 22:01 (Europe/Berlin)" in lines[0]

    with pytest.raises(DeliveryEnded, match=f"request #{request_id} is done: nothing to run"):
        world.process().roll_back_on_request(request_id, run_id="rb-3")


def test_a_rollback_never_runs_in_a_freeze(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = pendulum.datetime(2026, 12, 24, 21, 30, tz="UTC")  # Thursday night, in the year-end freeze
    assert world.process().rollback_window() == AFTER_FREEZE
    with pytest.raises(DeliveryEnded, match="waits: Year-end freeze"):
        world.process().roll_back_on_request(request_id, run_id="rb-1")
    assert world.instance.running == "2026.24" and rollbacks.request_of(repo, request_id).status == "approved"


def test_a_rollback_that_does_not_bring_the_instance_back_is_failed_and_alerted(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW

    def broken(oem, command, *, timeout):
        world.instance.ran.append((command, timeout))
        return CommandResult(command, 1, "", "disk full")

    world.instance.run = broken
    with pytest.raises(DeliveryFailed, match="rollback to 2026.22 FAILED, the instance needs attention"):
        world.process().roll_back_on_request(request_id, run_id="rb-1")
    assert rollbacks.request_of(repo, request_id).status == RollbackStatus.FAILED
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.FAILED
    assert repo.installed_version("acme").release_id == "2026.24"
    assert world.outbox.to("vendor")[-1] == f"rollback:failed_vendor:acme:{request_id}"
    assert world.outbox.to("oem")[-1] == f"rollback:failed:acme:{request_id}"


def test_a_retry_after_a_crash_finds_the_instance_back_and_records_it(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW
    world.instance.running = "2026.22"  # the first try ran the command, then its worker died
    world.process().roll_back_on_request(request_id, run_id="rb-2")
    assert not [c for c, _ in world.instance.ran if "rollback" in c]
    assert rollbacks.request_of(repo, request_id).status == "done"
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.ROLLED_BACK


def test_the_oem_hears_the_decision_once_per_request(repo, calendar):
    world = delivered(repo, calendar)
    asked = rollbacks.request_rollback(
        repo, oem_id="acme", release_id="2026.24", reason="broken", actor="ann", channel="portal", at=REPORTED
    )
    world.process().tell_decision(asked)
    assert not any(key.startswith("rollback:") for key in world.outbox.to("oem"))  # nothing decided yet
    refused = rollbacks.refuse(repo, asked.id, by="rita", reason="a fix ships on Monday", at=REPORTED)
    world.process().tell_decision(refused)
    _, key, subject, lines = world.outbox.sent[-1]
    assert key == f"rollback:refused:acme:{asked.id}"
    assert subject == "Acme Cloud 2026.24: your rollback request was refused"
    assert "Reason: a fix ships on Monday" in lines


# -- R5 after ---------------------------------------------------------------------------------
def test_after_a_rollback_the_next_cycle_asks_again_only_for_what_the_instance_no_longer_runs(repo, calendar):
    world = delivered(repo, calendar, target="2026.23")  # CHG-1 installed; CHG-2, CHG-3 approved, never run
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW
    world.process().roll_back_on_request(request_id, run_id="rb-1")

    states = {c.change_id: c.decision for c in repo.approval_states("acme", "2026.22", "2026.24")}
    assert states == {"CHG-1": Decision.WITHDRAWN, "CHG-2": Decision.APPROVED, "CHG-3": Decision.APPROVED}
    signoff = world.process().assess("2026.22", "2026.24")
    assert not signoff.complete and [r.pending for r in signoff.releases if r.pending] == [("CHG-1",)]
    [withdrawn] = [e for e in repo.approval_history("acme", "CHG-1") if e.decision == "withdrawn"]
    assert withdrawn.channel == "rollback" and f"#{request_id}" in withdrawn.comment

    # the OEM approves CHG-1 again: the next cycle can bring 2026.24 back
    world.decide("approved", "CHG-1")
    assert world.process().assess("2026.22", "2026.24").complete


def test_a_rejection_is_not_withdrawn_only_approvals_are(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW
    world.process().roll_back_on_request(request_id, run_id="rb-1")
    world.decide("rejected", "CHG-2")
    assert rollbacks.withdraw_approvals(repo, rollbacks.request_of(repo, request_id)) == ["CHG-1", "CHG-2", "CHG-3"]
    decisions = {c.change_id: c.decision for c in repo.approval_states("acme", "2026.22", "2026.24")}
    assert decisions == {"CHG-1": Decision.WITHDRAWN, "CHG-2": Decision.REJECTED, "CHG-3": Decision.WITHDRAWN}


def test_with_two_approvers_each_approval_is_withdrawn_and_both_are_needed_again(repo, calendar):
    policy = {"approvers": [{"name": "Olga Berg", "role": "qa"}, {"name": "Pat Kim", "role": "product"}], "quorum": 2}
    world = DeliveryWorld(repo, calendar, **NIGHTS, signoff_policy=policy)
    for approver in ("Olga Berg", "Pat Kim"):
        world.decide("approved", approver=approver, policy=world.oem.signoff_policy)
    world.now = INSTALL_WINDOW
    steps = world.process()
    plan = steps.plan(run_id="run-1", target_override="2026.24")
    steps.verify(plan, steps.install(plan))
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW
    world.process().roll_back_on_request(request_id, run_id="rb-1")

    withdrawn = [(e.approver, e.decision) for e in repo.approval_history("acme", "CHG-2")][-2:]
    assert sorted(withdrawn) == [("Olga Berg", "withdrawn"), ("Pat Kim", "withdrawn")]
    world.decide("approved", approver="Olga Berg", policy=world.oem.signoff_policy)
    signoff = world.process().assess("2026.22", "2026.24")
    assert not signoff.complete  # one approval of two: Pat's word is needed again too
    world.decide("approved", approver="Pat Kim", policy=world.oem.signoff_policy)
    assert world.process().assess("2026.22", "2026.24").complete


def test_a_send_that_fails_after_the_rollback_is_sent_by_the_retry_and_only_then_is_it_done(repo, calendar):
    world = delivered(repo, calendar)
    request_id = approved_rollback(world)
    world.now = NEXT_WINDOW
    publish = world.outbox.publish_rollback_docs

    def docs_down(*args, **kwargs):
        raise ConnectionError("docs portal down")

    world.outbox.publish_rollback_docs = docs_down
    with pytest.raises(ConnectionError):
        world.process().roll_back_on_request(request_id, run_id="rb-1")
    assert world.instance.running == "2026.22" and rollbacks.request_of(repo, request_id).status == "approved"

    world.outbox.publish_rollback_docs = publish
    world.process().roll_back_on_request(request_id, run_id="rb-1")
    assert [c for c, _ in world.instance.ran if "rollback" in c] == ["ava-ctl rollback 2026.22"]  # once
    assert rollbacks.request_of(repo, request_id).status == "done"
    assert world.outbox.docs[-1] == ("2026.24", "2026.22")
    assert world.outbox.to("oem")[-1] == f"rollback:done:acme:{request_id}"
