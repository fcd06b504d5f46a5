"""Roadmap prioritisation: the ranking rules product managers rely on, on plain data."""

import pendulum
import pytest

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.models import FeedbackCategory as C
from release_pipeline.roadmap import (
    FeedbackEntry,
    PlannedItem,
    diff,
    has_changes,
    in_vendor_terms,
    ingested,
    load_roadmap_config,
    oem_view,
    planned_items,
    prioritise,
)

NOW = pendulum.datetime(2026, 11, 30, 7, tz="UTC")
HORIZON = ["2026.25", "2026.26"]
TIERS = {"g1": "gold", "g2": "gold", "s1": "silver", "b1": "bronze", "b2": "bronze", "b3": "bronze"}


def ask(id_, oem, category, title, days_ago=1):
    return FeedbackEntry(id_, oem, C(category), title, NOW.subtract(days=days_ago))


def rank(feedback, planned=(), horizon=HORIZON):
    return [item["id"] for item in prioritise(feedback, list(planned), TIERS, horizon, NOW)]


def test_required_ranks_above_suggested_at_equal_demand():
    feedback = [ask(1, "s1", C.SUGGESTED_FUNCTIONALITY, "Dark mode"), ask(2, "s1", C.REQUIRED_COMPONENT, "SFTP v2")]
    assert rank(feedback) == ["fb-sftp-v2", "fb-dark-mode"]


def test_more_oems_and_higher_tiers_weigh_more():
    feedback = [
        ask(1, "b1", C.SUGGESTED_FUNCTIONALITY, "Dark mode"),
        ask(2, "b2", C.SUGGESTED_FUNCTIONALITY, "Dark mode"),
        ask(3, "s1", C.SUGGESTED_FUNCTIONALITY, "Audit log"),
        ask(4, "g1", C.SUGGESTED_FUNCTIONALITY, "Webhooks"),
    ]
    # webhooks: 1 gold (3) > audit log: 1 silver (2) = dark mode: 2 bronze (2), where more OEMs win the tie
    assert rank(feedback) == ["fb-webhooks", "fb-dark-mode", "fb-audit-log"]


def test_one_oem_repeating_itself_counts_once():
    repeated = [ask(i, "b1", C.REQUIRED_FUNCTIONALITY, "Dark mode") for i in range(1, 6)]
    items = prioritise([*repeated, ask(9, "s1", C.REQUIRED_FUNCTIONALITY, "Audit log")], [], TIERS, HORIZON, NOW)
    assert [i["id"] for i in items] == ["fb-audit-log", "fb-dark-mode"]
    assert items[1]["feedback_ids"] == [1, 2, 3, 4, 5] and items[1]["oems"] == ["b1"]


def test_new_feedback_is_not_drowned_by_old():
    old = [ask(i, oem, C.REQUIRED_FUNCTIONALITY, "SOAP connector", days_ago=300) for i, oem in enumerate(TIERS, 1)]
    fresh = [ask(10, "s1", C.REQUIRED_FUNCTIONALITY, "GraphQL connector", days_ago=2)]
    items = prioritise(old + fresh, [], TIERS, HORIZON, NOW)
    assert [i["id"] for i in items] == ["fb-graphql-connector", "fb-soap-connector"]
    assert items[1]["score"] < items[0]["score"]


def test_the_score_can_be_recomputed_by_hand_and_the_reason_is_kept():
    feedback = [
        ask(1, "g1", C.REQUIRED_COMPONENT, "SAP connector", days_ago=91),  # one half-life: 3 x 3 x 0.5
        ask(2, "b1", C.SUGGESTED_COMPONENT, "SAP connector", days_ago=0),  # 1 x 1 x 1
    ]
    (item,) = prioritise(feedback, [], TIERS, HORIZON, NOW)
    assert item["score"] == 5.5
    assert [(c["oem_id"], c["weight"]) for c in item["contributions"]] == [("b1", 1.0), ("g1", 4.5)]
    assert item["reason"] == "required by 1 OEM (gold); suggested by 1 OEM (bronze); newest ask 2026-11-30; score 5.5"
    assert item["public_reason"] == "required by 1 customer; suggested by 1 customer; newest ask 2026-11-30"


def test_only_demand_categories_rank_and_the_window_is_bounded():
    feedback = [
        ask(1, "g1", C.USAGE_EXPERIENCE, "Love the mapper"),
        ask(2, "g1", C.USE_CASES, "Order sync"),
        ask(3, "g1", C.REQUIRED_FUNCTIONALITY, "Ancient wish", days_ago=400),  # beyond a year
        FeedbackEntry(4, "g1", C.REQUIRED_FUNCTIONALITY, "From the future", NOW.add(days=1)),  # after as_of
        ask(5, "gone", C.REQUIRED_FUNCTIONALITY, "From an OEM no longer in the registry"),
    ]
    assert rank(feedback) == []
    assert ingested(feedback, NOW.subtract(days=7), NOW) == {
        "feedback_ids": [1, 2, 5],
        "by_category": {"required_functionality": 1, "usage_experience": 1, "use_cases": 1},
    }


