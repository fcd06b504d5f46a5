"""Rollout waves (docs/waves.md): when each wave installs, and the halt history of a
release on both release databases."""

from __future__ import annotations

import pendulum
import pytest

from release_pipeline.models import ReleaseDbError
from release_pipeline.release_calendar import FreezeWindow, ReleaseCalendar
from release_pipeline.waves import (
    STAFF_WAVE,
    Halt,
    NotHalted,
    blocking,
    halt,
    halt_of,
    halts,
    postponed_message,
    resume,
    wave_install_at,
    wave_install_day,
)
from tests.builders import cut, make_oem

AT = pendulum.datetime(2026, 12, 4, 9, tz="UTC")


def amsterdam(*args) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="Europe/Amsterdam")


def with_calendar(calendar: ReleaseCalendar, **changes) -> ReleaseCalendar:
    return ReleaseCalendar(calendar.config.model_copy(update=changes))


# -- when each wave installs -------------------------------------------------------------------------
def test_wave_one_installs_on_install_day_as_before(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.24")
    oem = make_oem(maintenance_window={"days": ["thu"], "start": "22:00", "end": "04:00"})
    assert wave_install_day(calendar, cycle, oem) == cycle.install_at == amsterdam(2026, 12, 3, 10)
    assert wave_install_at(calendar, cycle, oem) == pendulum.datetime(2026, 12, 3, 22, tz="Europe/Berlin")


@pytest.mark.parametrize(("wave", "gap", "day"), [(2, 2, 5), (3, 2, 7), (2, 5, 8), (4, 1, 6)])
def test_wave_n_starts_n_minus_one_gaps_after_install_day(calendar, wave, gap, day):
    train = with_calendar(calendar, wave_gap_days=gap)
    cycle = train.delivery_cycle_by_release_id("2026.24")
    oem = make_oem(wave=wave)  # a window open all day: the install starts at once
    assert wave_install_day(train, cycle, oem) == amsterdam(2026, 12, day, 10)
    assert wave_install_at(train, cycle, oem) == amsterdam(2026, 12, day, 10)


def test_a_later_wave_installs_in_its_own_maintenance_window(calendar):
    """Wave 2 starts Saturday 5 December; the OEM's window opens on Tuesdays, 22:00 New York."""
    cycle = calendar.delivery_cycle_by_release_id("2026.24")
    oem = make_oem(
        wave=2, timezone="America/New_York", maintenance_window={"days": ["tue"], "start": "22:00", "end": "04:00"}
    )
    assert wave_install_at(calendar, cycle, oem) == pendulum.datetime(2026, 12, 8, 22, tz="America/New_York")


def test_a_later_wave_keeps_install_days_local_time_across_a_dst_change(calendar):
    """Install day 8 October 10:00 CEST (08:00 UTC); wave 3, 2 x 9 days later, falls after
    the clocks go back on 25 October: 26 October 10:00 CET (09:00 UTC)."""
    train = with_calendar(calendar, wave_gap_days=9)
    cycle = train.delivery_cycle_by_release_id("2026.20")
    assert cycle.install_at == amsterdam(2026, 10, 8, 10)
    moment = wave_install_day(train, cycle, make_oem(wave=3))
    assert moment == amsterdam(2026, 10, 26, 10)
    assert moment.in_timezone("UTC").hour == 9


def test_a_later_wave_that_falls_in_a_freeze_installs_after_it(calendar):
    """Cycle 2026.25-2026.26 installs Thursday 31 December, inside the year-end freeze: wave 1
    keeps install day (and is postponed by the last look, as before), wave 2 (2 January)
    installs at the first window after the freeze, Tuesday 5 January, Sydney time."""
    cycle = calendar.delivery_cycle_by_release_id("2026.26")
    assert calendar.freeze_at(cycle.install_at) is not None
    first = make_oem(wave=1)
    assert wave_install_at(calendar, cycle, first) == cycle.install_at
    later = make_oem(wave=2, timezone="Australia/Sydney")
    assert wave_install_day(calendar, cycle, later) == amsterdam(2027, 1, 5)
    assert wave_install_at(calendar, cycle, later) == amsterdam(2027, 1, 5)
    assert calendar.freeze_at(wave_install_at(calendar, cycle, later)) is None


def test_a_window_opening_inside_a_freeze_is_skipped_for_the_next_outside_it(calendar):
    """Wave 2 starts Saturday 5 December (no freeze); the OEM's window opens on Mondays, and
    a freeze covers Monday 7 December: the install waits for Monday 14 December."""
    train = with_calendar(
        calendar, freeze_windows=(FreezeWindow(name="Audit freeze", start="2026-12-07", end="2026-12-08"),)
    )
    cycle = train.delivery_cycle_by_release_id("2026.24")
    oem = make_oem(wave=2, maintenance_window={"days": ["mon"], "start": "01:00", "end": "05:00"})
    assert wave_install_day(train, cycle, oem) == amsterdam(2026, 12, 5, 10)
    assert wave_install_at(train, cycle, oem) == pendulum.datetime(2026, 12, 14, 1, tz="Europe/Berlin")


def test_the_wave_is_validated_with_the_entry():
    with pytest.raises(ValueError, match="wave"):
        make_oem(wave=0)
    assert make_oem().wave == 1


# -- which installs a halt holds back ----------------------------------------------------------------
def a_halt(release_id: str, wave: int) -> Halt:
    return Halt(1, release_id, "rolled_back", "x", "delivery:a", AT, wave, "a")


def test_a_halt_holds_back_later_waves_only():
    halted = {"2026.24": a_halt("2026.24", 1)}
    assert blocking(halted, installed="2026.22", target="2026.24", wave=2) is halted["2026.24"]
    assert blocking(halted, installed="2026.22", target="2026.24", wave=1) is None


def test_a_staff_halt_holds_back_every_wave():
    halted = {"2026.24": a_halt("2026.24", STAFF_WAVE)}
    assert blocking(halted, installed="2026.22", target="2026.24", wave=1) is not None


def test_a_later_release_still_carrying_the_halted_changes_is_held_back_too():
    halted = {"2026.24": a_halt("2026.24", 1)}
    assert blocking(halted, installed="2026.22", target="2026.26", wave=2) is halted["2026.24"]
    # an instance already running the halted release does not newly run its changes
    assert blocking(halted, installed="2026.24", target="2026.26", wave=2) is None
    # an earlier release does not carry them
    assert blocking(halted, installed="2026.20", target="2026.23", wave=2) is None


# -- the halt history, on both databases -------------------------------------------------------------
@pytest.fixture
def released(repo, calendar):
    cut(repo, calendar, "2026.24", "CHG-1")
    cut(repo, calendar, "2026.26", "CHG-2")
    return repo


def test_a_halt_is_recorded_once_with_its_cause(released):
    repo = released
    assert halt(
        repo, "2026.24", cause="rolled_back", detail="rolled back", actor="delivery:a", at=AT, wave=1, oem_id="a"
    )
    assert not halt(repo, "2026.24", cause="verify_failed", detail="again", actor="delivery:b", at=AT, wave=1)
    assert not halt(repo, "2026.24", cause="rolled_back", detail="later", actor="delivery:c", at=AT, wave=2)
    standing = halt_of(repo, "2026.24")
    assert (standing.cause, standing.detail, standing.wave, standing.oem_id, standing.at) == (
        "rolled_back",
        "rolled back",
        1,
        "a",
        AT,
    )
    assert len(repo.wave_events("2026.24")) == 1
    assert halt_of(repo, "2026.26") is None
    assert set(halts(repo)) == {"2026.24"}


def test_a_halt_from_an_earlier_wave_widens_the_standing_one(released):
    repo = released
    assert halt(repo, "2026.24", cause="regression", detail="reported", actor="oem:b", at=AT, wave=2, oem_id="b")
    assert not halt(repo, "2026.24", cause="rolled_back", detail="rolled back", actor="delivery:a", at=AT, wave=1)
    standing = halt_of(repo, "2026.24")
    assert (standing.cause, standing.wave) == ("regression", 1)  # the first cause stays, it holds back wave 2 now
    assert standing.holds(2) and not standing.holds(1)


def test_resume_keeps_the_history_and_a_new_halt_starts_again(released):
    repo = released
    halt(repo, "2026.24", cause="staff", detail="hold it", actor="ops", at=AT)
    first = halt_of(repo, "2026.24")
    lifted = resume(repo, "2026.24", reason="fixed in 2026.25", actor="ops", at=AT.add(hours=1))
    assert lifted == first
    assert halt_of(repo, "2026.24") is None
    assert halt(repo, "2026.24", cause="verify_failed", detail="again", actor="delivery:a", at=AT.add(hours=2), wave=1)
    assert halt_of(repo, "2026.24").id != first.id
    events = [(e.event, e.cause, e.actor, e.detail) for e in repo.wave_events("2026.24")]
    assert events == [
        ("halted", "staff", "ops", "hold it"),
        ("resumed", None, "ops", "fixed in 2026.25"),
        ("halted", "verify_failed", "delivery:a", "again"),
    ]


def test_a_release_that_is_not_halted_cannot_be_resumed(released):
    with pytest.raises(NotHalted, match="2026.24 is not halted"):
        resume(released, "2026.24", reason="why", actor="ops", at=AT)
    assert released.wave_events() == []


def test_bad_halts_are_refused_naming_what_is_wrong(released):
    with pytest.raises(ValueError, match="cause 'oops': expected one of rolled_back, verify_failed, regression, staff"):
        halt(released, "2026.24", cause="oops", detail="x", actor="ops", at=AT)
    with pytest.raises(ValueError, match="needs a detail"):
        halt(released, "2026.24", cause="staff", detail=" ", actor="ops", at=AT)
    with pytest.raises(ReleaseDbError, match="release 2099.01 is not recorded"):
        halt(released, "2099.01", cause="staff", detail="x", actor="ops", at=AT)
    assert released.wave_events() == []


# -- what an OEM is told ------------------------------------------------------------------------------
def test_the_postponement_names_no_cause_and_no_other_oem():
    oem = make_oem(timezone="Asia/Tokyo")
    subject, lines = postponed_message(oem, target="2026.24", installed="2026.22", at=AT)
    assert subject == "Acme Cloud 2026.24 postponed while a problem is investigated"
    text = " ".join([subject, *lines])
    assert "Friday 04 December 2026 18:00 (Asia/Tokyo)" in text
    for word in ("roll", "verif", "regression", "wave", "AVA"):
        assert word not in text


def test_the_postponement_passes_the_white_label_step_and_the_guard():
    """Rendered as every OEM message is (the delivery update), for nimbus: clean."""
    from release_pipeline.notes import Audience, render
    from tests.disguises import GUARD, NIMBUS, VENDOR

    subject, lines = postponed_message(NIMBUS, target="2026.24", installed="2026.22", at=AT)
    message = render(
        "delivery_update", Audience.oem(NIMBUS, VENDOR), subject=subject, lines=lines, notes_markdown="", notes_html=""
    )
    assert message.subject == "Nimbus Connect 2026.24 postponed while a problem is investigated"
    for text in (message.subject, message.markdown, message.html):
        assert GUARD.scan(text) == [], text
    assert "Friday 04 December 2026 10:00 (Europe/Berlin)" in message.markdown
