import datetime as dt

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar, UnknownRelease, load_calendar

TIMEZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]

calendars = st.builds(
    lambda tz, anchor, hour, weeks, per_cycle, offset: ReleaseCalendar(
        CalendarConfig(
            timezone=tz,
            anchor=anchor,
            release_time=dt.time(hour, 30),
            cadence_weeks=weeks,
            releases_per_cycle=per_cycle,
            delivery_offset_days=offset,
        )
    ),
    st.sampled_from(TIMEZONES),
    st.dates(dt.date(2020, 1, 1), dt.date(2035, 12, 31)),
    st.integers(0, 23),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(0, 14),
)
indexes = st.integers(-300, 300)
moments = st.datetimes(dt.datetime(2015, 1, 1), dt.datetime(2045, 1, 1), timezones=st.just(dt.UTC))


def test_release_ids_of_the_demo_train(calendar):
    assert calendar.release(0).id == "2026.01"
    assert calendar.release(0).at == pendulum.datetime(2026, 1, 8, 10, tz="Europe/Amsterdam")
    assert calendar.release(25).id == "2026.26"  # 2026-12-24
    assert calendar.release(26).id == "2027.01"  # 2027-01-07: the year boundary restarts the count
    assert calendar.release(-1).id == "2025.26"  # 2025-12-25


def test_release_time_stays_local_across_dst(calendar):
    winter = calendar.release_by_id("2026.06")  # 2026-03-19, CET
    summer = calendar.release_by_id("2026.07")  # 2026-04-02, CEST
    assert (winter.at.hour, summer.at.hour) == (10, 10)
    assert winter.at.in_timezone("UTC").hour == 9
    assert summer.at.in_timezone("UTC").hour == 8
    assert (summer.at - winter.at).in_hours() == 14 * 24 - 1


def test_release_at_the_release_moment_and_just_before(calendar):
    release = calendar.release_by_id("2026.24")
    assert calendar.release_at(release.at) == release
    assert calendar.release_at(release.at.subtract(microseconds=1)) == calendar.previous(release)
    assert calendar.next_release(release.at) == calendar.release(release.index + 1)


@pytest.mark.parametrize("bad", ["2026.00", "2026.27", "2026-24", "26.24", "", "2026.4"])
def test_unknown_release_ids_are_refused(calendar, bad):
    with pytest.raises(UnknownRelease, match="release"):
        calendar.release_by_id(bad)


def test_notes_window_and_delivery_cycle(calendar):
    cycle = calendar.delivery_cycle_by_release_id("2026.23")
    assert [r.id for r in cycle.window.releases] == ["2026.23", "2026.24"]
    assert cycle.key == "2026.23-2026.24"
    assert cycle.release.id == "2026.24"
    assert cycle.install_at == pendulum.datetime(2026, 12, 3, 10, tz="Europe/Amsterdam")
    assert cycle.window.changes_since == calendar.release_by_id("2026.22").at
    assert calendar.next_cycle(cycle).key == "2026.25-2026.26"
    # the current cycle only changes once its delivery release is out
    assert calendar.delivery_cycle_at(cycle.release.at.subtract(seconds=1)).key == "2026.21-2026.22"
    assert calendar.delivery_cycle_at(cycle.release.at).key == "2026.23-2026.24"


def test_notes_windows_between(calendar):
    # windows are listed by their publication: the day of their last release
    windows = calendar.notes_windows_between(pendulum.datetime(2026, 10, 29, 9), pendulum.datetime(2027, 1, 1))
    assert [w.key for w in windows] == ["2026.21-2026.22", "2026.23-2026.24", "2026.25-2026.26"]
    assert [w.publish_at.date().isoformat() for w in windows] == ["2026-10-29", "2026-11-26", "2026-12-24"]
    later = calendar.notes_windows_between(pendulum.datetime(2026, 10, 29, 9, 1), pendulum.datetime(2027, 1, 1))
    assert [w.key for w in later] == ["2026.23-2026.24", "2026.25-2026.26"]


def test_freeze_windows_are_inclusive_local_dates(calendar):
    assert calendar.freeze_at(pendulum.datetime(2026, 12, 20, 23, 30, tz="Europe/Amsterdam")) is None
    assert calendar.freeze_at(pendulum.datetime(2026, 12, 20, 23, 30, tz="UTC")).name == "Year-end freeze"
    assert calendar.freeze_at(pendulum.datetime(2027, 1, 4, 23, 59, tz="Europe/Amsterdam")) is not None
    assert calendar.freeze_at(pendulum.datetime(2027, 1, 5, tz="Europe/Amsterdam")) is None
    # the span the install calendar shows: exactly the instants freeze_at covers
    start, end = calendar.freeze_span(calendar.config.freeze_windows[0])
    assert (start, end) == (
        pendulum.datetime(2026, 12, 21, tz="Europe/Amsterdam"),
        pendulum.datetime(2027, 1, 5, tz="Europe/Amsterdam"),
    )
    assert calendar.freeze_at(start) is not None and calendar.freeze_at(end.subtract(microseconds=1)) is not None
    assert calendar.freeze_at(start.subtract(microseconds=1)) is None and calendar.freeze_at(end) is None


@settings(max_examples=200, deadline=None)
@given(calendars, indexes)
def test_every_release_falls_in_exactly_one_notes_window(cal, index):
    release = cal.release(index)
    window = cal.notes_window_of(release)
    assert release in window
    neighbours = [cal.notes_window(window.index + d) for d in (-1, 1)]
    assert all(release not in other for other in neighbours)
    assert window.start <= release.at < window.end


