"""``release-train trace``: a change's path through the ledger (the carry rule as a property
over random status histories, the instance rule over random install histories) and the
command itself on SQLite and PostgreSQL."""

import json
import shutil

import pendulum
import pytest
import time_machine
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.models import Decision, DeliveryStatus, ReleaseStatus
from release_pipeline.trace import Install, carry_path, running_since
from tests.builders import TWO_OF_TWO, cut, with_policy
from tests.conftest import REPO

STATUSES = [str(s) for s in ReleaseStatus]
DEPLOYED = str(ReleaseStatus.DEPLOYED)

# release ids across a year boundary: 2026.25 < 2026.26 < 2027.01 as strings and as versions
release_ids = st.builds(lambda year, n: f"{year}.{n:02d}", st.sampled_from([2026, 2027]), st.integers(1, 26))
histories = st.dictionaries(release_ids, st.sampled_from(STATUSES), min_size=1, max_size=12)


@given(histories, st.data())
def test_a_change_is_carried_until_the_first_deployed_release_at_or_after_its_own(statuses, data):
    own = data.draw(st.sampled_from(sorted(statuses)))
    path = carry_path(own, statuses)
    after = sorted(r for r in statuses if r > own)
    deployed = [r for r in sorted(statuses) if r >= own and statuses[r] == DEPLOYED]
    assert path.release_id == own
    assert path.carrier == (deployed[0] if deployed else None)
    if path.carrier is None:  # carried into every later release, shipped by none yet
        assert path.carried_into == tuple(after)
    else:  # carried into each later release up to and including the carrier, none beyond
        assert path.carried_into == tuple(r for r in after if r <= path.carrier)
        assert statuses[path.carrier] == DEPLOYED
        assert all(statuses[r] != DEPLOYED for r in path.releases[:-1])
    assert all(r > own for r in path.carried_into)  # never an earlier release
    assert path.releases[0] == own and list(path.releases) == sorted(path.releases)


@given(histories, st.data())
def test_later_releases_never_change_a_shipped_changes_path(statuses, data):
    own = data.draw(st.sampled_from(sorted(statuses)))
    path = carry_path(own, statuses)
    later = data.draw(st.dictionaries(st.sampled_from(["2028.01", "2028.02"]), st.sampled_from(STATUSES)))
    grown = carry_path(own, {**statuses, **later})
    if path.carrier is not None:
        assert grown == path
    else:  # still unshipped: the new releases are where it goes next
        assert grown.carried_into[: len(path.carried_into)] == path.carried_into


def test_an_unknown_release_is_refused_by_name():
    with pytest.raises(ValueError, match="release '2026.30' is not among the recorded releases"):
        carry_path("2026.30", {"2026.24": DEPLOYED})


START = pendulum.datetime(2026, 11, 1, tz="UTC")
installs = st.lists(
    st.builds(lambda r, h: Install(r, START.add(hours=h)), st.sampled_from(["2026.22", "2026.24", "2026.26"]),
              st.integers(0, 1000)),
    max_size=6,
)  # fmt: skip


@given(st.sampled_from([None, "2026.22", "2026.24", "2026.26"]), installs, st.booleans())
def test_an_instance_runs_a_change_from_the_start_of_its_last_unbroken_run_at_or_after_the_carrier(
    carrier, done, recorded
):
    ordered = sorted(done, key=lambda i: (i.at, i.release_id))
    # what the instance runs now: its last install, a version recorded by hand, or unknown
    current = (ordered[-1] if ordered else Install("2026.24", START)) if recorded else None
    since = running_since(carrier, done, current)
    assert (since is not None) == (carrier is not None and current is not None and current.release_id >= carrier)
    if since is None:
        return
    assert since.release_id >= carrier
    if ordered:  # the first install of the final run of installs at or after the carrier
        k = ordered.index(since)
        assert all(i.release_id >= carrier for i in ordered[k:])
        assert k == 0 or ordered[k - 1].release_id < carrier
    else:
        assert since == current


def test_a_version_recorded_by_hand_runs_it_from_its_own_time():
    baseline = Install("2026.24", START)
    assert running_since("2026.22", [], baseline) == baseline
    assert running_since("2026.26", [], baseline) is None


# -- the command, on a history: 2026.23 rejected in QA, 2026.24's deploy failed, 2026.25 shipped
T = pendulum.datetime(2026, 12, 10, 9, 30, 15, 123456, tz="UTC")  # microseconds never shown


RECORDED = pendulum.datetime(2026, 12, 4, 8, 15, 42, 987654, tz="UTC")  # when the pipeline recorded it all


@pytest.fixture
def history(repo, calendar):
    with time_machine.travel(RECORDED, tick=False):
        return _history(repo, calendar)


def _history(repo, calendar):
    cut(repo, calendar, "2026.22")
    repo.set_release_status("2026.22", ReleaseStatus.DEPLOYED, actor="deploy-bot")
    cut(repo, calendar, "2026.23", "CHG-7")
    repo.set_release_status("2026.23", ReleaseStatus.QA_REJECTED, actor="qa-lead", reason="login broken")
    cut(repo, calendar, "2026.24", "CHG-8")
    repo.set_release_status("2026.24", ReleaseStatus.QA_APPROVED, actor="qa-lead")
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOY_FAILED, actor="deploy-bot", reason="timeout")
    cut(repo, calendar, "2026.25", "CHG-9")
    repo.set_release_status("2026.25", ReleaseStatus.QA_APPROVED, actor="qa-lead")
    repo.set_release_status("2026.25", ReleaseStatus.DEPLOYED, actor="deploy-bot")
    cut(repo, calendar, "2026.26", "CHG-10")  # cut after the carrier: not on CHG-7's path
    repo.update_change_text("CHG-8", actor="ann", title="Another change's title fixed")
    repo.request_approvals("2026.23", ["nimbus", "orbitel"])
    repo.record_decision(oem_id="nimbus", change_id="CHG-7", decision=Decision.REJECTED, actor="Nina",
                         channel="portal", comment="needs docs")  # fmt: skip
    repo.record_decision(oem_id="nimbus", change_id="CHG-7", decision=Decision.APPROVED, actor="Nina",
                         channel="cli", recorded_by="ann")  # fmt: skip
    for oem in ("nimbus", "orbitel", "kestrel"):
        repo.set_installed_version(oem, "2026.22", at=START)
    repo.set_installed_version("nimbus", "2026.25", at=T)
    repo.upsert_delivery("nimbus", "2026.25", status=DeliveryStatus.INSTALLED, finished_at=T)
    repo.upsert_delivery("kestrel", "2026.25", status=DeliveryStatus.ROLLED_BACK, finished_at=T)
    return repo


