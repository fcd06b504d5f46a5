"""An OEM's install calendar: its install days, sign-off deadlines, reminders and freeze
windows as iCalendar events (RFC 5545), for the portal's ``/oem-portal/calendar.ics``.

Every time comes from the rule that decides it elsewhere, never computed a second way:
the next install is the forecast's (``forecast.forecast``), later ones are install day's
maintenance-window opening as the sign-off deadline knows it
(``deadlines.signoff_deadline(...).window_opens``, the moment the gate settles), the
deadline and its reminders are ``SignoffDeadline.due``/``reminders()``, and a freeze is
the calendar-timezone days ``ReleaseCalendar.freeze_at`` judges by. The events are shown
in the OEM's timezone (``TZID`` with its ``VTIMEZONE``).

A calendar app keeps an event by its UID and takes a new version of it when its SEQUENCE
grows: each event's UID is derived from the OEM, its kind and its cycle (hashed: it names
neither the vendor nor anyone else), and :func:`revise` bumps its SEQUENCE, and its
DTSTAMP, whenever what it says changes (docs/install-calendar.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar
import pendulum

from release_pipeline.db.calendar import EventRevision
from release_pipeline.db.repository import ReleaseRepository
from release_pipeline.deadlines import local_time, signoff_deadline
from release_pipeline.forecast import Forecast, forecast, next_install_cycle
from release_pipeline.models import DeliveryStatus
from release_pipeline.registry import Oem
from release_pipeline.release_calendar import DeliveryCycle, ReleaseCalendar

# the cycles a feed holds: a few behind the next install (so an app sees what became of
# them) and about half a year ahead (cycles are four weeks)
PAST_CYCLES = 2
CYCLES_AHEAD = 6
# the right-hand side of every UID: a reserved name (RFC 2606) that identifies no one; the
# portal's host would carry the vendor's domain
UID_DOMAIN = "install-calendar.invalid"
PRODID = "-//Release train//Install calendar 1//EN"
# how often an app should fetch the feed again (RFC 7986 REFRESH-INTERVAL)
REFRESH = dt.timedelta(hours=1)

INSTALL, DEADLINE, REMINDER, FREEZE = "install", "deadline", "reminder", "freeze"
CATEGORY = {INSTALL: "Install", DEADLINE: "Sign-off deadline", REMINDER: "Sign-off reminder", FREEZE: "Freeze"}

_PAST_OUTCOME = {
    DeliveryStatus.INSTALLED: "installed {release}",
    DeliveryStatus.NOOP: "nothing new to install: the instance already ran {release}",
    DeliveryStatus.REJECTED: "nothing installed: a change of {release} was rejected",
    DeliveryStatus.SKIPPED: "nothing installed: skipped (no sign-off in time, or a freeze)",
    DeliveryStatus.ROLLED_BACK: "the install of {release} was rolled back: the previous version was restored",
    DeliveryStatus.FAILED: "the install of {release} failed",
    DeliveryStatus.NOT_ATTEMPTED: "nothing installed: the install was not attempted",
}


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    kind: str
    start: pendulum.DateTime  # UTC
    end: pendulum.DateTime | None  # None: a moment (a deadline, a reminder)
    summary: str
    description: str
    cycle_key: str | None = None

    def content_hash(self, timezone: str) -> str:
        """What the event says, as an app shows it: when (and in which zone) and the words."""
        said = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "zone": timezone,
            "summary": self.summary,
            "description": self.description,
        }
        return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


def event_uid(oem_id: str, kind: str, key: str) -> str:
    """Stable for the OEM, the event's kind and its key (the cycle, the reminder's day,
    the freeze): the same event keeps its UID whatever it says. Hashed, so the UID carries
    neither the vendor's name nor a freeze's or a cycle's words; the OEM id in the hash
    keeps two OEMs' events apart in a calendar that subscribes to both."""
    digest = hashlib.sha256(f"{oem_id}\x1f{kind}\x1f{key}".encode()).hexdigest()[:32]
    return f"{digest}@{UID_DOMAIN}"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def install_events(
    repo: ReleaseRepository,
    train: ReleaseCalendar,
    oem: Oem,
    now: dt.datetime,
    *,
    say: Callable[[str], str] = str,
    past: int = PAST_CYCLES,
    ahead: int = CYCLES_AHEAD,
) -> list[CalendarEvent]:
    """The OEM's events from ``past`` cycles before its next install to ``ahead`` cycles
    from it, as things stand at ``now``, sorted by start. ``say`` white-labels each text
    for the OEM (the portal's ``branded``)."""
    now = pendulum.instance(now)
    upcoming = next_install_cycle(repo, train, oem.id, now)
    ahead_of_it = forecast(repo, train, oem, now)
    deliveries = {d.cycle_key: d for d in sorted(repo.deliveries(oem.id), key=lambda d: d.id)}
    brand = oem.brand_name
    events: list[CalendarEvent] = []
    cycles = [train.delivery_cycle(i) for i in range(upcoming.index - past, upcoming.index + ahead)]
    for cycle in cycles:
        deadline = signoff_deadline(oem, cycle)
        if cycle.index == upcoming.index:
            events.append(_next_install(oem, train, cycle, ahead_of_it, now, say))
        else:
            events.append(_install(oem, train, cycle, deadline.window_opens, deliveries.get(cycle.key), now, say))
        due = local_time(deadline.due, oem.timezone)
        opens = local_time(deadline.window_opens, oem.timezone)
        events.append(
            CalendarEvent(
                uid=event_uid(oem.id, DEADLINE, cycle.key),
                kind=DEADLINE,
                start=deadline.due,
                end=None,
                summary=say(f"{brand}: sign-off due for the {cycle.release.id} install"),
                description=say(
                    f"Sign off the changes waiting for you in the portal by {due}, so the install of "
                    f"{opens} takes them. A sign-off still counts until that install starts."
                ),
                cycle_key=cycle.key,
            )
        )
        for days, at in deadline.reminders():
            events.append(
                CalendarEvent(
                    uid=event_uid(oem.id, REMINDER, f"{cycle.key}/{days}"),
                    kind=REMINDER,
                    start=at,
                    end=None,
                    summary=say(f"{brand}: sign-off due in {_days(days)} ({cycle.release.id} install)"),
                    description=say(
                        f"The sign-off for the install of {opens} is due {due}. "
                        "If changes still wait for your sign-off, a reminder is sent now as well."
                    ),
                    cycle_key=cycle.key,
                )
            )
    first, last = cycles[0].install_at.subtract(weeks=5), cycles[-1].install_at.add(weeks=1)
    events.extend(_freezes(oem, train, first, last, say))
    return sorted(events, key=lambda e: (e.start, e.kind, e.uid))


