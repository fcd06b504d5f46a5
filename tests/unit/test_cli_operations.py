"""The operator CLI's staff commands, on both release databases: what they record, what
they print, and that bad input exits 2 with a message and writes nothing."""

import json

import pytest

from release_pipeline.cli import main
from release_pipeline.tokens import authenticate
from tests.unit.test_repository import cut


@pytest.fixture
def cli(release_db_url, capsys):
    def run(*argv):
        code = main(["--db-url", release_db_url, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def release_24(repo, calendar):
    cut(repo, calendar, "2026.24", "CHG-1", "CHG-2")
    repo.request_approvals("2026.24", ["nimbus", "orbitel"])
    return repo


def test_token_issue_list_revoke(cli, repo):
    code, out, err = cli("token", "issue", "--oem", "nimbus", "--label", "ann@nimbus", "--by", "ops.eve")
    assert code == 0 and "not shown again" in err
    token = out.strip()
    assert authenticate(repo, token).oem_id == "nimbus"

    code, out, _ = cli("token", "list", "--json")
    (listed,) = json.loads(out)
    assert (listed["oem"], listed["label"], listed["created_by"], listed["revoked"]) == (
        "nimbus",
        "ann@nimbus",
        "ops.eve",
        "-",
    )
    assert token not in out and repo.portal_tokens()[0].token_hash not in out

    assert cli("token", "revoke", str(listed["id"]))[0] == 0
    assert authenticate(repo, token) is None
    code, _, err = cli("token", "revoke", str(listed["id"]))
    assert code == 2 and "already revoked" in err
    code, _, err = cli("token", "revoke", "99")
    assert code == 2 and "no portal token 99" in err


def test_token_for_an_unknown_oem_is_refused(cli, repo):
    code, out, err = cli("token", "issue", "--oem", "nimbuss", "--label", "x")
    assert (code, out) == (2, "")
    assert "OEM 'nimbuss': no such OEM (did you mean 'nimbus'?)" in err
    assert repo.portal_tokens() == []


def test_feedback_recorded_on_behalf(cli, repo):
    code, out, _ = cli(
        "feedback", "record", "--oem", "kestrel", "--category", "required_component",
        "--title", "SAP S/4 connector", "--body", "asked on the QBR call", "--by", "cs.bob",
    )  # fmt: skip
    assert code == 0 and "recorded feedback" in out
    (row,) = repo.feedback(oem_id="kestrel")
    assert (row.category, row.submitted_by, row.recorded_by, row.channel) == (
        "required_component",
        "Kestrel Software Pty Ltd",
        "cs.bob",
        "cli",
    )
    with pytest.raises(SystemExit) as exited:  # argparse: not a category
        cli(
            "feedback",
            "record",
            "--oem",
            "kestrel",
            "--category",
            "wishlist",
            "--title",
            "x",
            "--body",
            "",
            "--by",
            "b",
        )
    assert exited.value.code == 2
    code, _, err = cli(
        "feedback", "record", "--oem", "kestrel", "--category", "use_cases", "--title", " ", "--body", "", "--by", "b"
    )
    assert code == 2 and "needs a title" in err
    assert len(repo.feedback()) == 1


def test_approve_and_reject_on_behalf_are_recorded_as_such(cli, release_24):
    repo = release_24
    code, out, _ = cli("approve", "--oem", "nimbus", "--release", "2026.24", "--change", "CHG-1", "--by", "cs.bob")
    assert code == 0 and "recorded 1 approved decision(s)" in out
    code, _, err = cli("reject", "--oem", "nimbus", "--release", "2026.24", "--by", "cs.bob")
    assert code == 2 and "a rejection needs a comment" in err
    code, _, _ = cli(
        "reject", "--oem", "nimbus", "--release", "2026.24", "--change", "CHG-2", "--by", "cs.bob",
        "--on-behalf-of", "Nina (Nimbus QA)", "--comment", "fails our load test",
    )  # fmt: skip
    assert code == 0
    (event,) = repo.approval_history("nimbus", "CHG-2")
    assert (event.actor, event.recorded_by, event.channel, event.comment) == (
        "Nina (Nimbus QA)",
        "cs.bob",
        "cli",
        "fails our load test",
    )
    assert repo.approval_history("nimbus", "CHG-1")[0].actor == "Nimbus Systems GmbH"
    code, _, err = cli("approve", "--oem", "nimbus", "--release", "2026.24", "--change", "CHG-1", "--by", "cs.bob")
    assert code == 2 and "double submission" in err
    code, _, err = cli("approve", "--oem", "kestrel", "--release", "2026.24", "--by", "cs.bob")
    assert code == 2 and "no changes waiting for sign-off by kestrel" in err
    assert len(repo.approval_history("nimbus", "CHG-1")) == 1


def test_status_as_table_and_json(cli, release_24):
    release_24.set_installed_version("kestrel", "2026.24")
    cli("approve", "--oem", "orbitel", "--release", "2026.24", "--by", "cs.bob")
    code, out, _ = cli("status", "--json")
    assert code == 0
    assert json.loads(out) == {
        "releases": ["2026.24"],
        "oems": {
            "kestrel": {"2026.24": "installed"},
            "nimbus": {"2026.24": "pending"},
            "orbitel": {"2026.24": "approved"},
        },
    }
    code, out, _ = cli("status", "--all")
    lines = out.splitlines()
    assert lines[0].split() == ["oem", "2026.24"]
    assert [line.split() for line in lines[2:]] == [
        ["kestrel", "installed"],
        ["nimbus", "pending"],
        ["orbitel", "approved"],
        ["tundra", "-"],
    ]


def test_commands_need_a_database(monkeypatch, capsys):
    monkeypatch.delenv("RELEASE_TRAIN_DB_URL", raising=False)
    assert main(["status"]) == 2
    assert "pass --db-url or set RELEASE_TRAIN_DB_URL" in capsys.readouterr().err
