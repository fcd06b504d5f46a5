"""production_release, run for real (dag.test()) against the simulator's HTTP server and
the release database on SQLite and PostgreSQL. What the simulator received is
asserted, not just task states."""

from __future__ import annotations

import json
import threading
import time

import pendulum
import pytest
import time_machine

from release_pipeline.deadlines import signoff_deadline
from release_pipeline.models import ReleaseStatus
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import load_calendar
from tests.builders import feed_changes

pytestmark = pytest.mark.e2e

DAG = "production_release"
RELEASE = "2026.24"
ENABLED = ["kestrel", "nimbus", "orbitel"]
BRANDS = {"kestrel": "Kestrel Flow", "nimbus": "Nimbus Connect", "orbitel": "OrbitLink Integrate"}


def deployments(pipeline) -> list[dict]:
    return list(pipeline.sim.state()["deployments"].values())


def run_release(pipeline, **conf):
    # dry_run always given: a dry run's conf leaks into later dag.test() runs of the same DAG object
    return pipeline.run(DAG, conf={"release_id": RELEASE, "dry_run": False, **conf})


def test_a_normal_release_reaches_production_and_every_oem(pipeline, answer_hitl):
    pipeline.sim.add_changes(feed_changes())
    pipeline.sim.production(deploy_seconds=0.5)  # the deploy wait defers at least once
    qa = answer_hitl(DAG, "qa_signoff", "Approve", {"reason": "regression suite green"})
    run = run_release(pipeline)
    assert qa.error is None and qa.answered is not None
    states = pipeline.task_states(run)
    assert run.state == "success", states
    assert {k: v for k, v in states.items() if not k.startswith("notify_oem[")} == {
        "cut_release": "success",
        "steps_left": "success",
        "wait_for_qa": "success",
        "check_qa_verdict": "success",
        "qa_signoff": "success",
        "wait_for_freeze": "success",
        "deploy": "success",
        "wait_for_deploy": "success",
        "verify_production": "success",
        "open_signoff": "success",
        "report_notifications": "success",
        "watcher": "skipped",
    }

    repo = pipeline.repo
    release = repo.release(RELEASE)
    assert release.status == ReleaseStatus.DEPLOYED
    assert [c.id for c in repo.changes_of([RELEASE])] == ["CHG-240", "CHG-241", "CHG-242"]
    events = [(e.event, e.actor) for e in repo.release_events(RELEASE)]
    assert events[:3] == [("cut", "production_release"), ("qa_approved", "admin"), ("deployed", "production_release")]
    assert [d["release_id"] for d in deployments(pipeline)] == [RELEASE]
    assert pipeline.sim.state()["production"]["version"] == RELEASE
    for oem in ENABLED:
        assert len(repo.approval_requests(oem, RELEASE)) == 3
    assert repo.approval_requests("tundra", RELEASE) == []  # disabled OEM

    for oem in ENABLED:
        [message] = [n["message"] for n in pipeline.sim.notifications(oem)]
        assert message["subject"] == f"{BRANDS[oem]} {RELEASE} is ready for your sign-off"
        assert "**BREAKING** Change 0 of 2026.24" in message["markdown"]
        assert "Thursday 3 December 2026" in message["markdown"]  # install date, release + 7 days
        for text in (message["subject"], message["markdown"], message["html"]):
            assert "AVA" not in text
    assert pipeline.sim.notifications("tundra") == []
    assert {r.audience: r.status for r in repo.publications(kind="release_notes")} == dict.fromkeys(ENABLED, "sent")

    # a rerun of the same release duplicates nothing and asks QA nothing
    rerun = run_release(pipeline)
    assert rerun.state == "success", pipeline.task_states(rerun)
    assert len(deployments(pipeline)) == 1
    assert sum(len(pipeline.sim.notifications(oem)) for oem in ENABLED) == 3
    assert sum(len(repo.approval_requests(oem, RELEASE)) for oem in ENABLED) == 9
    assert len(repo.changes_of([RELEASE])) == 3


