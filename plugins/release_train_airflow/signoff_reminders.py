"""The ``signoff_reminders`` DAG's work: remind each OEM with pending changes as its
sign-off deadline nears, and give vendor staff their daily sign-off digest.

The decisions are the domain's (``release_pipeline.reminders`` over the forecast); this
module reads the world, renders, and sends through the shared send path (white-label
guard for OEMs, idempotency keys for everyone), so a rerun never sends anything twice.
"""

from __future__ import annotations

import datetime as dt
import logging

import pendulum
from airflow.sdk import task

from release_pipeline.explain import explain
from release_pipeline.forecast import forecast
from release_pipeline.notes import Audience
from release_pipeline.reminders import (
    DIGEST,
    REMINDER,
    digest_key,
    digest_rows,
    reminder_due,
    reminder_key,
    render_digest,
    render_reminder,
)
from release_pipeline.vendor import load_vendor
from release_train_airflow.outbound import send_message
from release_train_airflow.resources import calendar, registry, repository
from release_train_airflow.run_targets import run_moment

log = logging.getLogger(__name__)
DIGEST_HOUR_UTC = 7  # the digest goes out with the first run at or after 07:00 UTC each day
VENDOR_CHANNEL = "ava_notify"


def remind(oem_id: str, moment: dt.datetime) -> str:
    """Send the OEM its reminder if one is due at ``moment``; says what it did."""
    repo, oem = repository(), registry().get(oem_id)
    ahead = forecast(repo, calendar(), oem, moment)
    days = reminder_due(ahead, moment)
    if days is None:
        why = "nothing pending" if not ahead.pending else f"no reminder due (deadline {ahead.deadline.shown()})"
        log.info("OEM %s: %s", oem_id, why)
        return why
    vendor = load_vendor()
    release_ids = sorted({o.release_id for o in ahead.owed})
    changes = {c.id: c for c in repo.changes_of(release_ids)}
    message = render_reminder(ahead, days, changes, Audience.oem(oem, vendor), portal_url=vendor.portal_url)
    key = reminder_key(ahead, days)
    sent = send_message(
        repo,
        oem.connections.notify,
        message.as_message(kind=REMINDER, cycle=ahead.cycle_key, days_before=days),
        key=key,
    )
    said = f"{'sent' if sent else 'sent before'}: {key} ({len(ahead.pending)} pending)"
    log.info("OEM %s: %s", oem_id, said)
    return said


def send_digest(moment: dt.datetime) -> str:
    """Once a day: which OEMs are in or out of their next install day, and why."""
    moment = pendulum.instance(moment).in_timezone("UTC")
    if moment.hour < DIGEST_HOUR_UTC:
        return f"the digest goes out at {DIGEST_HOUR_UTC:02d}:00 UTC"
    repo, train = repository(), calendar()
    rows = digest_rows(explain(repo, train, oem, moment) for oem in registry().enabled)
    message = render_digest(rows, Audience.vendor(load_vendor()), moment.date())
    key = digest_key(moment.date())
    sent = send_message(repo, VENDOR_CHANNEL, message.as_message(kind=DIGEST, day=moment.date().isoformat()), key=key)
    return f"{'sent' if sent else 'sent before'}: {key}"


@task
def remind_oem(oem_id: str) -> str:
    return remind(oem_id, run_moment()[0])


@task
def digest() -> str:
    return send_digest(run_moment()[0])
