"""The roadmap_planning DAG, run for real with dag.test() against the simulator's
notification sink, on SQLite and PostgreSQL."""

import pendulum
import pytest
import time_machine

from release_pipeline.models import FeedbackCategory

pytestmark = pytest.mark.e2e

MONDAY = pendulum.datetime(2026, 11, 30, 7, tz="UTC")  # next deliveries: 2026.26 (31 Dec), 2027.02 (28 Jan)
DAG_ID = "roadmap_planning"


def give(repo, oem_id, category, title, days_ago, body="", moment=MONDAY):
    return repo.record_feedback(
        oem_id=oem_id,
        category=FeedbackCategory(category),
        title=title,
        body=body,
        submitted_by=f"user@{oem_id}",
        channel="portal",
        at=moment.subtract(days=days_ago),
    )


def messages(sim, channel, kind):
    return [n["message"] for n in sim.notifications(channel) if n["message"]["kind"] == kind]


def cli(argv) -> int:
    from release_pipeline.cli import main

    return main(argv)


def test_asks_for_feedback_ranks_the_roadmap_and_sends_each_oem_its_copy(pipeline, release_db_url):
    repo, sim = pipeline.repo, pipeline.sim
    give(repo, "nimbus", "required_component", "SAP S/4 connector", 3)  # an alias of a planned item
    give(repo, "orbitel", "suggested_functionality_improvement", "Dark mode for the OrbitLink Integrate designer", 2)
    give(repo, "kestrel", "suggested_functionality_improvement", "Dark mode for the Kestrel Flow designer", 40)
    give(repo, "kestrel", "usage_experience", "Mapper is slow on big payloads", 1)
    repo.upsert_planned_item("flow-versioning", title="Flow versioning with rollback", target_release_id="2026.26")
    repo.upsert_planned_item("ai-mapper", title="Mapping suggestions", target_release_id="2026.26")

    run = pipeline.run(DAG_ID, logical_date=MONDAY)

    assert run.state == "success", pipeline.task_states(run)
    snapshot = repo.latest_roadmap_snapshot()
    assert snapshot.horizon == ["2026.26", "2027.02"]  # two delivery cycles, about two months
    ranked = [(item["id"], item["rank"]) for item in snapshot.items]
    assert ranked == [
        ("sap-s4-connector", 1),  # required, gold; asked by an alias of the item
        ("flow-versioning", 2),  # planned, nobody asked: planned for a release first, then by title
        ("ai-mapper", 3),
        ("vault-secrets", 4),
    ]  # the dark mode asks are on no published item: no item, no rank
    sap = snapshot.items[0]
    assert sap["oems"] == ["nimbus"] and sap["required_by"] == 1 and sap["planned_for"] is None
    assert "required by 1 OEM (gold)" in sap["reason"]
    assert snapshot.changes["first"] is True
    assert snapshot.changes["ingested"]["by_category"]["usage_experience"] == 1
    (dark_mode,) = snapshot.candidates  # for staff to review: both OEMs' asks, one group
    assert (
        dark_mode["oems"] == ["kestrel", "orbitel"] and dark_mode["id"] == "ask-3"
    )  # the oldest ask's number, never its words

    # every enabled OEM was never asked: all are asked once, the disabled one not at all
    for oem in ("kestrel", "nimbus", "orbitel"):
        (request,) = messages(sim, oem, "feedback_request")
        assert "http://localhost:8080/oem-portal/feedback" in request["markdown"]
        assert repo.last_feedback_request(oem).period_key == "2026-W49"
    assert sim.notifications("tundra") == []

    (orbitel,) = messages(sim, "orbitel", "roadmap_update")
    assert orbitel["subject"] == "OrbitLink Integrate roadmap for the deliveries of 2026.26 and 2027.02"
    assert "**Flow versioning with rollback** (functionality, planned for 2026.26)" in orbitel["markdown"]
    assert "**Secrets from HashiCorp Vault** (functionality, not yet planned)" in orbitel["markdown"]
    assert "Read connection secrets from a HashiCorp Vault" in orbitel["markdown"]  # the public description
    assert "AVA" not in orbitel["markdown"] + orbitel["html"]
    for oem in ("kestrel", "nimbus", "orbitel"):  # nobody's unpublished ask reaches anyone
        (update,) = messages(sim, oem, "roadmap_update")
        text = update["subject"] + update["markdown"] + update["html"]
        assert "Dark mode" not in text and "Mapper is slow" not in text and "gold" not in text

    # a week later nobody is due (cadences of 2+ weeks) and nothing changed: every OEM
    # still gets its weekly update, saying so, and no feedback request
    run = pipeline.run(DAG_ID, logical_date=MONDAY.add(weeks=1))
    assert run.state == "success", pipeline.task_states(run)
    for oem in ("kestrel", "nimbus", "orbitel"):
        assert len(messages(sim, oem, "feedback_request")) == 1
        weekly = messages(sim, oem, "roadmap_update")
        assert len(weekly) == 2 and "Nothing changed since the last update." in weekly[-1]["markdown"]
    assert {p.status for p in repo.publications(kind="roadmap_update", scope_key=str(snapshot.id + 1))} == {"sent"}

    # staff turn kestrel's ask into an item in the vendor's words, and count orbitel's for it
    kestrel_ask, orbitel_ask = sorted(dark_mode["feedback_ids"], reverse=True)
    staff = ["--db-url", release_db_url, "roadmap"]
    publish = ["publish", str(kestrel_ask), "--title", "Dark mode for the designer", "--by", "pm.paula"]
    assert cli([*staff, *publish, "--description", "A dark colour scheme for the flow designer."]) == 0
    assert cli([*staff, "merge", str(orbitel_ask), "--into", "item-1", "--by", "pm.paula"]) == 0

    # two weeks later nimbus is due again, and new demand reshuffles the roadmap
    give(repo, "nimbus", "required_functionality", "Mapping suggestions", 1, moment=MONDAY.add(weeks=2))
    run = pipeline.run(DAG_ID, logical_date=MONDAY.add(weeks=2))
    assert run.state == "success", pipeline.task_states(run)
    assert len(messages(sim, "nimbus", "feedback_request")) == 2
    assert len(messages(sim, "orbitel", "feedback_request")) == 1
    latest = repo.latest_roadmap_snapshot()
    assert [i["id"] for i in latest.items] == [
        "ai-mapper",
        "sap-s4-connector",
        "item-1",
        "flow-versioning",
        "vault-secrets",
    ]
    assert {"id": "ai-mapper", "title": "Mapping suggestions", "public": True, "from": 3, "to": 1} in latest.changes[
        "moved"
    ]
    assert latest.changes["ingested"]["feedback_ids"] == [5]
    assert latest.candidates == []
    update = messages(sim, "kestrel", "roadmap_update")[-1]
    assert "Mapping suggestions: from rank 3 to 1" in update["markdown"]
    assert "- New: Dark mode for the designer" in update["markdown"]
    assert "**Dark mode for the designer** (functionality, not yet planned) — you asked for this" in update["markdown"]
    assert "suggested by 2 customers" in update["markdown"]
    nimbus = messages(sim, "nimbus", "roadmap_update")[-1]
    assert "**Dark mode for the designer** (functionality, not yet planned)  \n" in nimbus["markdown"]
    assert "Kestrel" not in nimbus["markdown"] and "OrbitLink" not in nimbus["markdown"]