def test_an_empty_release_stops_with_its_reason(pipeline):
    run = run_release(pipeline)
    states = pipeline.task_states(run)
    assert states["cut_release"] == "skipped"
    assert set(states.values()) == {"skipped"}, states
    release = pipeline.repo.release(RELEASE)
    assert (release.status, release.status_reason) == ("empty", "no changes merged since the previous release")
    assert deployments(pipeline) == [] and pipeline.sim.notifications() == []


def test_a_qa_rejection_blocks_the_release_and_keeps_the_reason(pipeline, answer_hitl):
    pipeline.sim.add_changes(feed_changes())
    answer_hitl(DAG, "qa_signoff", "Reject", {"reason": "login page broken in Safari"})
    run = run_release(pipeline)
    states = pipeline.task_states(run)
    assert states["qa_signoff"] == "success" and states["deploy"] == "skipped", states
    release = pipeline.repo.release(RELEASE)
    assert (release.status, release.status_reason) == ("qa_rejected", "login page broken in Safari")
    assert deployments(pipeline) == []
    [alert] = pipeline.sim.notifications("ava_release_managers")
    assert "rejected in QA sign-off" in alert["message"]["subject"]
    assert "Rejected by admin: login page broken in Safari" in alert["message"]["markdown"]
    assert all(pipeline.sim.notifications(oem) == [] for oem in ENABLED)


def test_a_failed_qa_run_blocks_the_release_without_asking_anyone(pipeline):
    pipeline.sim.add_changes(feed_changes())
    pipeline.sim.set_qa(RELEASE, "failed")
    run = run_release(pipeline)
    states = pipeline.task_states(run)
    assert states["check_qa_verdict"] == "skipped" and states["qa_signoff"] == "skipped", states
    assert pipeline.repo.release(RELEASE).status == "qa_rejected"
    assert deployments(pipeline) == []


@pytest.mark.parametrize("fault", [{"deploy_fails": True}, {"healthy": False}])
def test_a_failed_deploy_or_smoke_check_fails_the_run_loudly(pipeline, answer_hitl, fault):
    pipeline.sim.add_changes(feed_changes())
    pipeline.sim.production(deploy_seconds=0, **fault)
    answer_hitl(DAG, "qa_signoff", "Approve", {"reason": ""})
    run = run_release(pipeline)
    states = pipeline.task_states(run)
    assert run.state == "failed"
    assert states["verify_production"] == "failed" and states["open_signoff"] == "upstream_failed", states
    release = pipeline.repo.release(RELEASE)
    assert release.status == "deploy_failed"
    assert ("deployment ended 'failed'" if "deploy_fails" in fault else "smoke check failed") in release.status_reason
    [alert] = pipeline.sim.notifications("ava_release_managers")
    assert alert["message"]["subject"] == f"Production deploy of {RELEASE} failed"
    assert all(pipeline.sim.notifications(oem) == [] for oem in ENABLED)


def test_a_malformed_feed_answer_records_nothing(pipeline):
    pipeline.sim.set_feed_raw('{"changes": [{"id": "CHG-1", "type": "feature", "component": "x"}]}')
    run = run_release(pipeline)
    assert pipeline.task_states(run)["cut_release"] == "failed"
    assert run.state == "failed"
    assert pipeline.repo.release(RELEASE) is None
    assert pipeline.repo.changes_of([RELEASE]) == []


def test_one_unreachable_oem_does_not_hold_up_the_others(pipeline, answer_hitl):
    pipeline.sim.add_changes(feed_changes())
    pipeline.sim.production(deploy_seconds=0)
    pipeline.sim.channel_down("orbitel")
    answer_hitl(DAG, "qa_signoff", "Approve", {"reason": ""})
    run = run_release(pipeline)
    states = pipeline.task_states(run)
    assert run.state == "failed"
    assert states["report_notifications"] == "failed"
    assert sorted(v for k, v in states.items() if k.startswith("notify_oem[")) == ["failed", "success", "success"]
    assert len(pipeline.sim.notifications("nimbus")) == 1 and len(pipeline.sim.notifications("kestrel")) == 1
    outcome = {r.audience: r.status for r in pipeline.repo.publications(kind="release_notes")}
    assert outcome == {"kestrel": "sent", "nimbus": "sent", "orbitel": "failed"}
    [alert] = pipeline.sim.notifications("ava_release_managers")
    assert "not delivered to 1 OEM(s)" in alert["message"]["subject"]
    assert "orbitel: failed" in alert["message"]["markdown"]
    # the retries really happened: three attempts on the orbitel channel
    attempts = [r for r in pipeline.sim.state()["requests"] if r["path"] == "/notify/orbitel"]
    assert len(attempts) == 3

    # once the channel is back, a rerun reaches orbitel only
    pipeline.sim.channel_down("orbitel", down=False)
    rerun = run_release(pipeline)
    assert rerun.state == "success", pipeline.task_states(rerun)
    assert [len(pipeline.sim.notifications(oem)) for oem in ENABLED] == [1, 1, 1]


