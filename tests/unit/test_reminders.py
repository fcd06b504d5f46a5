"""Reminders and the staff digest as the domain decides and renders them (the DAG's
end-to-end test sends them through the simulator)."""

import datetime as dt

import pendulum

from release_pipeline.explain import explain
from release_pipeline.forecast import forecast
from release_pipeline.models import Decision
from release_pipeline.notes import Audience, Guard
from release_pipeline.registry import load_registry
from release_pipeline.reminders import digest_rows, reminder_due, reminder_key, render_digest, render_reminder
from release_pipeline.signoff_policy import SignoffPolicy
from release_pipeline.vendor import load_vendor
from tests.builders import BEFORE_INSTALL_DAY, cut

REGISTRY, VENDOR = load_registry(), load_vendor()
NIMBUS = REGISTRY.get("nimbus")


def nimbus_waits(repo, calendar):
    """2026.20 runs on nimbus; 2026.24 (CHG-1, CHG-2) is in production, CHG-1 rejected."""
    cut(repo, calendar, "2026.20")
    cut(repo, calendar, "2026.24", "CHG-1", "CHG-2")
    for release_id in ("2026.20", "2026.24"):
        repo.set_release_status(release_id, "deployed", actor="test")
    repo.request_approvals("2026.24", ["nimbus"])
    repo.set_installed_version("nimbus", "2026.20")
    repo.record_decision(
        oem_id="nimbus",
        change_id="CHG-1",
        decision=Decision.REJECTED,
        actor="Nina",
        channel="portal",
        comment="AVA Studio hangs",
    )


def test_a_reminder_is_due_only_with_pending_changes_between_its_moment_and_the_deadline(repo, calendar):
    nimbus_waits(repo, calendar)  # due Tue 1 Dec 10:00 Berlin: reminders 26, 29, 30 Nov 10:00
    at = pendulum.datetime(2026, 11, 29, 12, tz="Europe/Berlin")
    ahead = forecast(repo, calendar, NIMBUS, at)
    assert reminder_due(ahead, at) == 2
    assert reminder_key(ahead, 2) == "signoff_reminder:2026.23-2026.24:nimbus:2d"
    assert reminder_due(ahead, pendulum.datetime(2026, 11, 25, tz="UTC")) is None
    assert reminder_due(ahead, pendulum.datetime(2026, 12, 1, 10, tz="Europe/Berlin")) is None  # too late
    repo.record_decision(oem_id="nimbus", change_id="CHG-2", decision="approved", actor="Nina", channel="portal")
    assert reminder_due(forecast(repo, calendar, NIMBUS, at), at) is None  # nothing pending (one rejected)


def test_the_reminder_names_what_is_missing_from_whom_white_labelled_in_the_oems_time(repo, calendar):
    nimbus_waits(repo, calendar)
    ahead = forecast(repo, calendar, NIMBUS, BEFORE_INSTALL_DAY)
    changes = {c.id: c for c in repo.changes_of(["2026.24"])}
    message = render_reminder(ahead, 2, changes, Audience.oem(NIMBUS, VENDOR), portal_url=VENDOR.portal_url)
    assert (
        message.subject == "Reminder: 1 change(s) need your sign-off by Tuesday 01 December 2026 10:00 (Europe/Berlin)"
    )
    pending, rejected = message.markdown.split("## Rejected, so not installed until approved")
    assert "(CHG-2, release 2026.24): from Nimbus Systems GmbH" in pending and "CHG-1" not in pending
    assert "(CHG-1, release 2026.24): from Nimbus Systems GmbH" in rejected
    assert "Nimbus Studio hangs" in message.markdown  # the rejection's comment, white-labelled
    assert "upgraded\non Thursday 03 December 2026 10:00 (Europe/Berlin)" in message.markdown
    assert Guard.for_oem(NIMBUS, REGISTRY, VENDOR).scan_value(message.as_message()) == []


def test_under_a_two_of_two_policy_the_reminder_names_the_missing_approver(repo, calendar):
    """nimbus signs off by Olga and Pat: Olga approved CHG-2, so it is Pat's approval that
    is owed; CHG-1 is owed by Olga, who rejected it (one rejection blocks it)."""
    nimbus = NIMBUS.model_copy(
        update={
            "signoff_policy": SignoffPolicy.model_validate(
                {
                    "approvers": [{"name": "Olga Berg", "role": "qa"}, {"name": "Pat Kim", "role": "product"}],
                    "quorum": 2,
                }
            )
        }
    )
    nimbus_waits(repo, calendar)
    for change_id, decision, comment in (("CHG-1", "rejected", "AVA Studio hangs"), ("CHG-2", "approved", None)):
        repo.record_decision(
            oem_id="nimbus", change_id=change_id, decision=decision, actor="olga@nimbus", channel="portal",
            comment=comment, approver="Olga Berg", approver_role="qa",
        )  # fmt: skip
    ahead = forecast(repo, calendar, nimbus, BEFORE_INSTALL_DAY)
    assert [(o.change_id, o.state, o.approvers) for o in ahead.owed] == [
        ("CHG-2", "pending", ("Pat Kim",)),
        ("CHG-1", "rejected", ("Olga Berg",)),
    ]
    changes = {c.id: c for c in repo.changes_of(["2026.24"])}
    message = render_reminder(ahead, 2, changes, Audience.oem(nimbus, VENDOR), portal_url=VENDOR.portal_url)
    pending, rejected = message.markdown.split("## Rejected, so not installed until approved")
    assert "(CHG-2, release 2026.24): from Pat Kim" in pending and "Olga" not in pending
    assert "(CHG-1, release 2026.24): from Olga Berg" in rejected
    answer = explain(repo, calendar, nimbus, BEFORE_INSTALL_DAY)
    assert answer["releases"][-1]["waiting_for"] == [{"change": "CHG-2", "for": "1 more approval of Pat Kim (product)"}]


def test_the_digest_puts_the_oems_out_first_and_says_why(repo, calendar):
    nimbus_waits(repo, calendar)
    repo.set_installed_version("orbitel", "2026.20")
    repo.request_approvals("2026.24", ["orbitel"])
    for change in ("CHG-1", "CHG-2"):
        repo.record_decision(oem_id="orbitel", change_id=change, decision="approved", actor="o", channel="portal")
    oems = [REGISTRY.get("orbitel"), NIMBUS]
    rows = digest_rows(explain(repo, calendar, oem, BEFORE_INSTALL_DAY) for oem in oems)
    assert [(r["oem_id"], r["in"], r["installs"]) for r in rows] == [
        ("nimbus", False, None),
        ("orbitel", True, "2026.24"),
    ]
    assert rows[0]["why"].startswith("nothing installable yet: CHG-1 (release 2026.24) rejected by Nina")
    digest = render_digest(rows, Audience.vendor(VENDOR), dt.date(2026, 11, 28))
    assert digest.subject == "Sign-off digest 2026-11-28: 1 OEM(s) in, 1 out of their next install"
    assert "as of Saturday 28 November 2026" in digest.markdown
    assert "owed: CHG-2 \\(2026.24, pending\\) from Nimbus Systems GmbH" in digest.markdown
    assert "<td>orbitel</td><td>IN: 2026.24 at 2026-12-03T22:00:00-05:00</td>" in digest.html
