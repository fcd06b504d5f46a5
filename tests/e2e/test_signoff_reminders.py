"""signoff_reminders, run for real with dag.test() against the simulator's notification
sink on a pinned clock, on SQLite and PostgreSQL: each reminder and each day's digest is
sent once, whatever reruns."""

from __future__ import annotations

import pendulum
import pytest
import time_machine

from release_pipeline.models import Change, ChangeType, Decision, ReleaseStatus
from release_pipeline.release_calendar import load_calendar

pytestmark = pytest.mark.e2e

DAG_ID = "signoff_reminders"
INSTALLED, TARGET = "2026.22", "2026.24"  # cycle 2026.23-2026.24 installs Thu 3 December 2026 10:00 CET
# deadlines (window opening minus 2 days): nimbus Tue 1 Dec 10:00 Berlin (09:00 UTC), reminders
# 26, 29, 30 Nov 09:00 UTC; kestrel (Sat/Sun 01:00 Sydney) Thu 3 Dec 01:00 Sydney (2 Dec 14:00
# UTC), reminders 27 Nov, 30 Nov, 1 Dec 14:00 UTC; orbitel approves everything.
CHANGES = ("CHG-1", "CHG-2")


@pytest.fixture
def waiting(pipeline):
    repo, train = pipeline.repo, load_calendar()
    repo.record_baseline_release(train.release_by_id(INSTALLED), actor="test", reason="instances start here")
    release = train.release_by_id(TARGET)
    changes = [
        Change(c, ChangeType.FEATURE, "studio", f"Faster AVA Studio ({c})", "", False, release.at.subtract(days=2))
        for c in CHANGES
    ]
    repo.record_release(
        release, changes, changes_since=train.previous(release).at, changes_until=release.at, actor="test"
    )
    repo.set_release_status(TARGET, ReleaseStatus.DEPLOYED, actor="test")
    repo.request_approvals(TARGET, ["kestrel", "nimbus", "orbitel"])
    for oem in ("kestrel", "nimbus", "orbitel", "tundra"):
        repo.set_installed_version(oem, INSTALLED)
    decide(repo, "orbitel", *CHANGES)
    decide(repo, "kestrel", "CHG-1")
    return pipeline


def decide(repo, oem: str, *changes: str) -> None:
    for change in changes:
        repo.record_decision(
            oem_id=oem, change_id=change, decision=Decision.APPROVED, actor="oem.user", channel="portal"
        )


def run_at(pipeline, moment):
    with time_machine.travel(moment, tick=True):
        run = pipeline.run(DAG_ID, logical_date=moment)
    assert run.state == "success", pipeline.task_states(run)
    return run


def sent(sim, channel: str, kind: str) -> list[dict]:
    return [n["message"] for n in sim.notifications(channel) if n["message"]["kind"] == kind]


def test_reminders_count_down_to_the_deadline_and_the_digest_goes_daily_each_once(waiting):
    sim = waiting.sim
    first = pendulum.datetime(2026, 11, 26, 12, tz="UTC")
    run_at(waiting, first)
    (nimbus,) = sent(sim, "nimbus", "signoff_reminder")
    assert (nimbus["cycle"], nimbus["days_before"]) == ("2026.23-2026.24", 5)
    assert (
        nimbus["subject"]
        == "Reminder: 2 change(s) need your sign-off by Tuesday 01 December 2026 10:00 (Europe/Berlin)"
    )
    for change in CHANGES:  # what is missing, and from whom, white-labelled
        assert (
            f"- Faster Nimbus Studio \\({change}\\) ({change}, release {TARGET}): from Nimbus Systems GmbH"
            in (nimbus["markdown"])
        )
    assert "on Thursday 03 December 2026 10:00 (Europe/Berlin)" in nimbus["markdown"]
    assert "AVA" not in nimbus["subject"] + nimbus["markdown"] + nimbus["html"]
    assert sent(sim, "kestrel", "signoff_reminder") == []  # its first reminder is on 27 November
    assert sent(sim, "orbitel", "signoff_reminder") == []  # nothing pending
    (digest,) = sent(sim, "ava_release_managers", "signoff_digest")
    assert digest["subject"] == "Sign-off digest 2026-11-26: 1 OEM(s) in, 2 out of their next install"
    assert "- **orbitel**: IN, installs 2026.24 at 2026-12-03T22:00:00-05:00" in digest["markdown"]
    assert "- **nimbus**: OUT of 2026-12-03T10:00:00+01:00" in digest["markdown"]
    assert "owed: CHG-2 \\(2026.24, pending\\) from Kestrel Software Pty Ltd" in digest["markdown"]

    run_at(waiting, first)  # a rerun of the same hour, and the next hour: nothing twice
    run_at(waiting, first.add(hours=1))
    assert len(sent(sim, "nimbus", "signoff_reminder")) == 1
    assert len(sent(sim, "ava_release_managers", "signoff_digest")) == 1

    run_at(waiting, pendulum.datetime(2026, 11, 29, 10, tz="UTC"))
    assert [m["days_before"] for m in sent(sim, "nimbus", "signoff_reminder")] == [5, 2]
    (kestrel,) = sent(sim, "kestrel", "signoff_reminder")  # 27 Nov's, sent late once, not twice
    assert kestrel["days_before"] == 5
    assert "Thursday 03 December 2026 01:00 (Australia/Sydney)" in kestrel["subject"]
    assert "CHG-2" in kestrel["markdown"] and "(CHG-1," not in kestrel["markdown"]  # only what is missing
    assert "AVA" not in kestrel["subject"] + kestrel["markdown"] + kestrel["html"]

    decide(waiting.repo, "nimbus", *CHANGES)  # nimbus signs off: no more reminders, and it is in
    run_at(waiting, pendulum.datetime(2026, 11, 30, 15, tz="UTC"))
    assert len(sent(sim, "nimbus", "signoff_reminder")) == 2
    assert [m["days_before"] for m in sent(sim, "kestrel", "signoff_reminder")] == [5, 2]
    digests = sent(sim, "ava_release_managers", "signoff_digest")
    assert [d["day"] for d in digests] == ["2026-11-26", "2026-11-29", "2026-11-30"]
    assert "- **nimbus**: IN, installs 2026.24" in digests[-1]["markdown"]
    assert sim.notifications("tundra") == []  # disabled
