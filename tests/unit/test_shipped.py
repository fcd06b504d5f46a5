"""From feedback to shipped: a change names the roadmap items it delivers (change feed or
``release-train change link-roadmap``); the OEMs whose own feedback led to an item are
told "you asked for this", nobody else learns who asked; a shipped item leaves the
ranking and is listed with its release. On SQLite and PostgreSQL (see conftest)."""

import json

import pendulum
import pytest

from release_pipeline.change_feed import ChangeFeedError, parse_changes
from release_pipeline.models import Change, ChangeType, FeedbackCategory, ReleaseStatus
from release_pipeline.notes import Audience, ReleaseNotesInput, render_release_notes
from release_pipeline.registry import load_registry
from release_pipeline.roadmap import (
    FeedbackEntry,
    PlannedItem,
    UnknownRoadmapItems,
    asked_for,
    check_item_ids,
    load_roadmap_config,
    oem_view,
    plan_roadmap,
    planned_items,
    prioritise,
    roadmap_horizon,
    shipped_items,
)
from release_pipeline.vendor import load_vendor

MERGED = pendulum.datetime(2026, 11, 20, 12, tz="UTC")
NOW = pendulum.datetime(2026, 11, 30, 7, tz="UTC")


def feed(**extra) -> str:
    change = {"id": "AVA-1", "type": "feature", "component": "c", "title": "T", "merged_at": MERGED.isoformat()}
    return json.dumps({"changes": [{**change, **extra}]})


def change(change_id: str, *items: str, release_id: str | None = None) -> Change:
    return Change(change_id, ChangeType.FEATURE, "vault", f"Title of {change_id}", "", False, MERGED, release_id, items)


def cut(repo, calendar, release_id: str, *changes: Change, deployed: bool = False) -> None:
    release = calendar.release_by_id(release_id)
    repo.record_release(release, list(changes), changes_since=None, changes_until=release.at, actor="test")
    for c in changes:
        repo.link_change_roadmap_items(c.id, c.roadmap_items, by="test")
    if deployed:
        repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")


def ask(repo, oem_id: str, title: str, item_id: str | None) -> int:
    feedback_id = repo.record_feedback(
        oem_id=oem_id,
        category=FeedbackCategory.REQUIRED_FUNCTIONALITY,
        title=title,
        body=f"secret plans of {oem_id}",
        submitted_by=f"pm@{oem_id}",
        channel="portal",
        at=NOW.subtract(days=10),
    )
    if item_id:
        repo.link_feedback(feedback_id, item_id, by="pm.paula")
    return feedback_id


# -- the change feed -------------------------------------------------------------------------
def test_the_feed_names_roadmap_items_optionally():
    assert parse_changes(feed())[0].roadmap_items == ()
    (parsed,) = parse_changes(feed(roadmap_items=["vault-secrets", "flow-versioning", "vault-secrets"]))
    assert parsed.roadmap_items == ("vault-secrets", "flow-versioning")


@pytest.mark.parametrize("items", [["Not An Id"], "vault-secrets", [7]])
def test_a_malformed_roadmap_item_refuses_the_feed_naming_change_and_field(items):
    with pytest.raises(ChangeFeedError, match=r"change 'AVA-1', field 'roadmap_items"):
        parse_changes(feed(roadmap_items=items))


def test_unknown_item_ids_are_named():
    planned = [PlannedItem("vault-secrets", "Vault")]
    check_item_ids("change 'AVA-1'", ["vault-secrets"], planned)
    with pytest.raises(UnknownRoadmapItems, match=r"change 'AVA-1': unknown roadmap item\(s\) 'nope', 'nada'"):
        check_item_ids("change 'AVA-1'", ["nope", "vault-secrets", "nada"], planned)


# -- the staff command ---------------------------------------------------------------------------
def test_link_roadmap_links_once_and_names_unknown_ids(cli, repo, calendar):
    cut(repo, calendar, "2026.24", change("AVA-1"))
    code, out, _ = cli("change", "link-roadmap", "AVA-1", "vault-secrets", "--by", "pm.paula")
    assert code == 0 and "delivers roadmap item(s) vault-secrets" in out
    code, out, _ = cli("change", "link-roadmap", "AVA-1", "vault-secrets", "flow-versioning", "--by", "pm.paula")
    assert code == 0 and "vault-secrets already linked" in out
    assert [(r.change_id, r.item_id, r.release_id) for r in repo.change_roadmap_links()] == [
        ("AVA-1", "flow-versioning", "2026.24"),
        ("AVA-1", "vault-secrets", "2026.24"),
    ]

    code, _, err = cli("change", "link-roadmap", "AVA-1", "no-such-item", "vault-secrets", "other-one", "--by", "p")
    assert code == 2 and "unknown roadmap item(s) 'no-such-item', 'other-one'" in err
    code, _, err = cli("change", "link-roadmap", "AVA-9", "vault-secrets", "--by", "p")
    assert code == 2 and "no change 'AVA-9'" in err
    code, _, err = cli("change", "link-roadmap", "AVA-1", "vault-secrets", "--by", " ")
    assert code == 2 and "--by must name" in err
    assert len(repo.change_roadmap_links()) == 2  # nothing written by a refused command


