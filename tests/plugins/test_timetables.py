import datetime as dt

import pendulum
import pytest
import time_machine
from airflow.timetables.base import DataInterval, TimeRestriction

from release_train_airflow.timetables import ReleaseTrainTimetable

AMS = "Europe/Amsterdam"


def restriction(earliest, catchup=True, latest=None):
    return TimeRestriction(earliest=earliest, latest=latest, catchup=catchup)


@pytest.fixture
def releases(calendar):
    return ReleaseTrainTimetable("release", calendar)


@pytest.fixture
def cycles(calendar):
    return ReleaseTrainTimetable("cycle", calendar)


def test_first_release_run_with_catchup_starts_at_the_start_date(releases, calendar):
    info = releases.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(pendulum.datetime(2026, 11, 20, tz="UTC"))
    )
    release = calendar.release_by_id("2026.24")  # 2026-11-26
    assert info.run_after == release.at
    assert info.data_interval == DataInterval(calendar.release_by_id("2026.23").at, release.at)


def test_first_run_without_catchup_is_the_next_release_to_come(releases, calendar):
    release = calendar.release_by_id("2026.24")
    with time_machine.travel(release.at.subtract(days=3), tick=False):
        info = releases.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction(pendulum.datetime(2020, 1, 1, tz="UTC"), False)
        )
    assert info.run_after == release.at


@pytest.mark.parametrize(
    ("after_the_cut", "release_id"), [(dt.timedelta(minutes=5), "2026.24"), (dt.timedelta(hours=2), "2026.25")]
)
def test_a_parse_just_after_a_cut_keeps_its_run(releases, calendar, after_the_cut, release_id):
    """Airflow works the next run out again at every parse: one a few minutes after the
    cut, before the scheduler made the run, must not skip the period; a DAG turned on
    hours later starts with the next one."""
    cut = calendar.release_by_id("2026.24").at
    with time_machine.travel(cut + after_the_cut, tick=False):
        info = releases.next_dagrun_info(
            last_automated_data_interval=None, restriction=restriction(pendulum.datetime(2020, 1, 1, tz="UTC"), False)
        )
    assert info.run_after == calendar.release_by_id(release_id).at


def test_next_run_follows_the_last_one_even_after_a_gap(releases, calendar):
    last = DataInterval(calendar.release_by_id("2026.20").at, calendar.release_by_id("2026.21").at)
    info = releases.next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction(pendulum.datetime(2026, 1, 1, tz="UTC"))
    )
    assert info.run_after == calendar.release_by_id("2026.22").at


def test_release_runs_keep_local_time_across_dst(releases, calendar):
    last = DataInterval(calendar.release_by_id("2026.05").at, calendar.release_by_id("2026.06").at)
    info = releases.next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction(pendulum.datetime(2026, 1, 1, tz="UTC"))
    )
    assert info.run_after.in_timezone(AMS).hour == 10
    assert info.run_after.in_timezone("UTC").hour == 8  # CEST since 2026-03-29
    assert info.data_interval.start.in_timezone("UTC").hour == 9  # the previous release, still CET


def test_year_boundary(releases, calendar):
    last = DataInterval(calendar.release_by_id("2026.25").at, calendar.release_by_id("2026.26").at)
    info = releases.next_dagrun_info(
        last_automated_data_interval=last, restriction=restriction(pendulum.datetime(2026, 1, 1, tz="UTC"))
    )
    assert calendar.release_at(info.run_after).id == "2027.01"
    assert (
        releases.generate_run_id(run_type="scheduled", run_after=info.run_after, data_interval=info.data_interval)
        == "scheduled__release_2027.01"
    )


def test_cycle_runs_every_four_weeks_on_the_delivery_release(cycles, calendar):
    first = cycles.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(pendulum.datetime(2026, 11, 13, tz="UTC"))
    )
    assert first.run_after == calendar.release_by_id("2026.24").at
    assert first.data_interval.start == calendar.release_by_id("2026.22").at  # changes of 2026.23 and .24
    second = cycles.next_dagrun_info(
        last_automated_data_interval=first.data_interval,
        restriction=restriction(pendulum.datetime(2026, 1, 1, tz="UTC")),
    )
    assert second.run_after == calendar.release_by_id("2026.26").at
    assert (
        cycles.generate_run_id(run_type="scheduled", run_after=second.run_after, data_interval=second.data_interval)
        == "scheduled__cycle_2026.25-2026.26"
    )


def test_offset_moves_the_run_not_the_interval(calendar):
    timetable = ReleaseTrainTimetable("cycle", calendar, offset=dt.timedelta(hours=6))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=restriction(pendulum.datetime(2026, 11, 13, tz="UTC"))
    )
    assert info.run_after == calendar.release_by_id("2026.24").at.add(hours=6)
    assert info.data_interval.end == calendar.release_by_id("2026.24").at
    # a manual run six hours after the release belongs to that cycle
    manual = timetable.infer_manual_data_interval(run_after=info.run_after)
    assert manual == info.data_interval


def test_end_date_stops_the_schedule(releases):
    info = releases.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=restriction(pendulum.datetime(2026, 11, 20, tz="UTC"), latest=pendulum.datetime(2026, 11, 25)),
    )
    assert info is None


def test_manual_runs_take_the_latest_release_interval(releases, calendar):
    interval = releases.infer_manual_data_interval(run_after=pendulum.datetime(2026, 11, 30, tz="UTC"))
    assert interval.end == calendar.release_by_id("2026.24").at


def test_serialization_round_trip(cycles):
    from airflow.serialization.serialized_objects import decode_timetable, encode_timetable

    restored = decode_timetable(encode_timetable(cycles))
    assert restored == cycles
    assert restored.summary.startswith("cycle train: every 4 weeks")


def test_the_schedule_reads_as_one_sentence(releases, cycles, calendar):
    assert calendar.description == "every 2 weeks from 2026-01-08 at 10:00 Europe/Amsterdam"
    assert releases.summary == "release train: every 2 weeks from 2026-01-08 at 10:00 Europe/Amsterdam"
    assert cycles.summary == (
        "cycle train: every 4 weeks, at the last of each cycle's 2 releases "
        "(every 2 weeks from 2026-01-08 at 10:00 Europe/Amsterdam)"
    )
    delayed = ReleaseTrainTimetable("release", calendar, offset=dt.timedelta(hours=2))
    assert (
        delayed.summary
        == "release train: every 2 weeks from 2026-01-08 at 10:00 Europe/Amsterdam, 2:00:00 after the release"
    )
    assert all(summary.count("every") == 1 for summary in (releases.summary, delayed.summary))
