"""Roadmap prioritisation: the ranking rules product managers rely on, on plain data."""

import pendulum
import pytest

from release_pipeline.config_loading import InvalidConfig
from release_pipeline.models import FeedbackCategory as C
from release_pipeline.notes import Audience, markdown_text
from release_pipeline.registry import load_registry
from release_pipeline.release_calendar import CalendarConfig, ReleaseCalendar
from release_pipeline.roadmap import (
    FeedbackEntry,
    FeedbackLimitReached,
    Horizon,
    PlannedItem,
    candidates,
    check_feedback_allowance,
    diff,
    has_changes,
    in_vendor_terms,
    ingested,
    load_roadmap_config,
    normalise,
    oem_view,
    planned_items,
    prioritise,
    render_roadmap_update,
    roadmap_horizon,
)
from release_pipeline.vendor import load_vendor

# releases every second Thursday from 2026-01-08 10:00 Amsterdam, paired into delivery
# cycles installed a week after the second release (as tests/conftest.py's calendar)
CALENDAR = ReleaseCalendar(
    CalendarConfig(timezone="Europe/Amsterdam", anchor="2026-01-08", release_time="10:00", delivery_offset_days=7)
)
NOW = pendulum.datetime(2026, 11, 30, 7, tz="UTC")  # 2026.24 cut on 26 Nov, installed 3 Dec
HORIZON = roadmap_horizon(CALENDAR, NOW)  # the deliveries of 2026.26 and 2027.02
TIERS = {"g1": "gold", "g2": "gold", "s1": "silver", "b1": "bronze", "b2": "bronze", "b3": "bronze"}


def ask(id_, oem, category, title, days_ago=1, item_id=None):
    return FeedbackEntry(id_, oem, C(category), title, NOW.subtract(days=days_ago), item_id=item_id)


def published(*titles):
    """Items staff published under these titles (ids: the titles as slugs)."""
    return [PlannedItem("-".join(normalise(t).split()), t) for t in titles]


def rank(feedback, planned=None, horizon=HORIZON):
    if planned is None:  # every title asked for is published
        planned = published(*sorted({f.title for f in feedback}))
    return [item["id"] for item in prioritise(feedback, list(planned), TIERS, horizon, NOW)]


# -- the horizon: the next two delivery cycles ----------------------------------------------------
def test_the_horizon_is_the_next_two_delivery_cycles_about_two_months():
    horizon = roadmap_horizon(CALENDAR, NOW)
    assert horizon.release_ids == ["2026.26", "2027.02"]
    assert [c.releases for c in horizon.cycles] == [("2026.25", "2026.26"), ("2027.01", "2027.02")]
    assert [c.install_at.to_date_string() for c in horizon.cycles] == ["2026-12-31", "2027-01-28"]
    assert 7 <= (horizon.cycles[-1].install_at - NOW).in_weeks() <= 9  # about two months, not four weeks


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # the current cycle's release (2026.24) is cut but not installed yet: behind the horizon
        (pendulum.datetime(2026, 11, 26, 9, 59, tz="Europe/Amsterdam"), ["2026.24", "2026.26"]),
        (pendulum.datetime(2026, 11, 26, 10, 0, tz="Europe/Amsterdam"), ["2026.26", "2027.02"]),
        # the first release of a cycle is out: that cycle's delivery is still ahead
        (pendulum.datetime(2026, 12, 10, 12, tz="UTC"), ["2026.26", "2027.02"]),
        # across the new year
        (pendulum.datetime(2026, 12, 24, 10, 0, tz="Europe/Amsterdam"), ["2027.02", "2027.04"]),
        (pendulum.datetime(2027, 1, 1, tz="UTC"), ["2027.02", "2027.04"]),
    ],
)
def test_the_horizon_moves_when_a_cycles_release_is_cut(moment, expected):
    assert roadmap_horizon(CALENDAR, moment).release_ids == expected