# -- shipped leaves the ranking --------------------------------------------------------------------
def test_an_item_ships_when_all_its_changes_are_in_production(repo, calendar):
    cut(repo, calendar, "2026.23", change("AVA-1", "vault-secrets", "flow-versioning"), deployed=True)
    cut(repo, calendar, "2026.24", change("AVA-2", "flow-versioning"))
    assert shipped_items(repo.change_roadmap_links()) == {"vault-secrets": "2026.23"}
    repo.set_release_status("2026.24", ReleaseStatus.DEPLOYED, actor="test")
    assert shipped_items(repo.change_roadmap_links()) == {"vault-secrets": "2026.23", "flow-versioning": "2026.24"}


def test_the_ranking_drops_shipped_items(calendar):
    planned = [PlannedItem("vault-secrets", "Vault"), PlannedItem("flow-versioning", "Versioning")]
    feedback = [FeedbackEntry(1, "nimbus", FeedbackCategory.REQUIRED_FUNCTIONALITY, "x", NOW, item_id="vault-secrets")]
    tiers = {"nimbus": "gold"}
    horizon = roadmap_horizon(calendar, NOW)
    ranked = prioritise(feedback, planned, tiers, horizon, NOW)
    assert [i["id"] for i in ranked] == ["vault-secrets", "flow-versioning"]
    ranked = prioritise(feedback, planned, tiers, horizon, NOW, {"vault-secrets": "2026.23"})
    assert [(i["id"], i["rank"]) for i in ranked] == [("flow-versioning", 1)]


def test_the_roadmap_lists_shipped_items_with_their_release(repo, calendar, cli):
    registry, vendor, config = load_registry(), load_vendor(), load_roadmap_config()
    ask(repo, "nimbus", "Secrets from our vault", "vault-secrets")
    ask(repo, "orbitel", "Versioned flows", "flow-versioning")
    before = plan_roadmap(repo, registry=registry, vendor=vendor, calendar=calendar, config=config, moment=NOW)
    assert "vault-secrets" in [i["id"] for i in before.items]

    cut(repo, calendar, "2026.23", change("AVA-1", "vault-secrets"), deployed=True)

    class Previous:
        items, changes = before.items, before.changes

    after = plan_roadmap(
        repo, registry=registry, vendor=vendor, calendar=calendar, config=config, moment=NOW, previous=Previous
    )
    assert "vault-secrets" not in [i["id"] for i in after.items]
    assert [(s["id"], s["release_id"], s["oems"]) for s in after.changes["shipped"]] == [
        ("vault-secrets", "2026.23", ["nimbus"])
    ]
    assert "vault-secrets" not in [r["id"] for r in after.changes["removed"]]  # shipped, not dropped
    nimbus, orbitel = (oem_view(after.items, after.changes, oem)["shipped"] for oem in ("nimbus", "orbitel"))
    assert nimbus == [{"id": "vault-secrets", "title": nimbus[0]["title"], "release_id": "2026.23", "yours": True}]
    assert orbitel[0]["yours"] is False and "nimbus" not in json.dumps(orbitel)

    code, out, _ = cli("roadmap", "list", "--json")
    item = {i["id"]: i for i in json.loads(out)["items"]}["vault-secrets"]
    assert (item["state"], item["release"]) == ("shipped in 2026.23", "2026.23")


# -- "you asked for this", and only to the OEM that asked ---------------------------------------------
def test_asked_for_looks_up_the_oems_own_asks_only(repo, calendar):
    cut(repo, calendar, "2026.24", change("AVA-1", "vault-secrets"), change("AVA-2"))
    ask(repo, "nimbus", "Secrets from our vault", "vault-secrets")
    ask(repo, "orbitel", "Something else entirely", None)
    planned = planned_items(load_roadmap_config(), repo.planned_items())
    title = {p.id: p.title for p in planned}["vault-secrets"]
    assert asked_for(repo, "nimbus", ["AVA-1", "AVA-2"], planned) == {
        "AVA-1": [{"id": "vault-secrets", "title": title}]
    }
    assert asked_for(repo, "orbitel", ["AVA-1", "AVA-2"], planned) == {}
    hidden = [PlannedItem(p.id, p.title, hidden=True) if p.id == "vault-secrets" else p for p in planned]
    assert asked_for(repo, "nimbus", ["AVA-1"], hidden) == {}  # an item shown to no OEM is not named


@pytest.mark.parametrize("asked", [None, {"AVA-1": [{"id": "vault-secrets", "title": "Secrets from Vault"}]}])
def test_notes_say_you_asked_for_this_only_when_asked(asked):
    oem = load_registry().oems["nimbus"]
    release = ReleaseNotesInput(
        "2026.24", MERGED, [change("AVA-1", release_id="2026.24"), change("AVA-2", release_id="2026.24")]
    )
    notes = render_release_notes([release], Audience.oem(oem, load_vendor()), asked)
    for text in (notes.markdown, notes.html):
        assert ("you asked for this" in text) is bool(asked)
        assert ("Secrets from Vault" in text) is bool(asked)
    if asked:
        line = next(line for line in notes.markdown.splitlines() if "you asked for this" in line)
        # on the change that delivers it, not on AVA-2 (shown by its OEM-neutral id, issue 24)
        assert "CHANGE-1)" in line