def test_trace_shows_the_path_the_decisions_and_who_runs_it(history, cli):
    code, out, err = cli("trace", "CHG-7")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "CHG-7: Title of CHG-7 (feature, connectors)"
    assert "  merged 2026-11-20 12:00, cut into 2026.23" in lines
    assert "  carried into 2026.24, 2026.25" in lines
    assert "  in production: with 2026.25 at 2026-12-04 08:15" in lines
    assert "release 2026.23 (qa_rejected)" in lines and "release 2026.26 (cut)" not in lines
    assert "  2026-12-04 08:15  qa_rejected by qa-lead: login broken" in lines
    assert any(line.endswith("deploy_failed by deploy-bot: timeout") for line in lines)
    assert "change_edited" not in out  # CHG-8's title is no part of CHG-7's path
    assert any(line.endswith("rejected by Nina via portal: needs docs [superseded]") for line in lines)
    assert any(line.endswith("approved by Nina, recorded by ann via cli") for line in lines)
    assert "  installed with 2026.25 at 2026-12-10 09:30" in lines
    assert "nimbus: asked 2026-12-04 08:15 (release 2026.23); approved" in lines
    assert ".123456" not in out and "T09:30" not in out and ":42" not in out
    assert lines[-4:] == [
        "does each OEM have CHG-7? (times in UTC)",
        "  kestrel: in production, not asked yet; runs 2026.22",  # its install was rolled back
        "  nimbus: running since 2026-12-10 09:30 (installed with 2026.25)",
        "  orbitel: asked, not approved; runs 2026.22",
    ]


def test_trace_json_says_the_same(history, cli):
    code, out, _ = cli("trace", "CHG-7", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["path"] == {"cut_into": "2026.23", "carried_into": ["2026.24", "2026.25"], "carrier": "2026.25"}
    assert [r["status"] for r in answer["releases"]] == ["qa_rejected", "deploy_failed", "deployed"]
    assert [e["event"] for e in answer["releases"][1]["events"]] == ["cut", "qa_approved", "deploy_failed"]
    kestrel, nimbus, orbitel = answer["oems"]
    assert nimbus["asked"]["release"] == "2026.23" and nimbus["state"] == "approved"
    assert [(d["decision"], d["counts"]) for d in nimbus["decisions"]] == [("rejected", False), ("approved", True)]
    assert nimbus["running_since"] == {"release": "2026.25", "at": "2026-12-10 09:30"}
    assert (orbitel["state"], orbitel["decisions"], orbitel["running_since"]) == ("pending", [], None)
    assert (kestrel["asked"], kestrel["runs"], kestrel["running_since"]) == (None, "2026.22", None)
    assert [o["answer"] for o in answer["oems"]] == [
        "in production, not asked yet; runs 2026.22",
        "running since 2026-12-10 09:30 (installed with 2026.25)",
        "asked, not approved; runs 2026.22",
    ]


def test_a_change_not_yet_in_production_says_so_for_every_oem(history, cli):
    code, out, _ = cli("trace", "CHG-10")
    assert code == 0
    assert "  in production: not yet" in out
    assert "  kestrel: not asked; not in production yet; runs 2026.22" in out.splitlines()


def test_each_approvers_latest_counts_under_a_named_policy(history, cli, tmp_path):
    shutil.copytree(REPO / "config", tmp_path, dirs_exist_ok=True)
    with_policy(tmp_path, "orbitel", TWO_OF_TWO)
    history.record_decision(oem_id="orbitel", change_id="CHG-7", decision=Decision.APPROVED, actor="olga@orbitel",
                            channel="portal", approver="Olga Berg", approver_role="qa")  # fmt: skip
    code, out, _ = cli("--config-dir", str(tmp_path), "trace", "CHG-7")
    assert code == 0
    assert "approved by Olga Berg (qa) via portal" in out
    assert "  orbitel: asked, not approved (waits for 1 more approval of Pat Kim (product)); runs 2026.22" in out
    history.record_decision(oem_id="orbitel", change_id="CHG-7", decision=Decision.REJECTED, actor="pat@orbitel",
                            channel="portal", approver="Pat Kim", approver_role="product", comment="no")  # fmt: skip
    code, out, _ = cli("--config-dir", str(tmp_path), "trace", "CHG-7")
    assert "  orbitel: asked, rejected by Pat Kim; runs 2026.22" in out


@pytest.mark.parametrize(
    ("change_id", "message"),
    [
        ("CHG-404", "error: no change 'CHG-404' is recorded (changes are recorded when a release is cut)"),
        ("CHG 1", "error: CHANGE_ID: 'CHG 1' is not a change id (no spaces)"),
    ],
)
def test_an_unknown_change_is_an_error_naming_it(history, cli, change_id, message):
    code, out, err = cli("trace", change_id)
    assert (code, out, err.strip()) == (2, "", message)