def test_each_item_shows_the_release_it_is_planned_for_or_none():
    planned = [
        PlannedItem("first", "First cycle, first release", target_release_id="2026.25"),
        PlannedItem("second", "Second cycle", target_release_id="2027.01"),
        PlannedItem("open", "Not yet planned"),
        PlannedItem("later", "Third cycle", target_release_id="2027.03"),
    ]
    feedback = [ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "Third cycle")]
    items = {i["id"]: i for i in prioritise(feedback, planned, TIERS, HORIZON, NOW)}
    assert {k: i["planned_for"] for k, i in items.items()} == {
        "first": "2026.26",  # installed with the cycle's last release
        "second": "2027.02",
        "open": None,
        "later": "2027.04",  # beyond the horizon, listed because asked for
    }
    view = oem_view(list(items.values()), diff(None, list(items.values())), "b1")
    assert {i["id"]: i["planned_for"] for i in view["items"]}["open"] is None
    assert items["first"]["public_reason"] == "planned for 2026.26; no customer asked for it yet"
    assert items["open"]["public_reason"] == "not yet planned; no customer asked for it yet"


def test_a_horizon_is_built_only_from_its_calendar():
    assert isinstance(HORIZON, Horizon) and HORIZON.planned_for("2099.99") == "2099.99"


def test_required_ranks_above_suggested_at_equal_demand():
    feedback = [ask(1, "s1", C.SUGGESTED_FUNCTIONALITY, "Dark mode"), ask(2, "s1", C.REQUIRED_COMPONENT, "SFTP v2")]
    assert rank(feedback) == ["sftp-v2", "dark-mode"]


def test_more_oems_and_higher_tiers_weigh_more():
    feedback = [
        ask(1, "b1", C.SUGGESTED_FUNCTIONALITY, "Dark mode"),
        ask(2, "b2", C.SUGGESTED_FUNCTIONALITY, "Dark mode"),
        ask(3, "s1", C.SUGGESTED_FUNCTIONALITY, "Audit log"),
        ask(4, "g1", C.SUGGESTED_FUNCTIONALITY, "Webhooks"),
    ]
    # webhooks: 1 gold (3) > audit log: 1 silver (2) = dark mode: 2 bronze (2), where more OEMs win the tie
    assert rank(feedback) == ["webhooks", "dark-mode", "audit-log"]


def test_one_oem_repeating_itself_counts_once():
    repeated = [ask(i, "b1", C.REQUIRED_FUNCTIONALITY, "Dark mode") for i in range(1, 6)]
    planned = published("Audit log", "Dark mode")
    items = prioritise([*repeated, ask(9, "s1", C.REQUIRED_FUNCTIONALITY, "Audit log")], planned, TIERS, HORIZON, NOW)
    assert [i["id"] for i in items] == ["audit-log", "dark-mode"]
    assert items[1]["feedback_ids"] == [1, 2, 3, 4, 5] and items[1]["oems"] == ["b1"]


def test_new_feedback_is_not_drowned_by_old():
    old = [ask(i, oem, C.REQUIRED_FUNCTIONALITY, "SOAP connector", days_ago=300) for i, oem in enumerate(TIERS, 1)]
    fresh = [ask(10, "s1", C.REQUIRED_FUNCTIONALITY, "GraphQL connector", days_ago=2)]
    items = prioritise(old + fresh, published("SOAP connector", "GraphQL connector"), TIERS, HORIZON, NOW)
    assert [i["id"] for i in items] == ["graphql-connector", "soap-connector"]
    assert items[1]["score"] < items[0]["score"]


def test_the_score_can_be_recomputed_by_hand_and_the_reason_is_kept():
    feedback = [
        ask(1, "g1", C.REQUIRED_COMPONENT, "SAP connector", days_ago=91),  # one half-life: 3 x 3 x 0.5
        ask(2, "b1", C.SUGGESTED_COMPONENT, "SAP connector", days_ago=0),  # 1 x 1 x 1
    ]
    (item,) = prioritise(feedback, published("SAP connector"), TIERS, HORIZON, NOW)
    assert item["score"] == 5.5
    assert [(c["oem_id"], c["weight"]) for c in item["contributions"]] == [("b1", 1.0), ("g1", 4.5)]
    assert item["reason"] == (
        "required by 1 OEM (gold); suggested by 1 OEM (bronze); newest ask 2026-11-30; not yet planned; score 5.5"
    )
    assert item["public_reason"] == (
        "required by 1 customer; suggested by 1 customer; newest ask 2026-11-30; not yet planned"
    )


