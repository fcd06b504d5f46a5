"""The sign-off deadline per OEM and cycle, and when reminders fall due."""

import datetime as dt

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from release_pipeline.deadlines import local_time, signoff_deadline
from release_pipeline.registry import WEEKDAYS
from tests.builders import make_oem


def test_the_deadline_is_install_days_window_opening_minus_two_days_by_default(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.24")  # released Thu 26 Nov, installed Thu 3 Dec 10:00
    deadline = signoff_deadline(make_oem(), cycle)
    assert deadline.window_opens == cycle.install_at  # an always-open window opens on install day itself
    assert deadline.due == pendulum.datetime(2026, 12, 1, 10, tz="Europe/Amsterdam")
    assert deadline.shown() == "Tuesday 01 December 2026 10:00 (Europe/Berlin)"
    assert deadline.cycle_key == cycle.key


def test_the_deadline_follows_the_window_and_the_margin_in_the_oems_timezone(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.24")
    oem = make_oem(
        timezone="America/New_York",
        maintenance_window={"days": ["tue", "thu", "sat"], "start": "22:00", "end": "04:00"},
        signoff_margin_days=3,
    )
    deadline = signoff_deadline(oem, cycle)
    assert deadline.window_opens == pendulum.datetime(2026, 12, 3, 22, tz="America/New_York")
    assert deadline.due == pendulum.datetime(2026, 11, 30, 22, tz="America/New_York")
    assert deadline.as_json()["due"] == "2026-11-30T22:00:00-05:00"


def test_a_dst_change_between_deadline_and_window_keeps_the_wall_clock(calendar):
    # install day Thu 5 November 2026; Berlin went back to winter time on Sunday 25 October
    cycle = calendar.delivery_cycle_by_release_id("2026.22")
    deadline = signoff_deadline(make_oem(signoff_margin_days=14), cycle)
    opens = deadline.window_opens.in_timezone("Europe/Berlin")
    due = deadline.due.in_timezone("Europe/Berlin")
    assert (due.hour, due.minute) == (opens.hour, opens.minute)
    assert deadline.window_opens - deadline.due == dt.timedelta(days=14, hours=1)


def test_reminders_fall_due_once_each_counting_down_to_the_deadline(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.24")
    deadline = signoff_deadline(make_oem(), cycle)  # due Tue 1 Dec 10:00 Berlin
    assert [days for days, _ in deadline.reminders()] == [5, 2, 1]
    berlin = "Europe/Berlin"
    assert deadline.reminder_due(pendulum.datetime(2026, 11, 26, 9, 59, tz=berlin)) is None
    assert deadline.reminder_due(pendulum.datetime(2026, 11, 26, 10, tz=berlin)) == 5
    assert deadline.reminder_due(pendulum.datetime(2026, 11, 29, 9, tz=berlin)) == 5
    assert deadline.reminder_due(pendulum.datetime(2026, 11, 29, 10, tz=berlin)) == 2
    assert deadline.reminder_due(pendulum.datetime(2026, 11, 30, 23, tz=berlin)) == 1
    assert deadline.reminder_due(pendulum.datetime(2026, 12, 1, 10, tz=berlin)) is None  # too late to remind


def test_reminder_days_are_configurable_and_sorted(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.24")
    deadline = signoff_deadline(make_oem(signoff_reminder_days=[1, 7]), cycle)
    assert [days for days, _ in deadline.reminders()] == [7, 1]
    silent = signoff_deadline(make_oem(signoff_reminder_days=[]), cycle)
    assert silent.reminder_due(deadline.due.subtract(hours=1)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"signoff_margin_days": -1}, "signoff_margin_days"),
        ({"signoff_margin_days": 15}, "signoff_margin_days"),
        ({"signoff_reminder_days": [5, 0]}, "1 to 28 days before the deadline, not 0"),
        ({"signoff_reminder_days": [2, 2]}, "listed twice"),
        ({"signoff_reminder_days": "often"}, "signoff_reminder_days"),
    ],
)
def test_bad_deadline_settings_are_refused_naming_the_field(fields, message):
    with pytest.raises(ValidationError) as caught:
        make_oem(**fields)
    assert message in str(caught.value)


def test_local_time_is_one_format():
    moment = pendulum.datetime(2026, 7, 1, 8, tz="UTC")
    assert local_time(moment, "Asia/Tokyo") == "Wednesday 01 July 2026 17:00 (Asia/Tokyo)"


TIMEZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham", "UTC"]


@settings(max_examples=150, deadline=None)
@given(
    timezone=st.sampled_from(TIMEZONES),
    days=st.sets(st.sampled_from(WEEKDAYS), min_size=1),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    margin=st.integers(0, 14),
    reminders=st.sets(st.integers(1, 28), max_size=4),
    index=st.integers(0, 80),
)
def test_the_deadline_is_never_after_the_window_and_keeps_the_oems_wall_clock(
    calendar, timezone, days, start, end, margin, reminders, index
):
    """Property: in any timezone, window and margin, the deadline falls ``margin`` days
    (on the OEM's calendar) before install day's window opens, never after it, and every
    reminder comes before the deadline."""
    oem = make_oem(
        timezone=timezone,
        maintenance_window={"days": sorted(days), "start": start.isoformat(), "end": end.isoformat()},
        signoff_margin_days=margin,
        signoff_reminder_days=sorted(reminders),
    )
    cycle = calendar.delivery_cycle(index)
    deadline = signoff_deadline(oem, cycle)
    assert deadline.window_opens >= cycle.install_at
    assert deadline.due <= deadline.window_opens
    assert (deadline.due < deadline.window_opens) == (margin > 0)
    opens_local, due_local = deadline.window_opens.in_timezone(timezone), deadline.due.in_timezone(timezone)
    assert (opens_local.date() - due_local.date()).days == margin
    if margin:  # a wall-clock time a DST change skips moves forward by the gap, never past the opening
        assert abs((due_local.hour * 60 + due_local.minute) - (opens_local.hour * 60 + opens_local.minute)) <= 60
    moments = [at for _, at in deadline.reminders()]
    assert moments == sorted(moments) and all(at < deadline.due for at in moments)
