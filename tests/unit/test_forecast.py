"""The forecast of the next install, on both release databases (the simulated year checks
it against what the deliveries then do)."""

import json

import pendulum
import pytest
import time_machine

from release_pipeline.forecast import forecast
from release_pipeline.models import Decision, DeliveryStatus, ReleaseStatus
from release_pipeline.signoff import decide
from tests.builders import BEFORE_INSTALL_DAY, cut, make_oem


@pytest.fixture
def production(repo, calendar):
    """2026.20 runs; 2026.22 (CHG-1) and 2026.24 (CHG-2, CHG-3) reached production."""
    for release_id, changes in (("2026.20", ()), ("2026.22", ("CHG-1",)), ("2026.24", ("CHG-2", "CHG-3"))):
        cut(repo, calendar, release_id, *changes)
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
        repo.request_approvals(release_id, ["acme"])
    repo.set_installed_version("acme", "2026.20")
    return repo


def approve(repo, release_id, *changes, decision=Decision.APPROVED, comment=None):
    decide(
        repo,
        oem_id="acme",
        release_id=release_id,
        decision=decision,
        change_ids=list(changes) or None,
        actor="Ann (Acme QA)",
        channel="portal",
        comment=comment,
    )


def test_everything_approved_installs_the_cycles_release_at_the_window_opening(production, calendar):
    approve(production, "2026.22")
    approve(production, "2026.24")
    ahead = forecast(production, calendar, make_oem(), BEFORE_INSTALL_DAY)
    assert (ahead.cycle_key, ahead.running, ahead.aims_at, ahead.installs) == (
        "2026.23-2026.24",
        "2026.20",
        "2026.24",
        "2026.24",
    )
    assert ahead.install_at == pendulum.datetime(2026, 12, 3, 10, tz="Europe/Amsterdam")
    assert ahead.owed == () and ahead.conflicts == ()
    assert ahead.outcome == (
        "installs 2026.24 on Thursday 03 December 2026 10:00 (Europe/Berlin): every change is approved"
    )
    shown = ahead.as_json()
    assert shown["install_at"] == "2026-12-03T10:00:00+01:00"
    assert shown["sign_off_deadline"]["due"] == "2026-12-01T10:00:00+01:00"


def test_pending_and_rejected_changes_are_named_with_who_owes_them(production, calendar):
    approve(production, "2026.22")
    approve(production, "2026.24", "CHG-2", decision=Decision.REJECTED, comment="breaks our SSO")
    ahead = forecast(production, calendar, make_oem(), BEFORE_INSTALL_DAY)
    assert ahead.installs == "2026.22"  # what is approved in full, up to the blocking release
    assert [o.as_json() for o in ahead.owed] == [
        {"release": "2026.24", "change": "CHG-3", "state": "pending", "from": ["Acme Ltd"]},
        {"release": "2026.24", "change": "CHG-2", "state": "rejected", "from": ["Acme Ltd"]},
    ]
    assert [o.change_id for o in ahead.pending] == ["CHG-3"]
    assert ahead.outcome.startswith("installs 2026.22 on Thursday 03 December 2026 10:00 (Europe/Berlin); 2026.24")
    assert "sign-off due Tuesday 01 December 2026 10:00 (Europe/Berlin)" in ahead.outcome


def test_nothing_approved_stays_and_says_so(production, calendar):
    ahead = forecast(production, calendar, make_oem(install_when_approved=True), BEFORE_INSTALL_DAY)
    assert ahead.installs is None
    assert [o.change_id for o in ahead.owed] == ["CHG-1", "CHG-2", "CHG-3"]
    assert ahead.outcome.startswith("nothing installable yet: CHG-1 (release 2026.22) not signed off")
    assert ahead.outcome.endswith("the instance stays on 2026.20 (or as soon as it is, within the cycle)")


