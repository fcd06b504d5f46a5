"""The install calendar (``release_pipeline.install_calendar``), parsed back with icalendar,
on both release databases: what each event says and when, in the OEM's zone (DST
included), stable UIDs and a SEQUENCE that grows only when an event changes, nothing of
another OEM, and the next install as ``forecast`` says it, over generated histories."""

from __future__ import annotations

import datetime as dt

import icalendar
import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from release_pipeline.db.schema import metadata
from release_pipeline.forecast import forecast
from release_pipeline.install_calendar import (
    CYCLES_AHEAD,
    PAST_CYCLES,
    UID_DOMAIN,
    event_uid,
    feed,
    install_events,
)
from release_pipeline.models import Decision, DeliveryStatus, ReleaseStatus
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar
from tests.builders import BEFORE_INSTALL_DAY, cut, make_oem


@pytest.fixture
def production(repo, calendar):
    """2026.20 runs on acme; 2026.22 (CHG-1) and 2026.24 (CHG-2, CHG-3) reached production."""
    for release_id, changes in (("2026.20", ()), ("2026.22", ("CHG-1",)), ("2026.24", ("CHG-2", "CHG-3"))):
        cut(repo, calendar, release_id, *changes)
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
        repo.request_approvals(release_id, ["acme", "beta"])
    repo.set_installed_version("acme", "2026.20")
    repo.set_installed_version("beta", "2026.20")
    return repo


