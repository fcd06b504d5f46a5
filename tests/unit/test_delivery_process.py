"""One OEM delivery (``DeliveryProcess``) step by step on both release databases, over
in-memory ports (an instance and an outbox that record what they were asked): the rules
of the install itself, each a test that fails when the rule is taken out (issue 23's
surviving mutations; docs/mutation-testing.md)."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from release_pipeline.delivery_process import (
    INSTALL_TIMEOUT_SECONDS,
    VERIFY_GRACE,
    DeliveryEnded,
    DeliveryFailed,
    InstanceBusy,
)
from release_pipeline.models import DeliveryStatus
from tests.builders import INSTALL_DAY, DeliveryWorld

# Thursdays 22:00 to Fridays 04:00 in Berlin (UTC+1 in December): install day's window
# opens at 21:00 UTC, twelve hours after the cycle's install moment (09:00 UTC)
NIGHTS = {"maintenance_window": {"days": ["thu"], "start": "22:00", "end": "04:00"}}
WINDOW_OPENS = pendulum.datetime(2026, 12, 3, 21, tz="UTC")


def installs(world) -> list[str]:
    return [command for command, _ in world.instance.ran if " install " in f" {command} "]


def vendor_first(world) -> None:
    """Every outcome told to the OEM was told to the vendor before."""
    keys = [(to, key) for to, key, _, _ in world.outbox.sent if not key.startswith("ask:")]
    for n, (to, key) in enumerate(keys):
        if to == "oem":
            assert any(t == "vendor" and k.startswith(key.split(":")[0]) for t, k in keys[:n]), keys


# -- the maintenance window and the sign-off deadline (R4) ---------------------------------------
def test_no_install_outside_the_maintenance_window(repo, calendar):
    world = DeliveryWorld(repo, calendar, **NIGHTS)
    world.decide("approved")
    plan = world.plan()  # 09:00 UTC on install day: the window opens at 21:00
    with pytest.raises(DeliveryEnded, match="maintenance window closed"):
        world.process().install(plan)
    assert world.instance.ran == [] and world.instance.running == "2026.22"
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.SKIPPED
    vendor_first(world)


def test_inside_the_window_the_install_runs(repo, calendar):
    world = DeliveryWorld(repo, calendar, **NIGHTS)
    world.decide("approved")
    plan = world.plan()
    world.now = WINDOW_OPENS.add(minutes=5)
    world.process().install(plan)
    assert installs(world) == ["ava-ctl install 2026.24"]


def test_sign_off_is_taken_until_install_days_window_opens_not_install_day(repo, calendar):
    """The gate settles when the window opens; a later approval waits for the next cycle
    (R4): the deadline is the same moment, unless the OEM installs when it approves."""
    world = DeliveryWorld(repo, calendar, **NIGHTS)
    world.now = pendulum.datetime(2026, 11, 28, 12, tz="UTC")
    plan = world.plan()
    assert pendulum.parse(plan["install_at"]) == INSTALL_DAY
    assert pendulum.parse(plan["settle_at"]) == WINDOW_OPENS
    assert pendulum.parse(plan["deadline"]) == WINDOW_OPENS


def test_an_oem_that_installs_when_it_approves_is_waited_for_until_the_cycle_ends(repo, calendar):
    world = DeliveryWorld(repo, calendar, install_when_approved=True, **NIGHTS)
    world.now = pendulum.datetime(2026, 11, 28, 12, tz="UTC")
    plan = world.plan()
    assert pendulum.parse(plan["settle_at"]) == WINDOW_OPENS
    next_release = calendar.next_cycle(calendar.delivery_cycle_by_release_id("2026.24")).release.at
    assert pendulum.parse(plan["deadline"]) == next_release


def test_what_is_pending_when_sign_off_settles_is_not_installed_in_this_cycle(repo, calendar):
    """R4 in the process: settling with CHG-3 pending installs 2026.23 alone, and an
    approval of CHG-3 after that does not bring 2026.24 into this cycle's install."""
    world = DeliveryWorld(repo, calendar)
    world.decide("approved", "CHG-1", "CHG-2")
    settled = world.process().settle(world.plan())
    assert settled["target"] == "2026.23"
    world.decide("approved", "CHG-3")  # late
    world.process().install(settled)
    assert installs(world) == ["ava-ctl install 2026.23"]
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.SKIPPED
    vendor_first(world)