def test_a_freeze_on_install_day_is_a_conflict_and_nothing_is_installed(repo, calendar):
    cut(repo, calendar, "2026.20")
    cut(repo, calendar, "2026.26")  # installs Thu 31 December: inside the year-end freeze
    repo.set_release_status("2026.26", ReleaseStatus.DEPLOYED, actor="test")
    repo.set_installed_version("acme", "2026.20")
    ahead = forecast(repo, calendar, make_oem(), pendulum.datetime(2026, 12, 28, tz="UTC"))
    assert (ahead.aims_at, ahead.installs) == ("2026.26", None)
    assert ahead.conflicts == (
        "install day falls in the Year-end freeze (2026-12-21 to 2027-01-04): nothing is installed",
    )
    assert "falls in the Year-end freeze: the upgrade waits for the next cycle" in ahead.outcome


def test_no_window_on_install_day_is_a_conflict(production, calendar):
    approve(production, "2026.22")
    approve(production, "2026.24")
    oem = make_oem(timezone="America/New_York", maintenance_window={"days": ["sat"], "start": "22:00", "end": "04:00"})
    ahead = forecast(production, calendar, oem, BEFORE_INSTALL_DAY)
    assert ahead.installs == "2026.24"
    assert ahead.install_at == pendulum.datetime(2026, 12, 5, 22, tz="America/New_York")
    assert ahead.conflicts == (
        "no maintenance window on install day (Thursday 03 December 2026): the install waits for the next one, "
        "Saturday 05 December 2026 22:00 (America/New_York)",
    )


def test_nothing_newer_in_production(repo, calendar):
    cut(repo, calendar, "2026.24")
    repo.set_installed_version("acme", "2026.24")
    ahead = forecast(repo, calendar, make_oem(), BEFORE_INSTALL_DAY)
    assert (ahead.aims_at, ahead.installs, ahead.owed) == (None, None, ())
    assert ahead.outcome.startswith("nothing newer than 2026.24 has reached production")


def test_after_the_cycles_delivery_the_forecast_looks_at_the_next_cycle(production, calendar):
    approve(production, "2026.22")
    approve(production, "2026.24")
    after = pendulum.datetime(2026, 12, 4, tz="UTC")
    assert forecast(production, calendar, make_oem(), after).cycle_key == "2026.23-2026.24"  # still waiting
    production.upsert_delivery("acme", "2026.24", status=DeliveryStatus.INSTALLED, cycle_key="2026.23-2026.24")
    production.set_installed_version("acme", "2026.24")
    ahead = forecast(production, calendar, make_oem(), after)
    assert (ahead.cycle_key, ahead.running, ahead.aims_at) == ("2026.25-2026.26", "2026.24", None)


def test_cli_forecast_as_json_and_text(cli, repo, calendar):
    with time_machine.travel(BEFORE_INSTALL_DAY, tick=False):
        cut(repo, calendar, "2026.20")
        cut(repo, calendar, "2026.24", "CHG-1")
        for release_id in ("2026.20", "2026.24"):
            repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
        repo.request_approvals("2026.24", ["nimbus", "orbitel"])
        repo.set_installed_version("nimbus", "2026.20")
        repo.set_installed_version("orbitel", "2026.20")
        cli("approve", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob")
        code, out, _ = cli("forecast", "--json")
        assert code == 0
        answers = {a["oem"]: a for a in json.loads(out)}
        assert sorted(answers) == ["kestrel", "nimbus", "orbitel"]
        assert answers["orbitel"]["installs"] == "2026.24"
        assert answers["orbitel"]["install_at"] == "2026-12-03T22:00:00-05:00"
        assert answers["nimbus"]["installs"] is None
        assert answers["nimbus"]["owed"] == [
            {"release": "2026.24", "change": "CHG-1", "state": "pending", "from": ["Nimbus Systems GmbH"]}
        ]
        code, out, _ = cli("forecast", "--oem", "nimbus")
        assert code == 0
        assert "  owed: CHG-1 (2026.24, pending) from Nimbus Systems GmbH" in out
        assert "  sign-off due: Tuesday 01 December 2026 10:00 (Europe/Berlin)" in out
        code, _, err = cli("forecast", "--oem", "acme")
        assert code == 2 and "no such OEM" in err