def parse(body: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(body)


def by_kind(cal: icalendar.Calendar) -> dict[str, list[icalendar.Event]]:
    kinds: dict[str, list[icalendar.Event]] = {}
    for event in cal.events:
        kinds.setdefault(str(event.categories[0]), []).append(event)
    return kinds


def approve(repo, oem_id, *changes):
    for change_id in changes:
        repo.record_decision(oem_id=oem_id, change_id=change_id, decision=Decision.APPROVED, actor="a", channel="cli")


# -- what the feed holds ---------------------------------------------------------------------
def test_the_feed_parses_back_with_each_cycles_install_deadline_reminders_and_the_freeze(production, calendar):
    oem = make_oem()
    cal = parse(feed(production, calendar, oem, BEFORE_INSTALL_DAY))
    assert str(cal["version"]) == "2.0" and str(cal["x-wr-calname"]) == "Acme Cloud installs"
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    kinds = by_kind(cal)
    cycles = PAST_CYCLES + CYCLES_AHEAD
    assert len(kinds["Install"]) == len(kinds["Sign-off deadline"]) == cycles
    assert len(kinds["Sign-off reminder"]) == 3 * cycles  # reminders 5, 2 and 1 days before
    (freeze,) = kinds["Freeze"]
    assert len({str(e.uid) for e in cal.events}) == len(cal.events)
    assert all(str(e.uid).endswith(f"@{UID_DOMAIN}") for e in cal.events)

    # the next install (cycle 2026.23-2026.24): the forecast's moment, the window's close, what it says
    ahead = forecast(production, calendar, oem, BEFORE_INSTALL_DAY)
    (nxt,) = [e for e in kinds["Install"] if str(e.uid) == event_uid("acme", "install", "2026.23-2026.24")]
    assert nxt.start == ahead.install_at == pendulum.datetime(2026, 12, 3, 10, tz="Europe/Amsterdam")
    assert nxt.start.tzinfo.key == "Europe/Berlin" and nxt.start.hour == 10
    assert nxt.end == pendulum.datetime(2026, 12, 4, tz="Europe/Berlin")  # the 00:00-00:00 window closes
    assert str(nxt.summary) == "Acme Cloud install window: nothing to install yet"
    assert "If nothing changes: nothing installable yet" in str(nxt.description)
    (due,) = [e for e in kinds["Sign-off deadline"] if str(e.uid) == event_uid("acme", "deadline", "2026.23-2026.24")]
    assert due.start == ahead.deadline.due and "DTEND" not in due
    reminders = sorted(e.start for e in kinds["Sign-off reminder"] if "2026.24 install" in str(e.summary))
    assert reminders == sorted(at for _, at in ahead.deadline.reminders())

    # the year-end freeze: its calendar-timezone days, shown in the OEM's zone
    assert str(freeze.summary) == "Year-end freeze: no installs"
    assert freeze.start == pendulum.datetime(2026, 12, 21, tz="Europe/Amsterdam")
    assert freeze.end == pendulum.datetime(2027, 1, 5, tz="Europe/Amsterdam")
    # the cycle whose install day (31 Dec) falls in it says so
    frozen = [e for e in kinds["Install"] if e.start.date() == dt.date(2026, 12, 31)]
    assert [str(e.summary) for e in frozen] == ["Acme Cloud install day: no install (freeze)"]


def test_an_approved_install_names_its_release_and_a_past_one_how_it_went(production, calendar):
    approve(production, "acme", "CHG-1", "CHG-2", "CHG-3")
    production.upsert_delivery("acme", "2026.20", status=DeliveryStatus.INSTALLED, cycle_key="2026.19-2026.20")
    events = install_events(production, calendar, make_oem(), BEFORE_INSTALL_DAY)
    installs = {e.cycle_key: e for e in events if e.kind == "install"}
    assert installs["2026.23-2026.24"].summary == "Acme Cloud install: 2026.24"
    assert installs["2026.19-2026.20"].summary == "Acme Cloud install: installed 2026.20"
    assert installs["2026.21-2026.22"].summary == "Acme Cloud install window"  # no delivery recorded
    assert installs["2026.21-2026.22"].description == "Nothing was installed in this window."


@pytest.mark.parametrize(
    ("zone", "offsets"),
    [("America/New_York", {-5, -4}), ("Europe/Berlin", {1, 2}), ("Asia/Tokyo", {9}), ("Australia/Sydney", {10, 11})],
)
def test_times_stay_on_the_oems_wall_clock_across_dst(repo, calendar, zone, offsets):
    """A window at 22:00 local, a deadline 10 days before it and reminders 5, 2 and 1 days
    before that: every one at 22:00 on the OEM's clock, on both sides of its DST changes
    (February to August 2027), written with the OEM's TZID and its VTIMEZONE."""
    oem = make_oem(timezone=zone, maintenance_window={"start": "22:00", "end": "02:00"}, signoff_margin_days=10)
    cal = parse(feed(repo, calendar, oem, pendulum.datetime(2027, 2, 10, tz="UTC")))
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == [zone]
    timed = [e for e in cal.events if str(e.categories[0]) != "Freeze"]
    assert {e.start.tzinfo.key for e in timed} == {zone}
    assert {(e.start.hour, e.start.minute) for e in timed} == {(22, 0)}
    assert {e.start.utcoffset() / dt.timedelta(hours=1) for e in timed} == offsets
    # the same instants the rules give
    for event in (e for e in timed if str(e.categories[0]) == "Install"):
        assert event.start == oem.next_maintenance_opening(event.start)
        assert (event.end.hour, event.end.minute, event.end.tzinfo.key) == (2, 0, zone)


# -- UIDs and SEQUENCE ---------------------------------------------------------------------------
def sequences(cal: icalendar.Calendar) -> dict[str, tuple[int, dt.datetime]]:
    return {str(e.uid): (int(e["sequence"]), e.DTSTAMP) for e in cal.events}


def test_uids_are_stable_and_only_a_changed_event_gets_a_higher_sequence(production, calendar):
    oem = make_oem()
    first_at = BEFORE_INSTALL_DAY
    first = sequences(parse(feed(production, calendar, oem, first_at)))
    assert {seq for seq, _ in first.values()} == {0}
    assert {stamp for _, stamp in first.values()} == {first_at}

    # fetched again later, nothing changed: the same UIDs, sequences and DTSTAMPs
    again = sequences(parse(feed(production, calendar, oem, first_at.add(hours=3))))
    assert again == first

    # acme signs everything off: the next install now names its release, and only it changes
    approve(production, "acme", "CHG-1", "CHG-2", "CHG-3")
    later = first_at.add(hours=5)
    changed = sequences(parse(feed(production, calendar, oem, later)))
    assert set(changed) == set(first)
    nxt = event_uid("acme", "install", "2026.23-2026.24")
    assert changed[nxt] == (1, later)
    assert {uid: v for uid, v in changed.items() if uid != nxt} == {uid: v for uid, v in first.items() if uid != nxt}

    # the vendor adds a freeze over the next install day: that install changes again, and
    # the new freeze is a new event
    frozen = ReleaseCalendar(
        CalendarConfig.model_validate(
            {
                **calendar.to_dict(),
                "freeze_windows": [
                    *calendar.to_dict()["freeze_windows"],
                    {"name": "Audit freeze", "start": "2026-12-02", "end": "2026-12-04"},
                ],
            }
        )
    )
    latest = first_at.add(hours=8)
    cal = parse(feed(production, frozen, oem, latest))
    after = sequences(cal)
    assert after[nxt] == (2, latest)
    audit = event_uid("acme", "freeze", "Audit freeze/2026")
    assert after[audit] == (0, latest)
    assert [str(e.summary) for e in cal.events if str(e.uid) == nxt] == ["Acme Cloud install day: no install (freeze)"]
    # the OEM's maintenance window moves: every install event moves with it, same UIDs
    moved = make_oem(maintenance_window={"start": "02:00", "end": "05:00"})
    moved_at = first_at.add(hours=9)
    final = sequences(parse(feed(production, frozen, moved, moved_at)))
    installs = [e.uid for e in install_events(production, frozen, moved, moved_at) if e.kind == "install"]
    assert all(final[uid][0] >= 1 and final[uid][1] == moved_at for uid in installs)
    assert set(final) == set(after)


def test_uids_name_no_one_and_differ_per_oem():
    uid = event_uid("acme", "install", "2026.23-2026.24")
    assert uid == event_uid("acme", "install", "2026.23-2026.24")
    assert uid != event_uid("beta", "install", "2026.23-2026.24")
    assert uid != event_uid("acme", "deadline", "2026.23-2026.24")
    assert "acme" not in uid and "2026" not in uid and "ava" not in uid.lower()


# -- one OEM's calendar only -------------------------------------------------------------------
def test_a_feed_holds_nothing_of_another_oem_nor_the_vendors_name(production, calendar):
    """beta's own sign-offs and deliveries, its brand and zone never reach acme's feed; a
    freeze named after the vendor reaches it in the words ``say`` gives it."""
    approve(production, "beta", "CHG-1", "CHG-2", "CHG-3")
    production.upsert_delivery("beta", "2026.20", status=DeliveryStatus.ROLLED_BACK, cycle_key="2026.19-2026.20")
    beta = make_oem(id="beta", display_name="Beta Corp", brand_name="Betamax Hub", timezone="Asia/Tokyo")
    named = ReleaseCalendar(
        CalendarConfig.model_validate(
            {
                **calendar.to_dict(),
                "freeze_windows": [{"name": "AVA year-end freeze", "start": "2026-12-21", "end": "2027-01-04"}],
            }
        )
    )
    feed(production, named, beta, BEFORE_INSTALL_DAY)  # beta's revisions are beta's
    body = feed(production, named, make_oem(), BEFORE_INSTALL_DAY, say=lambda t: t.replace("AVA", "Acme Cloud"))
    text = parse(body).to_ical().decode().replace("\r\n ", "")
    for foreign in ("beta", "Betamax", "Tokyo", "rolled back", "AVA", "ava"):
        assert foreign not in text
    assert "Acme Cloud year-end freeze: no installs" in text
    assert set(production.calendar_revisions("acme")).isdisjoint(production.calendar_revisions("beta"))


# -- the next install is the forecast's, over generated histories -------------------------------
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC", "America/Sao_Paulo")
YEAR = pendulum.datetime(2027, 1, 1, tz="UTC")


def _clear(repo) -> None:
    with repo.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


@st.composite
def oems(draw):
    start = draw(st.integers(0, 23))
    hours = draw(st.integers(1, 23))
    days = draw(st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1))
    return make_oem(
        timezone=draw(st.sampled_from(ZONES)),
        maintenance_window={"days": sorted(days), "start": f"{start:02d}:00", "end": f"{(start + hours) % 24:02d}:30"},
        install_when_approved=draw(st.booleans()),
        signoff_margin_days=draw(st.integers(0, 5)),
    )


