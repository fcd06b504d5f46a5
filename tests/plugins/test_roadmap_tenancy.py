"""Nothing of one OEM's feedback reaches another OEM (issue 11: "roadmap items are the
vendor's words"), as a property over random feedback: whatever OEM A writes (titles and
bodies with markdown links, customer names, contract numbers, any Unicode), OEM B's
portal roadmap (page and ``/api/v1/roadmap``), its feedback pages and its rendered
roadmap update (the function the roadmap_planning DAG sends) never show any of it,
whether staff left A's ask alone, merged it into an item, published it in their own
words, or hid the item. Runs on SQLite and PostgreSQL, through the portal app and the
same snapshot code the DAG runs, with a pinned clock."""

import re
import warnings

import pendulum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from release_pipeline.characters import invisible
from release_pipeline.db import schema
from release_pipeline.notes import Audience
from release_pipeline.registry import load_registry
from release_pipeline.roadmap import load_roadmap_config, plan_roadmap, render_roadmap_update
from release_pipeline.tokens import issue_token
from release_pipeline.vendor import load_vendor
from release_train_airflow.portal import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

A, B = "orbitel", "nimbus"
MONDAY = pendulum.datetime(2026, 11, 30, 7, tz="UTC")

# text as people type it: any printable Unicode, markdown syntax included (the portal
# refuses invisible characters with a 422: tests/unit/test_inputs.py and the guard's tests)
free_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")).filter(lambda char: not invisible(char)), max_size=60
)
names = st.from_regex(r"\A[A-Z][a-z]{3,9} [A-Z][a-z]{3,9}\Z")  # a customer or a person
contracts = st.from_regex(r"\A[A-Z]{2}-[0-9]{6}\Z")
hosts = st.from_regex(r"\A[a-z]{6,12}\.example\Z")
labels = st.from_regex(r"\A[A-Za-z]{6,12}\Z")
SCENARIOS = ("left alone", "merged", "published in staff's words", "published, then hidden")


def _secret_pieces(title: str, body: str, component: str, name: str, contract: str, label: str, host: str):
    return [name, contract, label, host, f"https://{host}", title.strip(), body.strip(), component.strip()]


def test_one_oems_feedback_never_reaches_another_oem(repo, calendar):
    registry, vendor, config = load_registry(), load_vendor(), load_roadmap_config()
    app = create_app(repo, now=lambda: MONDAY, load_calendar=lambda: calendar)
    tokens = {oem: issue_token(repo, oem_id=oem, label=f"u@{oem}", created_by="t").token for oem in (A, B)}
    api = {oem: TestClient(app, headers={"Authorization": f"Bearer {tokens[oem]}"}) for oem in (A, B)}
    browser = TestClient(app, follow_redirects=False)
    assert browser.post("/login", data={"token": tokens[B]}).status_code == 303

    def snapshot(moment) -> int:
        planned = plan_roadmap(
            repo,
            registry=registry,
            vendor=vendor,
            calendar=calendar,
            config=config,
            moment=moment,
            previous=repo.latest_roadmap_snapshot(),
        )
        return repo.save_roadmap_snapshot(
            horizon=planned.horizon,
            items=planned.items,
            changes=planned.changes,
            candidates=planned.candidates,
            run_id=None,
        )

    def what_b_reads() -> dict[str, str]:
        row = repo.latest_roadmap_snapshot()
        update = render_roadmap_update(
            Audience.oem(registry.get(B), vendor), row.horizon, row.items, row.changes, portal_url=vendor.portal_url
        )
        return {
            "api roadmap": api[B].get("/api/v1/roadmap").text,
            "api feedback": api[B].get("/api/v1/feedback").text,
            "roadmap page": browser.get("/roadmap").text,
            "feedback page": browser.get("/feedback").text,
            "update": "\n".join((update.subject, update.markdown, update.html)),
        }

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(
        free_text,
        free_text,
        names,
        contracts,
        labels,
        hosts,
        st.sampled_from(["required_functionality", "suggested_component_improvement", "use_cases"]),
    )
    def check(text1, text2, name, contract, label, host, category):
        for scenario in SCENARIOS:  # every example, every way staff may treat A's ask
            one_scenario(text1, text2, name, contract, label, host, category, scenario)

    def one_scenario(text1, text2, name, contract, label, host, category, scenario):
        with repo.engine.begin() as conn:  # every example starts from the vendor's items alone
            for table in (schema.feedback, schema.planned_items, schema.roadmap_snapshots):
                conn.execute(delete(table))
        # B's own ask, and a first roadmap before A says anything
        assert api[B].post("/api/v1/feedback", json={"category": "use_cases", "title": "B's own"}).status_code == 201
        snapshot(MONDAY.subtract(weeks=1))
        before = api[B].get("/api/v1/roadmap").json()

        title = f"{text1} {name} {contract}"
        body = f"{text2} [{label}](https://{host}/{contract}) {name}"
        component = f"{label} {name}"[:100]
        response = api[A].post(
            "/api/v1/feedback", json={"category": category, "title": title, "body": body, "component": component}
        )
        assert response.status_code == 201, response.text
        feedback_id = response.json()["id"]
        if scenario == "merged":
            repo.link_feedback(feedback_id, "vault-secrets", by="pm")
        elif scenario.startswith("published"):
            repo.publish_planned_item("item-1", title="Bulk export", description="Export many flows.", by="pm")
            repo.link_feedback(feedback_id, "item-1", by="pm")
            if scenario.endswith("hidden"):
                repo.update_planned_item("item-1", by="pm", hidden_at=MONDAY)
        snapshot(MONDAY)

        seen = what_b_reads()
        for piece in _secret_pieces(title, body, component, name, contract, label, host):
            for where, text in seen.items():
                assert piece not in text, f"{piece!r} of {A}'s feedback reached {B} through its {where}"
        for where, text in seen.items():  # nor A's name, brand, or a feedback id of A
            assert not re.search(r"orbit", text, re.IGNORECASE), f"{A} is named to {B} in its {where}"
            assert f"ask-{feedback_id}" not in text and '"feedback_id"' not in text
        after = api[B].get("/api/v1/roadmap").json()
        demand = category != "use_cases"
        if scenario in ("left alone", "published, then hidden"):
            # A's ask changed nothing B can see: not an item, not a count, not a move
            assert after["items"] == before["items"], scenario
            assert after["changes"] == {"first": False, "added": [], "removed": [], "moved": []}
        else:  # B sees the vendor's item, and A's ask only as a count
            item = "vault-secrets" if scenario == "merged" else "item-1"
            counts = {i["id"]: (i["asked_by"], i["yours"]) for i in after["items"]}
            assert counts[item] == (1 if demand else 0, False)
            assert {i["title"] for i in after["items"]} - {i["title"] for i in before["items"]} <= {"Bulk export"}
        # A itself reads its own words back, so the property above is not vacuous
        assert title.strip() in api[A].get("/api/v1/feedback").text or "\\" in title or '"' in title

    check()