def _closes(oem: Oem, moment: pendulum.DateTime) -> pendulum.DateTime:
    """When the maintenance window ``moment`` falls in closes."""
    return oem.maintenance_window.window_around(moment, oem.timezone)[1].in_timezone("UTC")


def _next_install(
    oem: Oem,
    train: ReleaseCalendar,
    cycle: DeliveryCycle,
    ahead: Forecast,
    now: pendulum.DateTime,
    say: Callable[[str], str],
) -> CalendarEvent:
    """The forecast's install: from its install moment to the close of the maintenance
    window it falls in. A run overdue (install day passed, still waiting) installs at once
    within an open window, so the forecast says "now": the event then starts where that
    window opened, but never before install day's moment, and does not move with each fetch."""
    opens = ahead.install_at
    if opens <= now:
        window_opens = oem.maintenance_window.window_around(opens, oem.timezone)[0].in_timezone("UTC")
        opens = max(window_opens, signoff_deadline(oem, cycle).window_opens)
    closes = _closes(oem, ahead.install_at)
    if ahead.installs:
        what = f"{oem.brand_name} install: {ahead.installs}"
    elif train.freeze_at(ahead.install_at):
        what = f"{oem.brand_name} install day: no install (freeze)"
    else:
        what = f"{oem.brand_name} install window: nothing to install yet"
    lines = [f"If nothing changes: {ahead.outcome}.", *(f"Note: {c}." for c in ahead.conflicts)]
    return _install_event(oem, cycle, opens, closes, what, lines, say)


def _install_event(
    oem: Oem,
    cycle: DeliveryCycle,
    start: pendulum.DateTime,
    end: pendulum.DateTime,
    what: str,
    lines: list[str],
    say: Callable[[str], str],
) -> CalendarEvent:
    """A cycle's install event (one UID per OEM and cycle, whether next or not), its words
    white-labelled by ``say``."""
    return CalendarEvent(
        uid=event_uid(oem.id, INSTALL, cycle.key),
        kind=INSTALL,
        start=start,
        end=end,
        summary=say(what),
        description=say("\n".join(lines)),
        cycle_key=cycle.key,
    )


def _install(
    oem: Oem,
    train: ReleaseCalendar,
    cycle: DeliveryCycle,
    opens: pendulum.DateTime,
    delivery,
    now: pendulum.DateTime,
    say: Callable[[str], str],
) -> CalendarEvent:
    """An install before or after the next one: install day's window (what the sign-off
    deadline counts back from). One already run says how it went."""
    start, end = opens, _closes(oem, opens)
    freeze = train.freeze_at(opens)
    if delivery is not None and delivery.status in _PAST_OUTCOME:
        outcome = _PAST_OUTCOME[DeliveryStatus(delivery.status)].format(release=delivery.release_id)
        what, lines = f"{oem.brand_name} install: {outcome}", [f"This install window's outcome: {outcome}."]
    elif freeze:
        what = f"{oem.brand_name} install day: no install (freeze)"
        lines = [f"Install day falls in the {freeze.name} ({freeze.start} to {freeze.end}): nothing is installed."]
    elif start < now:
        what = f"{oem.brand_name} install window"
        lines = ["Nothing was installed in this window."]
    else:
        what = f"{oem.brand_name} install window"
        lines = [
            f"Installs the newest release up to {cycle.release.id} whose changes you have signed off "
            "(what exactly is known nearer the time: see Next install in the portal)."
        ]
    return _install_event(oem, cycle, start, end, what, lines, say)