def test_a_dry_run_records_deploys_and_sends_nothing(pipeline):
    pipeline.sim.add_changes(feed_changes())
    run = run_release(pipeline, dry_run=True)
    assert set(pipeline.task_states(run).values()) == {"skipped"}
    assert pipeline.repo.release(RELEASE) is None
    assert deployments(pipeline) == [] and pipeline.sim.notifications() == []


def test_a_release_dated_in_a_freeze_goes_to_production_at_the_first_moment_after_it(
    pipeline, answer_hitl, test_calendar
):
    train = test_calendar(freeze_windows=[{"name": "Test freeze", "start": "2026-11-25", "end": "2026-11-27"}])
    release = train.release_by_id(RELEASE)  # Thursday 2026-11-26 10:00 Amsterdam, inside the freeze
    freeze_over = pendulum.datetime(2026, 11, 28, tz="Europe/Amsterdam")
    pipeline.sim.add_changes(feed_changes())
    pipeline.sim.production(deploy_seconds=0)
    during_freeze: dict = {}

    def end_the_freeze(clock) -> None:
        """Once the deploy waits, look at the world, then move the clock past the freeze."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(e.event == "deploy_postponed" for e in pipeline.repo.release_events(RELEASE)):
                break
            time.sleep(0.2)
        time.sleep(2)  # the wait has deferred and its trigger polls the (pinned) clock
        during_freeze["deployments"] = deployments(pipeline)
        during_freeze["status"] = pipeline.repo.release(RELEASE).status
        clock.move_to(freeze_over.add(minutes=5))

    with time_machine.travel(release.at.add(minutes=1), tick=True) as clock:
        watcher = threading.Thread(target=end_the_freeze, args=(clock,), daemon=True)
        watcher.start()
        qa = answer_hitl(DAG, "qa_signoff", "Approve", {"reason": "signed off during the freeze"})
        run = run_release(pipeline)
        watcher.join(5)

    assert qa.error is None and qa.answered is not None
    states = pipeline.task_states(run)
    assert run.state == "success", states
    assert states["wait_for_freeze"] == "success" and states["deploy"] == "success", states
    # nothing went out during the freeze; the QA sign-off stayed valid while it waited
    assert during_freeze == {"deployments": [], "status": ReleaseStatus.QA_APPROVED}
    assert [d["release_id"] for d in deployments(pipeline)] == [RELEASE]

    repo = pipeline.repo
    events = repo.release_events(RELEASE)
    assert [e.event for e in events][:4] == ["cut", "qa_approved", "deploy_postponed", "deployed"]
    postponed = events[2].detail
    assert "'Test freeze' (2026-11-25 to 2026-11-27)" in postponed
    assert "release moment Thu 26 Nov 2026 10:00 CET, deploys at Sat 28 Nov 2026 00:00 CET" in postponed
    deployed = pendulum.instance(events[3].created_at)
    assert freeze_over <= deployed < freeze_over.add(minutes=10)
    assert train.freeze_at(deployed) is None
    [alert] = pipeline.sim.notifications("ava_release_managers")
    assert alert["message"]["subject"] == f"Release {RELEASE} waits for the end of the Test freeze"

    registry = load_registry()
    for oem in ENABLED:  # the sign-off requests give the real date (in the OEM's timezone)
        tz = registry.get(oem).timezone
        released, planned = (m.in_timezone(tz).format("dddd D MMMM YYYY") for m in (deployed, release.at))
        [message] = [n["message"] for n in pipeline.sim.notifications(oem)]
        assert (
            f"Released on {released} (planned for {planned}; held back by a deployment freeze)" in message["markdown"]
        )
        assert f"## {BRANDS[oem]} {RELEASE} ({deployed.in_timezone(tz).format('D MMMM YYYY')})" in message["markdown"]
        assert "Thursday 3 December 2026" in message["markdown"]  # install day stays the cycle's
        due = signoff_deadline(registry.get(oem), train.delivery_cycle_of(release))  # and so does the deadline
        assert f"**Sign-off deadline:** {due.shown()}." in message["markdown"]


def test_the_feed_names_the_roadmap_items_a_change_delivers_and_unknown_ones_record_nothing(pipeline):
    changes = feed_changes()
    changes[1]["roadmap_items"] = ["vault-secrets", "no-such-item", "nor-this"]
    pipeline.sim.add_changes(changes)
    pipeline.sim.set_qa(RELEASE, "failed")  # the run stops after the cut: no QA sign-off to answer
    run = run_release(pipeline)
    assert pipeline.task_states(run)["cut_release"] == "failed"
    assert pipeline.repo.release(RELEASE) is None and pipeline.repo.change_roadmap_links() == []

    changes[1]["roadmap_items"] = ["vault-secrets", "flow-versioning"]
    pipeline.sim.set_feed_raw(json.dumps({"changes": changes[:3]}))
    run = run_release(pipeline)
    assert pipeline.task_states(run)["cut_release"] == "success"
    links = [(r.change_id, r.item_id, r.release_id) for r in pipeline.repo.change_roadmap_links()]
    assert links == [("CHG-241", "flow-versioning", RELEASE), ("CHG-241", "vault-secrets", RELEASE)]


# -- a manual run with no parameters (issue 16) --------------------------------------------------
AFTER_RELEASE = pendulum.datetime(2026, 12, 1, 9, tz="UTC")  # after 2026.24 (26 November), before 2026.25


def test_a_manual_run_without_params_acts_on_the_newest_release_in_production(pipeline):
    """Only 2026.24 is recorded (in production; the releases before it were never cut):
    the run acts on it, repeats neither QA nor the deploy, and asks the OEMs once."""
    from release_pipeline.change_feed import parse_changes

    feed = feed_changes()
    pipeline.sim.add_changes(feed)
    train = load_calendar()
    release = train.release_by_id(RELEASE)
    changes = parse_changes(json.dumps({"changes": feed[:-1]}))  # what the cut took from the feed
    pipeline.repo.record_release(
        release, changes, changes_since=train.previous(release).at, changes_until=release.at, actor="test"
    )
    pipeline.repo.set_release_status(RELEASE, ReleaseStatus.DEPLOYED, actor="test")
    with time_machine.travel(AFTER_RELEASE, tick=True):
        run = pipeline.run(DAG)
    states = pipeline.task_states(run)
    assert run.state == "success", states
    assert states["steps_left"] == "success" and states["open_signoff"] == "success", states
    for skipped in ("wait_for_qa", "qa_signoff", "wait_for_freeze", "deploy", "verify_production"):
        assert states[skipped] == "skipped", states
    assert deployments(pipeline) == []  # already in production: nothing deployed again
    for oem in ENABLED:
        [message] = [n["message"] for n in pipeline.sim.notifications(oem)]
        assert message["subject"] == f"{BRANDS[oem]} {RELEASE} is ready for your sign-off"


def test_a_manual_run_without_params_cuts_the_release_due_with_what_the_rejected_one_carries(pipeline, answer_hitl):
    """The ledger (L2, L5): 2026.23 was rejected in QA; a manual run with no parameters
    after 2026.24's cut cuts 2026.24 from where 2026.23's cut ended, and the OEMs are asked
    for 2026.23's changes with it, listed as carried."""
    from release_pipeline.change_feed import parse_changes

    train = load_calendar()
    pipeline.repo.record_baseline_release(train.release_by_id("2026.22"), actor="test", reason="instances run it")
    rejected, due = feed_changes("2026.23")[:-1], feed_changes("2026.24")
    pipeline.sim.add_changes(rejected + due)
    carried = train.release_by_id("2026.23")
    pipeline.repo.record_release(
        carried,
        parse_changes(json.dumps({"changes": rejected})),
        changes_since=train.previous(carried).at,
        changes_until=carried.at,
        actor="test",
    )
    pipeline.repo.set_release_status("2026.23", ReleaseStatus.QA_REJECTED, actor="qa")
    pipeline.sim.production(deploy_seconds=0)
    with time_machine.travel(AFTER_RELEASE, tick=True):  # the QA answer is looked for from then on
        answer_hitl(DAG, "qa_signoff", "Approve", {"reason": "green"})
        run = pipeline.run(DAG, conf={"dry_run": False})
    states = pipeline.task_states(run)
    assert run.state == "success", states
    assert [c.id for c in pipeline.repo.changes_of([RELEASE])] == ["CHG-240", "CHG-241", "CHG-242"]
    for oem in ENABLED:
        asked = {r.change_id: r.release_id for r in pipeline.repo.approval_requests(oem)}
        assert asked == {"CHG-230": "2026.23", "CHG-231": "2026.23", "CHG-232": "2026.23",
                         "CHG-240": RELEASE, "CHG-241": RELEASE, "CHG-242": RELEASE}  # fmt: skip
        [message] = [n["message"] for n in pipeline.sim.notifications(oem)]
        assert "CHG-231, carried from 2026.23" in message["markdown"]