def test_one_oems_broken_channel_fails_the_run_but_not_the_others(pipeline, monkeypatch):
    dag = pipeline.dagbag.get_dag(DAG_ID)
    for task_id in ("request_feedback", "send_roadmap_update"):
        monkeypatch.setattr(dag.get_task(task_id), "retries", 0)
    pipeline.sim.channel_down("orbitel")

    run = pipeline.run(DAG_ID, logical_date=MONDAY)

    states = pipeline.task_states(run)
    assert run.state == "failed"
    assert states["report"] == "failed"
    assert states["prioritise"] == "success"
    failed = sorted(name for name, state in states.items() if state == "failed")
    assert failed == ["report", "request_feedback[2]", "send_roadmap_update[2]", "watcher"]  # orbitel sorts last
    for oem in ("kestrel", "nimbus"):
        assert len(pipeline.sim.notifications(oem)) == 2
    publications = {(p.kind, p.audience): p for p in pipeline.repo.publications()}
    assert publications[("roadmap_update", "orbitel")].status == "failed"
    assert "503" in publications[("roadmap_update", "orbitel")].detail
    # not asked, so still due next week
    assert pipeline.repo.last_feedback_request("orbitel") is None
    assert pipeline.repo.last_feedback_request("nimbus").period_key == "2026-W49"


def test_a_manual_run_without_params_plans_from_when_it_is_triggered(pipeline):
    """Only 2026.24 is recorded (in production; the releases before it were never cut):
    the run plans the next two cycles whose release is not cut at the pinned clock."""
    from release_pipeline.models import ReleaseStatus
    from release_pipeline.release_calendar import load_calendar

    release = load_calendar().release_by_id("2026.24")
    pipeline.repo.record_baseline_release(release, actor="test", reason="in production")
    assert pipeline.repo.release("2026.24").status == ReleaseStatus.DEPLOYED
    with time_machine.travel(MONDAY.add(hours=3), tick=True):
        run = pipeline.run(DAG_ID)
    states = pipeline.task_states(run)
    assert run.state == "success" and states["planning_horizon"] == "success", states
    assert pipeline.repo.latest_roadmap_snapshot().horizon == ["2026.26", "2027.02"]