def test_only_demand_categories_rank_and_the_window_is_bounded():
    feedback = [
        ask(1, "g1", C.USAGE_EXPERIENCE, "Love the mapper"),
        ask(2, "g1", C.USE_CASES, "Order sync"),
        ask(3, "g1", C.REQUIRED_FUNCTIONALITY, "Ancient wish", days_ago=400),  # beyond a year
        FeedbackEntry(4, "g1", C.REQUIRED_FUNCTIONALITY, "From the future", NOW.add(days=1)),  # after as_of
        ask(5, "gone", C.REQUIRED_FUNCTIONALITY, "From an OEM no longer in the registry"),
    ]
    items = prioritise(feedback, published(*(f.title for f in feedback)), TIERS, HORIZON, NOW)
    assert [i["feedback_ids"] for i in items] == [[]] * 5  # listed as the vendor's items, nobody asking
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
    assert items["sap-s4"]["oems"] == ["b1", "s1"] and items["sap-s4"]["planned_for"] is None
    assert items["next"]["reason"] == "planned for 2026.26; no OEM asked for it yet; score 0"
    assert "later" not in rank([], planned)  # beyond the horizon and nobody asks


def test_same_input_same_ranking():
    feedback = [ask(i, oem, C.SUGGESTED_FUNCTIONALITY, f"Item {i % 3}") for i, oem in enumerate(TIERS, 1)]
    planned = published("Item 0", "Item 1", "Item 2")
    assert prioritise(feedback, planned, TIERS, HORIZON, NOW) == prioritise(
        list(reversed(feedback)), planned, TIERS, HORIZON, NOW
    )


def test_diff_names_added_removed_and_moved_items():
    first = prioritise(
        [ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "A"), ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B")],
        published("A", "B"),
        TIERS,
        HORIZON,
        NOW,
    )
    second = prioritise(
        [ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B"), ask(3, "g1", C.REQUIRED_FUNCTIONALITY, "C", 5)],
        published("B", "C"),
        TIERS,
        HORIZON,
        NOW,
    )
    changes = diff(first, second)
    assert changes == {
        "first": False,
        "added": [{"id": "c", "title": "C", "public": True}],
        "removed": [{"id": "a", "title": "A", "public": True}],
        "moved": [],
    }
    assert has_changes(changes) and not has_changes(diff(second, second))
    assert diff(None, second)["first"] is True


def test_the_oem_view_hides_other_oems():
    items = prioritise(
        [ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "A"), ask(2, "b1", C.REQUIRED_FUNCTIONALITY, "B")],
        published("A", "B"),
        TIERS,
        HORIZON,
        NOW,
    )
    view = oem_view(items, diff(None, items), "b1")
    assert [(i["title"], i["yours"]) for i in view["items"]] == [("A", False), ("B", True)]
    assert [i["asked_by"] for i in view["items"]] == [1, 1]
    text = repr(view)
    assert "g1" not in text and "gold" not in text and "score" not in text and "feedback_id" not in text


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


# -- roadmap items are the vendor's words ---------------------------------------------------------
def test_an_ask_nobody_published_makes_no_item_and_waits_for_staff():
    feedback = [
        ask(7, "g1", C.REQUIRED_FUNCTIONALITY, "Export for ACME Corp, contract 4711"),
        ask(8, "b1", C.REQUIRED_FUNCTIONALITY, "export for acme corp contract 4711!"),
        ask(9, "s1", C.USE_CASES, "Not a demand"),
    ]
    planned = published("Audit log")
    items = prioritise(feedback, planned, TIERS, HORIZON, NOW)
    assert [(i["id"], i["title"], i["asked_by"]) for i in items] == [("audit-log", "Audit log", 0)]
    (candidate,) = candidates(feedback, planned, TIERS, NOW)
    # staff see it, under an id made from a feedback id, never from its text
    assert candidate["id"] == "ask-7" and candidate["feedback_ids"] == [7, 8] and candidate["oems"] == ["b1", "g1"]