def test_feedback_merges_into_planned_items_by_title_or_alias_never_twice():
    planned = [
        PlannedItem("sap-s4", "SAP S/4HANA connector", "component", aliases=("SAP S/4 connector",)),
        PlannedItem("later", "Later thing", target_release_id="2027.05"),
        PlannedItem("past", "Shipped thing", target_release_id="2026.20"),
        PlannedItem("next", "Next thing", target_release_id="2026.25"),
    ]
    feedback = [
        ask(1, "b1", C.REQUIRED_COMPONENT, "sap s/4 Connector!"),
        ask(2, "s1", C.REQUIRED_COMPONENT, "SAP S/4HANA connector"),
        ask(3, "g1", C.SUGGESTED_FUNCTIONALITY, "Later thing"),
    ]
    items = {i["id"]: i for i in prioritise(feedback, planned, TIERS, HORIZON, NOW)}
    assert set(items) == {"sap-s4", "later", "next"}  # past dropped; later listed because asked for
    assert items["sap-s4"]["oems"] == ["b1", "s1"] and items["sap-s4"]["planned"]
    assert items["next"]["reason"] == "planned by the vendor for 2026.25; no OEM asked for it yet; score 0"
    assert "later" not in rank([], planned)  # beyond the horizon and nobody asks


def test_same_input_same_ranking():
    feedback = [ask(i, oem, C.SUGGESTED_FUNCTIONALITY, f"Item {i % 3}") for i, oem in enumerate(TIERS, 1)]
    assert prioritise(feedback, [], TIERS, HORIZON, NOW) == prioritise(
        list(reversed(feedback)), [], TIERS, HORIZON, NOW
    )


def test_diff_names_added_removed_and_moved_items():
    first = prioritise(
        [ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "A"), ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B")],
        [],
        TIERS,
        HORIZON,
        NOW,
    )
    second = prioritise(
        [ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B"), ask(3, "g1", C.REQUIRED_FUNCTIONALITY, "C", 5)],
        [],
        TIERS,
        HORIZON,
        NOW,
    )
    changes = diff(first, second)
    assert changes == {
        "first": False,
        "added": [{"id": "fb-c", "title": "C"}],
        "removed": [{"id": "fb-a", "title": "A"}],
        "moved": [],
    }
    assert has_changes(changes) and not has_changes(diff(second, second))
    assert diff(None, second)["first"] is True


def test_the_oem_view_hides_other_oems():
    items = prioritise(
        [ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "A"), ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B")],
        [],
        TIERS,
        HORIZON,
        NOW,
    )
    view = oem_view(items, diff(None, items), "b1")
    assert [(i["title"], i["yours"]) for i in view["items"]] == [("A", False), ("B", True)]
    text = repr(view)
    assert "g1" not in text and "gold" not in text and "score" not in text


def test_an_oem_brand_in_feedback_becomes_the_vendor_product():
    assert in_vendor_terms("Dark mode in Kestrel Flow", "Kestrel Flow", "AVA Integration Platform") == (
        "Dark mode in AVA Integration Platform"
    )


def test_planned_items_from_config_and_database_are_one_list(tmp_path):
    config = tmp_path / "roadmap.yaml"
    config.write_text(
        "planned:\n  - id: a1\n    title: A from config\n    aliases: [Alpha]\n  - id: b1\n    title: B\n"
    )

    class Row:
        id, title, component, target_release_id = "a1", "A from the database", None, "2026.26"

    items = planned_items(load_roadmap_config(config), [Row()])
    assert [(p.id, p.title, p.source, p.aliases) for p in items] == [
        ("a1", "A from the database", "database", ("Alpha",)),
        ("b1", "B", "config", ()),
    ]


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        (
            "planned:\n  - id: x1\n    title: X\n    target_release: 2026.30\n",
            "roadmap.yaml:4: roadmap, field 'planned.0.target_release': expected a quoted release id such as "
            '"2026.24" (got 2026.3)',
        ),
        ("planned:\n  - id: x1\n    title: X\n    colour: red\n", "unknown field"),
        (
            "planned:\n  - id: x1\n    title: X\n  - id: x1\n    title: Y\n",
            "roadmap.yaml:4: planned item 'x1', field 'id': duplicate id",
        ),
    ],
)
def test_roadmap_config_errors_name_file_line_and_field(tmp_path, yaml, message):
    config = tmp_path / "roadmap.yaml"
    config.write_text(yaml)
    with pytest.raises(InvalidConfig) as caught:
        load_roadmap_config(config)
    assert message in str(caught.value)


def test_the_shipped_roadmap_config_is_valid():
    assert len(load_roadmap_config().planned) >= 1