def test_a_manual_run_without_params_of_a_settled_release_ends_at_once(pipeline):
    """L5: the release due now was rejected in QA: it is never recorded again."""
    pipeline.sim.add_changes(feed_changes())
    train = load_calendar()
    release = train.release_by_id(RELEASE)
    pipeline.repo.record_release(
        release, [], changes_since=train.previous(release).at, changes_until=release.at, actor="test"
    )
    started = time.monotonic()
    with time_machine.travel(AFTER_RELEASE, tick=True):
        run = pipeline.run(DAG)
    states = pipeline.task_states(run)
    assert states["cut_release"] == "skipped" and set(states.values()) == {"skipped"}, states
    assert time.monotonic() - started < 60
    assert pipeline.repo.changes_of([RELEASE]) == [] and deployments(pipeline) == []
    assert pipeline.sim.notifications() == []


# -- the git change source (issue 25, docs/change-sources.md) -----------------------------------
@pytest.mark.parametrize("release_db_url", ["sqlite"], indirect=True)  # the source, not the database, is new here
def test_a_release_cut_from_a_git_repository(pipeline, test_config, tmp_path):
    """``change_source: {kind: git}``: the cut reads a real repository (commits and pull-request
    merges with the feed's changes, and one merged after the release); the HTTP feed is empty."""
    import subprocess

    import yaml

    from simulator.git_history import TYPES_CONFIG, write_history

    history = write_history(tmp_path / "platform", feed_changes())
    vendor = yaml.safe_load((test_config / "vendor.yaml").read_text())
    vendor["change_source"] = {"kind": "git", "repository": str(history), "types": TYPES_CONFIG}
    (test_config / "vendor.yaml").write_text(yaml.safe_dump(vendor, sort_keys=False))
    pipeline.sim.set_qa(RELEASE, "failed")  # the run stops after the cut: no QA sign-off to answer
    run = run_release(pipeline)
    assert pipeline.task_states(run)["cut_release"] == "success"
    recorded = pipeline.repo.changes_of([RELEASE])
    assert [c.id for c in recorded] == ["CHG-240", "CHG-241", "CHG-242"]  # CHG-LATE goes to the next cut
    expected = {c["id"]: c for c in feed_changes()}
    for change in recorded:
        fed = expected[change.id]
        assert (change.type, change.component, change.title, change.description, change.breaking) == (
            fed["type"],
            fed["component"],
            fed["title"],
            fed["description"],
            fed["breaking"],
        )
        assert change.merged_at == pendulum.parse(fed["merged_at"])
    log = subprocess.run(["git", "log", "--first-parent", "--format=%s"], cwd=history, capture_output=True, text=True)
    assert "Merge pull request #2 from platform/change-1-of-2026-24-in-the-ava-platform" in log.stdout