# per cycle: what the OEM decides (None: nothing) and how its delivery ended (None: no run)
CYCLE_STORY = st.tuples(
    st.sampled_from([None, Decision.APPROVED, Decision.REJECTED]),
    st.sampled_from([None, *DeliveryStatus]),
    st.integers(0, 27 * 24),  # when in the cycle the clock is read, hours after its release
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(oem=oems(), story=st.lists(CYCLE_STORY, min_size=3, max_size=13))
def test_the_next_install_is_what_forecast_says_over_a_generated_year(repo, calendar, oem, story):
    """A year of cycles: each cycle's releases reach production and are asked of the OEM,
    which signs off or not, and its delivery ends one way or another (or waits). At a
    moment in each cycle, read by the test's own clock, the feed's install event of the
    forecast's cycle starts at the forecast's install moment (or, when the run is overdue
    and installs at once, in the window that moment falls in), its deadline is the
    forecast's, and every other install event lies before or after it in cycle order."""
    _clear(repo)
    first = calendar.delivery_cycle_at(YEAR)
    cut(repo, calendar, calendar.previous(first.window.releases[0]).id)
    repo.set_installed_version(oem.id, calendar.previous(first.window.releases[0]).id)
    for n, (decision, status, hours) in enumerate(story):
        cycle = calendar.delivery_cycle(first.index + n)
        for release in cycle.window.releases:
            cut(repo, calendar, release.id, f"C-{release.id}")
            repo.set_release_status(release.id, ReleaseStatus.DEPLOYED, actor="test")
            repo.request_approvals(release.id, [oem.id])
        now = cycle.release.at.add(hours=hours)
        if decision is not None:
            for release in cycle.window.releases:
                repo.record_decision(
                    oem_id=oem.id, change_id=f"C-{release.id}", decision=decision, actor="a", channel="cli",
                    comment="no" if decision == Decision.REJECTED else None,
                )  # fmt: skip
        if status is not None and now >= cycle.install_at:
            repo.upsert_delivery(oem.id, cycle.release.id, status=status, cycle_key=cycle.key)
            if status == DeliveryStatus.INSTALLED:
                repo.set_installed_version(oem.id, cycle.release.id)

        ahead = forecast(repo, calendar, oem, now)
        events = install_events(repo, calendar, oem, now)
        installs = [e for e in events if e.kind == "install"]
        (nxt,) = [e for e in installs if e.cycle_key == ahead.cycle_key]
        assert nxt.uid == event_uid(oem.id, "install", ahead.cycle_key)
        assert nxt.start <= ahead.install_at < nxt.end
        if ahead.install_at > now:  # not overdue: the window's opening itself
            assert nxt.start == ahead.install_at
        if ahead.installs:
            assert nxt.summary.endswith(f"install: {ahead.installs}")
        (due,) = [e for e in events if e.kind == "deadline" and e.cycle_key == ahead.cycle_key]
        assert due.start == ahead.deadline.due
        keys = [e.cycle_key for e in sorted(installs, key=lambda e: e.start)]
        assert keys == sorted(keys, key=lambda k: calendar.delivery_cycle_by_release_id(k[-7:]).index)
        assert keys.index(ahead.cycle_key) == PAST_CYCLES

    # and the same, parsed back from the served text (at the last moment: it is the slow part)
    cal = parse(feed(repo, calendar, oem, now))
    (served,) = [e for e in cal.events if str(e.uid) == nxt.uid]
    assert served.start == nxt.start and served.end == nxt.end
    assert (served.start.tzinfo.key if oem.timezone != "UTC" else "UTC") == oem.timezone