def test_staff_attach_asks_to_items_whatever_their_titles_and_hidden_items_show_nowhere():
    planned = [
        PlannedItem("item-1", "Bulk export", description="Export many flows at once."),
        PlannedItem("item-2", "Old idea", aliases=("Dark mode",), hidden=True),
    ]
    feedback = [
        ask(1, "g1", C.REQUIRED_FUNCTIONALITY, "Export for ACME Corp", item_id="item-1"),
        ask(2, "b1", C.SUGGESTED_FUNCTIONALITY, "bulk export"),  # by the item's title
        ask(3, "s1", C.REQUIRED_FUNCTIONALITY, "Dark mode"),  # alias of a hidden item: not matched
        ask(4, "b2", C.REQUIRED_FUNCTIONALITY, "Something", item_id="item-2"),  # on the hidden item
    ]
    items = prioritise(feedback, planned, TIERS, HORIZON, NOW)
    assert [(i["id"], i["feedback_ids"], i["description"]) for i in items] == [
        ("item-1", [1, 2], "Export many flows at once.")
    ]
    assert [c["feedback_ids"] for c in candidates(feedback, planned, TIERS, NOW)] == [[3]]


def test_the_oem_view_shows_published_items_only_even_from_an_old_snapshot():
    old_items = [
        {"id": "fb-acme-export", "rank": 1, "title": "ACME export", "oems": ["g1"], "public_reason": "x"},
        {**prioritise([], published("Audit log"), TIERS, HORIZON, NOW)[0], "rank": 2},
    ]
    old_changes = {"first": False, "added": [{"id": "fb-acme-export", "title": "ACME export"}], "removed": []}
    view = oem_view(old_items, old_changes, "b1")
    assert [(i["rank"], i["title"]) for i in view["items"]] == [(1, "Audit log")]
    assert "ACME" not in repr(view)
    # and the next diff never names the old, unpublished item as removed
    assert diff(old_items, prioritise([], published("Audit log"), TIERS, HORIZON, NOW))["removed"] == []


def test_feedback_per_day_is_limited_on_a_rolling_day():
    times = [NOW.subtract(hours=h) for h in (30, 23, 5, 1)]
    check_feedback_allowance(times, 4, NOW)  # one of them is older than a day
    with pytest.raises(FeedbackLimitReached) as caught:
        check_feedback_allowance(times, 3, NOW)
    assert caught.value.retry_at == NOW.add(hours=1)  # when the ask of 23 hours ago leaves the day
    assert "3 feedback items in the last 24 hours" in str(caught.value)
    check_feedback_allowance(times, 3, NOW.add(hours=1, seconds=1))


def test_the_feedback_limit_has_a_sane_default_and_is_validated(tmp_path):
    assert load_roadmap_config().feedback_per_oem_per_day == 20
    config = tmp_path / "roadmap.yaml"
    config.write_text("feedback_per_oem_per_day: 0\n")
    with pytest.raises(InvalidConfig, match="feedback_per_oem_per_day"):
        load_roadmap_config(config)


def test_a_markdown_link_in_an_item_arrives_as_text_in_the_update():
    vendor = load_vendor()
    oem = load_registry().get("nimbus")
    title = "Click [here](https://evil.example/x) <b>now</b> ![img](https://evil.example/i.png) `code`"
    (item,) = prioritise(
        [], [PlannedItem("item-1", title, description="see https://evil.example")], TIERS, HORIZON, NOW
    )
    message = render_roadmap_update(
        Audience.oem(oem, vendor), HORIZON.release_ids, [item], diff(None, [item]), portal_url="https://p/"
    )
    assert "](" not in message.markdown and "<b>" not in message.markdown and "https://evil" not in message.markdown
    assert r"Click \[here\]\(https:\/\/evil.example/x\)" in message.markdown
    assert "<a " not in message.html.replace('<a href="https://p/roadmap">', "").replace(
        '<a href="https://p/feedback">', ""
    )
    assert "&lt;b&gt;now&lt;/b&gt;" in message.html
    assert markdown_text("a *b* _c_\nd") == r"a \*b\* \_c\_ d"


def test_a_stored_feedback_row_becomes_an_entry(repo):
    """The one mapping from the release database's rows, used by planning and the CLI."""
    feedback_id = repo.record_feedback(
        oem_id="nimbus",
        category=C.REQUIRED_COMPONENT,
        title="SAP S/4 connector",
        body="for the plant",
        submitted_by="user@nimbus",
        channel="portal",
        component="sap",
        at=NOW,
    )
    (row,) = repo.feedback(oem_id="nimbus")
    entry = FeedbackEntry.from_row(row)
    expected = FeedbackEntry(feedback_id, "nimbus", C.REQUIRED_COMPONENT, "SAP S/4 connector", row.created_at, "sap")
    assert entry == expected
    assert entry.created_at == NOW