@settings(max_examples=200, deadline=None)
@given(calendars, indexes)
def test_delivery_is_exactly_the_offset_after_its_release(cal, index):
    cycle = cal.delivery_cycle(index)
    assert cycle.install_at.date() - cycle.release.date == dt.timedelta(days=cal.config.delivery_offset_days)
    assert cycle.install_at.time() == cycle.release.at.time()  # same wall-clock time, DST or not
    assert cycle.release == cycle.window.releases[-1]


@settings(max_examples=200, deadline=None)
@given(calendars, indexes)
def test_release_ids_round_trip_and_sort_like_the_train(cal, index):
    release, following = cal.release(index), cal.release(index + 1)
    assert cal.release_by_id(release.id) == release
    assert release.id < following.id
    assert release.at < following.at
    assert (following.date - release.date).days == 7 * cal.config.cadence_weeks


@settings(max_examples=200, deadline=None)
@given(calendars, moments)
def test_release_at_is_the_latest_release_not_after_the_moment(cal, moment):
    release = cal.release_at(moment)
    assert release.at <= moment < cal.release(release.index + 1).at


@settings(max_examples=100, deadline=None)
@given(calendars, moments)
def test_current_delivery_cycle_is_the_latest_released_one(cal, moment):
    cycle = cal.delivery_cycle_at(moment)
    assert cycle.release.at <= moment < cal.next_cycle(cycle).release.at


def test_load_calendar_names_file_line_and_field(tmp_path):
    path = tmp_path / "calendar.yaml"
    path.write_text("timezone: Europe/Amsterdm\nanchor: 2026-01-08\ncadence_weeks: 0\n")
    with pytest.raises(InvalidConfig) as caught:
        load_calendar(path)
    messages = [str(e) for e in caught.value.errors]
    assert any(":1: calendar, field 'timezone'" in m and "did you mean 'Europe/Amsterdam'" in m for m in messages), (
        messages
    )
    assert any(":3: calendar, field 'cadence_weeks'" in m and "greater than or equal to 1" in m for m in messages)


def test_the_shipped_calendar_is_valid():
    assert load_calendar().config.cadence_weeks == 2


# -- deploy moments: freezes hold for the vendor production too ----------------------------------
def test_a_release_outside_a_freeze_deploys_at_its_release_moment(calendar):
    release = calendar.release_by_id("2026.24")  # 2026-11-26
    assert calendar.deploy_moment(release) == release.at


def test_a_release_inside_a_freeze_deploys_at_the_first_moment_after_it(calendar):
    release = calendar.release_by_id("2026.26")  # 2026-12-24, inside the 2026-12-21..2027-01-04 freeze
    moment = calendar.deploy_moment(release)
    assert moment == pendulum.datetime(2027, 1, 5, tz="Europe/Amsterdam")
    assert calendar.freeze_at(moment) is None
    assert calendar.freeze_at(moment.subtract(microseconds=1)) is not None


def test_touching_and_overlapping_freezes_are_waited_out_together():
    train = ReleaseCalendar(
        CalendarConfig(
            timezone="Europe/Amsterdam",
            anchor="2026-01-08",
            freeze_windows=[
                {"name": "A", "start": "2026-11-25", "end": "2026-11-27"},
                {"name": "B", "start": "2026-11-28", "end": "2026-11-30"},  # starts the day A ends
                {"name": "C", "start": "2026-11-29", "end": "2026-12-02"},  # overlaps B
            ],
        )
    )
    release = train.release_by_id("2026.24")
    assert train.deploy_moment(release) == pendulum.datetime(2026, 12, 3, tz="Europe/Amsterdam")


freezes = st.lists(
    st.tuples(st.dates(dt.date(2025, 12, 1), dt.date(2027, 2, 1)), st.integers(0, 20)).map(
        lambda t: {"name": "freeze", "start": t[0], "end": t[0] + dt.timedelta(days=t[1])}
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*TIMEZONES, "America/Santiago", "America/Havana"]),  # DST at midnight in the last two
    freezes,
    st.datetimes(dt.datetime(2025, 11, 1), dt.datetime(2027, 3, 1), timezones=st.just(dt.UTC)),
)
def test_a_deploy_moment_is_never_frozen_never_early_and_never_later_than_needed(tz, windows, moment):
    train = ReleaseCalendar(CalendarConfig(timezone=tz, anchor="2026-01-08", freeze_windows=windows))
    deploy = train.first_moment_after_freeze(moment)
    assert train.freeze_at(deploy) is None
    assert deploy >= moment
    if deploy > moment:  # it waited: every local day from the moment's up to the deploy's is frozen
        day = pendulum.instance(moment).in_timezone(tz).date()
        while day < deploy.date():
            assert train.freeze_at(pendulum.datetime(day.year, day.month, day.day, 12, tz=tz)) is not None
            day += dt.timedelta(days=1)
        assert deploy.time() <= dt.time(1, 0)  # the start of the day (a DST gap may make it 01:00)


@settings(max_examples=100, deadline=None)
@given(calendars, indexes)
def test_a_release_with_no_freeze_deploys_on_time(train, index):
    release = train.release(index)
    assert train.deploy_moment(release) == release.at


def test_a_freeze_ending_before_a_midnight_dst_gap_deploys_at_the_first_real_moment():
    # Santiago skips 2026-09-06 00:00-01:00: the first moment of that day is 01:00
    train = ReleaseCalendar(
        CalendarConfig(
            timezone="America/Santiago",
            anchor="2026-01-08",
            freeze_windows=[{"name": "spring", "start": "2026-09-01", "end": "2026-09-05"}],
        )
    )
    moment = train.first_moment_after_freeze(pendulum.datetime(2026, 9, 3, 12, tz="America/Santiago"))
    assert moment.in_timezone("UTC") == pendulum.datetime(2026, 9, 6, 4, tz="UTC")
    assert train.freeze_at(moment) is None