def _freezes(
    oem: Oem, train: ReleaseCalendar, first: pendulum.DateTime, last: pendulum.DateTime, say: Callable[[str], str]
) -> Iterable[CalendarEvent]:
    for freeze in train.config.freeze_windows:
        start, end = train.freeze_span(freeze)
        if end <= first or start >= last:
            continue
        shown = f"{local_time(start, oem.timezone)} to {local_time(end, oem.timezone)}"
        yield CalendarEvent(
            uid=event_uid(oem.id, FREEZE, f"{freeze.name}/{freeze.start.year}"),
            kind=FREEZE,
            start=start.in_timezone("UTC"),
            end=end.in_timezone("UTC"),
            summary=say(f"{freeze.name}: no installs"),
            description=say(f"Nothing is installed or deployed from {shown}."),
        )


# -- revisions: SEQUENCE and DTSTAMP ------------------------------------------------------------
def revise(
    events: Iterable[CalendarEvent], stored: dict[str, EventRevision], timezone: str, now: dt.datetime
) -> tuple[dict[str, EventRevision], list[EventRevision]]:
    """Each event's revision, and those that are new or changed (to store). An event
    seen for the first time is SEQUENCE 0; one whose content hash differs from the stored
    one gets the stored SEQUENCE + 1; its DTSTAMP is when its content last changed, so
    fetching the feed again changes nothing an app compares."""
    now = pendulum.instance(now).in_timezone("UTC")
    revisions: dict[str, EventRevision] = {}
    changed: list[EventRevision] = []
    for event in events:
        digest = event.content_hash(timezone)
        old = stored.get(event.uid)
        if old is not None and old.content_hash == digest:
            revisions[event.uid] = old
            continue
        revision = EventRevision(event.uid, digest, 0 if old is None else old.sequence + 1, now)
        revisions[event.uid] = revision
        changed.append(revision)
    return revisions, changed


def feed(
    repo: ReleaseRepository,
    train: ReleaseCalendar,
    oem: Oem,
    now: dt.datetime,
    *,
    say: Callable[[str], str] = str,
) -> bytes:
    """The OEM's calendar as iCalendar text, its revisions recorded."""
    events = install_events(repo, train, oem, now, say=say)
    revisions, changed = revise(events, repo.calendar_revisions(oem.id), oem.timezone, now)
    repo.save_calendar_revisions(oem.id, changed)
    return to_ical(oem, events, revisions, say=say)


def to_ical(
    oem: Oem, events: list[CalendarEvent], revisions: dict[str, EventRevision], *, say: Callable[[str], str] = str
) -> bytes:
    """Serialise with icalendar: times in the OEM's zone (TZID), its VTIMEZONE added."""
    zone = ZoneInfo(oem.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    # no METHOD: without one, an event's DTSTAMP is when it was last revised (RFC 5545
    # 3.8.7.2), which is what ``revise`` keeps it as; with one it would be each fetch's time
    name = say(f"{oem.brand_name} installs")
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", oem.timezone)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", REFRESH)
    for event in events:
        revision = revisions[event.uid]
        item = icalendar.Event()
        item.add("uid", event.uid)
        item.add("sequence", revision.sequence)
        item.add("dtstamp", pendulum.instance(revision.changed_at).in_timezone("UTC"))
        item.add("last-modified", pendulum.instance(revision.changed_at).in_timezone("UTC"))
        item.add("dtstart", _local(event.start, zone))
        if event.end is not None:
            item.add("dtend", _local(event.end, zone))
        item.add("summary", event.summary)
        item.add("description", event.description)
        item.add("categories", [say(CATEGORY[event.kind])])
        # only the install window takes the OEM's time; the rest are markers
        item.add("transp", "OPAQUE" if event.kind == INSTALL else "TRANSPARENT")
        item.add("status", "CONFIRMED")
        cal.add_component(item)
    if events and oem.timezone != "UTC":
        first = min(e.start for e in events).date() - dt.timedelta(days=1)
        last = max(e.end or e.start for e in events).date() + dt.timedelta(days=1)
        cal.add_missing_timezones(first_date=first, last_date=last)
    return cal.to_ical()


def _local(moment: pendulum.DateTime, zone: ZoneInfo) -> dt.datetime:
    """A plain datetime with a zoneinfo zone: what icalendar writes as ``TZID=``."""
    utc = pendulum.instance(moment).in_timezone("UTC")
    return dt.datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, tzinfo=dt.UTC).astimezone(zone)
