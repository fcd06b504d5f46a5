"""Staff commands for the roadmap: items OEMs see are the vendor's words, published,
merged and hidden by named staff; bad input exits 2 with a message and writes nothing."""

import json

import pytest

from release_pipeline.models import FeedbackCategory


def give(repo, oem_id, title, category=FeedbackCategory.REQUIRED_FUNCTIONALITY):
    return repo.record_feedback(
        oem_id=oem_id, category=category, title=title, body="", submitted_by=f"u@{oem_id}", channel="portal"
    )


def listing(cli):
    code, out, _ = cli("roadmap", "list", "--json")
    assert code == 0
    return json.loads(out)


def test_publish_merge_hide_show_and_list(cli, repo):
    acme = give(repo, "nimbus", "Export for ACME Corp (contract 4711)")
    other = give(repo, "orbitel", "bulk export pls")
    assert [a["feedback"] for a in listing(cli)["unpublished_asks"]] == [acme, other]

    code, out, _ = cli(
        "roadmap", "publish", str(acme), "--title", "Bulk export", "--description", "Export many flows.",
        "--release", "2026.25", "--by", "pm.paula",
    )  # fmt: skip
    assert code == 0 and "published roadmap item item-1" in out  # a number, not the ask's words
    row = repo.planned_item("item-1")
    assert (row.title, row.description, row.target_release_id, row.updated_by) == (
        "Bulk export",
        "Export many flows.",
        "2026.25",
        "pm.paula",
    )
    assert repo.feedback_item(acme).item_id == "item-1"

    assert cli("roadmap", "merge", str(other), "--into", "item-1", "--by", "pm.paula")[0] == 0
    listed = listing(cli)
    assert listed["unpublished_asks"] == []
    item = {i["id"]: i for i in listed["items"]}["item-1"]
    assert (item["asked_by"], item["state"]) == (2, "published")

    # a config item can be hidden (and shown again): a row for it keeps its plan
    assert cli("roadmap", "hide", "flow-versioning", "--by", "pm.paula")[0] == 0
    assert {i["id"]: i["state"] for i in listing(cli)["items"]}["flow-versioning"] == "hidden"
    assert repo.planned_item("flow-versioning").title == "Flow versioning with rollback"
    code, _, err = cli("roadmap", "merge", str(other), "--into", "flow-versioning", "--by", "pm.paula")
    assert code == 2 and "is hidden" in err
    assert cli("roadmap", "show", "flow-versioning", "--by", "pm.paula")[0] == 0
    assert {i["id"]: i["state"] for i in listing(cli)["items"]}["flow-versioning"] == "published"

    assert cli("roadmap", "edit", "item-1", "--release", "none", "--title", "Bulk flow export", "--by", "p")[0] == 0
    assert (repo.planned_item("item-1").title, repo.planned_item("item-1").target_release_id) == (
        "Bulk flow export",
        None,
    )
    code, out, _ = cli("roadmap", "list")
    assert code == 0 and "Bulk flow export" in out and "Asks on no item" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "99", "--title", "T", "--description", "D", "--by", "p"], "no feedback 99"),
        (["publish", "{fb}", "--title", " ", "--description", "D", "--by", "p"], "--title must not be empty"),
        (["publish", "{fb}", "--title", "T", "--description", "x" * 4001, "--by", "p"], "at most 4000"),
        (["publish", "{fb}", "--title", "T\x00", "--description", "D", "--by", "p"], "control character"),
        (["publish", "{fb}", "--title", "T", "--description", "D", "--by", ""], "--by must name"),
        (["publish", "{fb}", "--title", "T", "--description", "D", "--by", "p", "--id", "Bad Id"], "--id"),
        (["publish", "{fb}", "--title", "T", "--description", "D", "--by", "p", "--id", "vault-secrets"], "config"),
        (["publish", "{fb}", "--title", "T", "--description", "D", "--by", "p", "--release", "2026.3"], "release"),
        (["merge", "{fb}", "--into", "nope", "--by", "p"], "no roadmap item 'nope'"),
        (["hide", "nope", "--by", "p"], "no roadmap item 'nope'"),
        (["edit", "vault-secrets", "--by", "p"], "nothing to change"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli, repo, argv, message):
    feedback_id = give(repo, "nimbus", "Something")
    before = (repo.planned_items(), repo.feedback())
    code, out, err = cli("roadmap", *[a.replace("{fb}", str(feedback_id)) for a in argv])
    assert (code, out) == (2, "")
    assert message in err
    assert (repo.planned_items(), repo.feedback()) == before