# -- the install ------------------------------------------------------------------------------------
def test_the_install_command_is_bounded_by_the_install_timeout(world):
    world.process().install(world.plan())
    assert world.instance.ran == [("ava-ctl install 2026.24", INSTALL_TIMEOUT_SECONDS)]
    assert 0 < INSTALL_TIMEOUT_SECONDS <= 3600


def test_an_instance_locked_by_another_run_is_not_touched(world, repo):
    plan = world.plan()
    assert repo.acquire_instance_lock("acme", "other-run#1", ttl=dt.timedelta(hours=1)) is None
    with pytest.raises(InstanceBusy, match="locked by other-run#1"):
        world.process().install(plan)
    assert world.instance.ran == []
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.WAITING


def test_the_instance_is_locked_while_the_install_runs(world, repo):
    held = []
    run = world.instance.run

    def run_and_look(oem, command, *, timeout):
        held.append(repo.acquire_instance_lock("acme", "someone-else", ttl=dt.timedelta(hours=1)))
        return run(oem, command, timeout=timeout)

    world.instance.run = run_and_look
    world.process().install(world.plan())
    assert held == ["run-1#1"]
    assert repo.acquire_instance_lock("acme", "next-run", ttl=dt.timedelta(hours=1)) is None  # released after


def test_each_attempt_installs_under_its_own_key(world, repo):
    """An install that verification rolled back is installed again by the next run: its
    key names the attempt, so the ledger does not answer "done" for it."""
    first = world.plan("run-1")
    log = world.process().install(first)
    world.instance.healthy = False
    with pytest.raises(DeliveryFailed, match="verification failed"):
        world.process(verify_grace=dt.timedelta(0)).verify(first, log)
    with pytest.raises(DeliveryFailed, match="rolled back"):
        world.process().recover(first)
    assert world.instance.running == "2026.22"
    second = world.plan("run-2")
    assert second["attempt"] == 2
    assert world.process().install_key(second) != world.process().install_key(first)
    world.process().verify(second, world.process().install(second))
    assert installs(world) == ["ava-ctl install 2026.24"] * 2
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.INSTALLED
    vendor_first(world)
    assert world.outbox.to("vendor")[0].startswith("delivery:failed_vendor:acme:2026.24:1")


# -- verification -------------------------------------------------------------------------------------
def test_an_instance_warming_up_within_the_grace_period_is_verified(world, repo):
    plan = world.plan()
    log = world.process().install(plan)
    started = world.now
    world.instance.unhealthy_polls = 3  # 30 s of 503s after the upgrade
    world.process().verify(plan, log)
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.INSTALLED
    assert world.now - started == dt.timedelta(seconds=30)


def test_an_instance_still_unhealthy_after_the_grace_period_fails_verification(world, repo):
    plan = world.plan()
    log = world.process().install(plan)
    started = world.now
    world.instance.healthy = False
    with pytest.raises(DeliveryFailed, match="verification failed"):
        world.process().verify(plan, log)
    assert world.now - started >= VERIFY_GRACE >= dt.timedelta(minutes=1)
    assert repo.installed_version("acme").release_id == "2026.22"


# -- a release database outage while the gate waited ------------------------------------------------------
def test_an_outage_is_not_attempted_and_told_to_the_vendor_only(world, repo):
    plan = world.plan()
    with pytest.raises(DeliveryEnded, match="not attempted: the release database was unreachable"):
        world.process().gate_outage(plan, "the release database was unreachable for 3600 s")
    row = repo.delivery("acme", "2026.24")
    assert row.status == DeliveryStatus.NOT_ATTEMPTED and row.finished_at is not None
    assert world.outbox.to("vendor") == ["delivery:not_attempted:acme:2026.24:1"]
    assert world.outbox.to("oem") == []
    assert world.instance.ran == []
    assert world.plan("run-2")["attempt"] == 2  # over: the next run is a new attempt


