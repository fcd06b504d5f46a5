"""``release-train rollback`` and ``release-train regression``, on both release databases:
staff list, approve and refuse rollback requests with a reason; a decided request is a
clear error (exit 2) and nothing more is written."""

from __future__ import annotations

import json

import pendulum
import pytest
import time_machine

from release_pipeline import rollbacks
from release_pipeline.models import DeliveryStatus
from tests.builders import cut

AT = pendulum.datetime(2026, 12, 4, 9, tz="UTC")


@pytest.fixture
def requested(repo, calendar) -> int:
    """nimbus was upgraded from 2026.22 to 2026.24, reported a regression and asked to go back."""
    cut(repo, calendar, "2026.22")
    cut(repo, calendar, "2026.24", "CHG-1")
    repo.upsert_delivery("nimbus", "2026.24", status=DeliveryStatus.INSTALLED, from_release_id="2026.22")
    repo.set_installed_version("nimbus", "2026.24")
    found = rollbacks.report(
        repo, oem_id="nimbus", release_id="2026.24", description="Exports\ntime out", actor="ann", channel="api", at=AT
    )
    asked = rollbacks.request_rollback(
        repo,
        oem_id="nimbus",
        release_id="2026.24",
        reason="exports time out",
        actor="ann@nimbus",
        channel="portal",
        regression_id=found.id,
        at=AT,
    )
    return asked.id


def test_staff_list_and_approve_a_rollback_with_a_reason(cli, repo, requested):
    code, out, _ = cli("rollback", "list")
    assert code == 0
    assert f"{requested}   nimbus  2026.24  2026.22  requested" in out and "2026-12-04 09:00 by ann@nimbus" in out

    with time_machine.travel(AT.add(hours=2), tick=False):
        code, out, err = cli("rollback", "approve", str(requested), "--reason", "confirmed", "--by", "rita")
    assert (code, err) == (0, "")
    assert out.startswith(f"rollback request #{requested} of OEM nimbus (2026.24 -> 2026.22) approved by rita;")
    row = repo.rollback_request(requested)
    assert (row.status, row.decided_by, row.decision_reason, row.decided_at) == (
        "approved",
        "rita",
        "confirmed",
        AT.add(hours=2),
    )

    code, out, _ = cli("rollback", "list", "--json", "--status", "approved")
    [listed] = json.loads(out)
    assert (listed["id"], listed["status"], listed["decided_by"], listed["regression"]) == (
        requested,
        "approved",
        "rita",
        1,
    )
    code, out, _ = cli("rollback", "show", str(requested))
    assert code == 0 and "requested  ann@nimbus  exports time out" in out and "approved   rita        confirmed" in out


def test_a_decided_request_is_a_clear_error_and_nothing_is_written(cli, repo, requested):
    assert cli("rollback", "refuse", str(requested), "--reason", "a fix ships Monday", "--by", "rita")[0] == 0
    code, out, err = cli("rollback", "approve", str(requested), "--reason", "changed my mind", "--by", "sam")
    assert code == 2 and out == ""
    assert err == f"error: rollback request #{requested} is already refused by rita: cannot be approved\n"
    assert [e.status for e in repo.rollback_history(requested)] == ["requested", "refused"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["approve", "{id}", "--reason", " ", "--by", "rita"], "--reason: a value is required"),
        (["refuse", "{id}", "--reason", "no", "--by", " "], "--by: a value is required"),
        (["approve", "999", "--reason", "ok", "--by", "rita"], "no rollback request #999"),
        (["list", "--status", "pending"], "unknown status 'pending'"),
    ],
)
def test_bad_input_exits_2_naming_what_is_wrong(cli, repo, requested, argv, message):
    code, _, err = cli("rollback", *[a.format(id=requested) for a in argv])
    assert code == 2 and message in err
    assert repo.rollback_request(requested).status == "requested"


def test_staff_see_the_regression_reports(cli, repo, requested):
    code, out, _ = cli("regression", "list", "--oem", "nimbus")
    assert code == 0 and "2026.24" in out and "Exports time out" in out and "by ann (api)" in out
    code, out, _ = cli("regression", "list", "--json")
    [report] = json.loads(out)
    assert (report["oem"], report["release"], report["description"], report["vendor_alerted_at"]) == (
        "nimbus",
        "2026.24",
        "Exports\ntime out",
        None,
    )
    assert cli("regression", "list", "--oem", "orbitel")[1].strip() == "(none)"