# -- telling ------------------------------------------------------------------------------------------------
def test_a_rejection_found_at_the_last_look_is_told_to_the_vendor_first(world, repo):
    plan = world.plan()
    world.decide("rejected", "CHG-3")
    with pytest.raises(DeliveryEnded, match="stopped before the install"):
        world.process().install(plan)
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.REJECTED
    assert [to for to, key, _, _ in world.outbox.sent if not key.startswith("ask:")] == ["vendor", "oem"]


# -- what is recorded and told, word for word (make mutants changes the words) -------------------------------
def test_a_rejected_aim_settles_on_the_release_before_it_and_says_so(world, repo):
    world.decide("rejected", "CHG-3")
    settled = world.process().settle(world.plan())
    why = "CHG-3 (release 2026.24) rejected by ann@acme: breaks our SSO"
    assert {k: settled[k] for k in ("target", "changes", "attempt", "notes")} == {
        "target": "2026.23",
        "changes": ["CHG-1"],
        "attempt": 1,
        "notes": [f"2026.24 rejected ({why}), so 2026.23 is installed"],
    }
    rejected, instead = repo.delivery("acme", "2026.24"), repo.delivery("acme", "2026.23")
    outcome = f"rejected: {why}; installing 2026.23 instead"
    assert (rejected.status, rejected.detail) == (DeliveryStatus.REJECTED, outcome)
    assert (instead.status, instead.detail, instead.started_at) == (
        DeliveryStatus.WAITING,
        "instead of 2026.24",
        INSTALL_DAY,
    )
    assert world.outbox.sent == [
        (
            "vendor",
            "delivery:rejected_vendor:acme:2026.24:1",
            "OEM acme: Acme Cloud 2026.24 will not be installed",
            [outcome],
        ),
        (
            "oem",
            "delivery:rejected:acme:2026.24:1",
            "Acme Cloud 2026.24 will not be installed",
            [why, "Your instance gets 2026.23 instead, the newest release you approved in full."],
        ),
    ]


def test_nothing_approved_by_install_day_rolls_over(repo, calendar):
    world = DeliveryWorld(repo, calendar)
    with pytest.raises(DeliveryEnded, match=r"^not approved by install day: .*; rolls over to the next cycle$"):
        world.process().settle(world.plan())
    assert repo.delivery("acme", "2026.24").status == DeliveryStatus.SKIPPED
    (to_oem,) = [lines for to, _, _, lines in world.outbox.sent if to == "oem" and lines]
    assert to_oem[-1] == "Your instance stays on 2026.22; the changes come with a later delivery."


def test_a_rolled_back_install_is_recorded_and_told(world, repo):
    plan = world.plan()
    log = world.process().install(plan)
    world.instance.healthy = False
    with pytest.raises(DeliveryFailed):
        world.process(verify_grace=dt.timedelta(0)).verify(plan, log)
    with pytest.raises(DeliveryFailed) as failed:
        world.process().recover(plan)
    outcome = (
        "rolled back to 2026.22 after: verification failed: instance runs '2026.24', health 503 unhealthy\n"
        "$ ava-ctl rollback 2026.22\n[exit 0]\n"
    )
    assert str(failed.value) == f"OEM 'acme': {outcome}"
    row = repo.delivery("acme", "2026.24")
    assert (row.status, row.detail, row.finished_at) == (DeliveryStatus.ROLLED_BACK, outcome, INSTALL_DAY)
    assert repo.installed_version("acme").release_id == "2026.22"
    # then the vendor hears of the halt this started for the later waves (test_waves.py)
    assert world.outbox.sent[-1][:3] == ("vendor", "wave:halted:2026.24:1", "Release 2026.24 halted for waves after 1")
    assert world.outbox.sent[-3:-1] == [
        ("vendor", "delivery:failed_vendor:acme:2026.24:1", "OEM acme: delivery of 2026.24 rolled_back", [outcome]),
        (
            "oem",
            "delivery:failed:acme:2026.24:1",
            "Acme Cloud 2026.24 was not installed",
            [
                "The upgrade did not complete and your instance stays on 2026.22.",
                "Our release team has been alerted and will contact you.",
            ],
        ),
    ]
