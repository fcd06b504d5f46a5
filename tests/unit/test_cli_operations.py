"""The operator CLI's staff commands, on both release databases: what they record, what
they print, and that bad input exits 2 with a message and writes nothing."""

import json

import pendulum
import pytest
import time_machine

from release_pipeline.cli import main
from release_pipeline.models import ReleaseStatus
from release_pipeline.tokens import authenticate
from tests.builders import cut


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
    answer = json.loads(out)
    assert {k: answer[k] for k in ("releases", "oems")} == {
        "releases": ["2026.24"],
        "oems": {
            "kestrel": {"2026.24": "installed"},
            "nimbus": {"2026.24": "pending"},
            "orbitel": {"2026.24": "approved"},
        },
    }
    # and each OEM's answer to "where is it and why" (release-train explain)
    assert sorted(answer["explain"]) == ["kestrel", "nimbus", "orbitel"]
    assert answer["explain"]["kestrel"]["running"] == "2026.24"
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


def test_tokens_expire_and_rotate(cli, repo):
    code, out, err = cli(
        "token", "issue", "--oem", "nimbus", "--label", "ann@nimbus", "--by", "ops.eve", "--days", "30"
    )
    assert code == 0 and "valid until" in err
    old = out.strip()
    (row,) = repo.portal_tokens()
    assert 29 <= (row.expires_at - row.created_at).days <= 30
    code, out, err = cli("token", "rotate", str(row.id), "--by", "ops.eve")
    assert code == 0 and f"replaces token {row.id}" in err
    new = out.strip()
    assert authenticate(repo, old) is None and authenticate(repo, new).label == "ann@nimbus"
    code, out, _ = cli("token", "list", "--json")
    listed = json.loads(out)
    assert [(r["id"], r["state"]) for r in listed] == [(row.id, "revoked"), (row.id + 1, "active")]
    assert all(r["expires"] != "-" for r in listed)
    new_row = repo.portal_tokens()[1]
    assert 89 <= (new_row.expires_at - new_row.created_at).days <= 90  # the default
    code, out, err = cli("token", "rotate", str(row.id))
    assert (code, out) == (2, "") and "is revoked: issue a new one" in err
    assert cli("token", "rotate", "99")[2] == "error: no portal token 99\n"
    code, _, err = cli("token", "issue", "--oem", "nimbus", "--label", "x", "--days", "0")
    assert code == 2 and "--days" in err
    code, out, _ = cli("token", "list")
    assert out.splitlines()[0].split() == [
        "id", "oem", "label", "created_by", "created", "last_used", "expires", "revoked", "state"
    ]  # fmt: skip


def test_an_expired_token_is_listed_as_such_and_can_be_rotated(cli, repo):
    import pendulum

    from release_pipeline.tokens import issue_token

    issued = issue_token(
        repo, oem_id="kestrel", label="kim", created_by="t", now=pendulum.now("UTC").subtract(days=100)
    )
    assert authenticate(repo, issued.token) is None
    assert json.loads(cli("token", "list", "--json")[1])[0]["state"] == "expired"
    code, out, _ = cli("token", "rotate", str(issued.id), "--by", "ops")
    assert code == 0 and authenticate(repo, out.strip()).oem_id == "kestrel"


DECIDE = ["approve", "--oem", "nimbus", "--release", "2026.24"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*DECIDE, "--by", ""], "--by: a value is required"),
        ([*DECIDE, "--by", "   "], "--by: a value is required (it is blank)"),
        ([*DECIDE, "--by", "b" * 101], "--by: at most 100 characters (101 given)"),
        ([*DECIDE, "--by", "bob\x1b[31m"], "--by: control character '\\x1b' is not allowed"),
        ([*DECIDE, "--by", "bob", "--on-behalf-of", " "], "--on-behalf-of: a value is required"),
        ([*DECIDE, "--by", "bob", "--comment", "c" * 4001], "--comment: at most 4000 characters"),
        ([*DECIDE, "--by", "bob", "--comment", "\u200b"], "--comment: invisible character U+200B (ZERO WIDTH SPACE)"),
        ([*DECIDE, "--by", "b\u202eob"], "--by: invisible character U+202E"),
        ([*DECIDE, "--by", "bob", "--change", "CHG-1\x00"], "--change: control character '\\x00'"),
        ([*DECIDE, "--by", "bob", "--change", "C" * 65], "--change: at most 64 characters"),
        ([*DECIDE, "--by", "bob", "--change", "CHG-9"], "change 'CHG-9' is not among the changes"),
        (["approve", "--oem", "nimbus", "--release", "2026.24" * 50, "--by", "b"], "--release: at most 7"),
        (["approve", "--oem", "nimbus", "--release", "latest", "--by", "b"], "--release: 'latest' is not a release id"),
        (["approve", "--oem", "nimbus", "--release", "2099.01", "--by", "b"], "2099.01 has no changes waiting"),
        (["approve", "--oem", "n" * 500, "--release", "2026.24", "--by", "b"], "no such OEM"),
        (["reject", "--oem", "nimbus", "--release", "2026.24", "--by", ""], "--by: a value is required"),
        (["token", "issue", "--oem", "nimbus", "--label", "x", "--by", " "], "--by: a value is required"),
        (["token", "issue", "--oem", "nimbus", "--label", "l" * 101], "--label: at most 100 characters"),
        (["token", "issue", "--oem", "nimbus", "--label", "a\x00b"], "--label: control character"),
        (["token", "rotate", "1", "--by", ""], "--by: a value is required"),
        (["token", "revoke", "12345"], "no portal token 12345"),
        (
            ["feedback", "record", "--oem", "kestrel", "--category", "use_cases", "--title", "t" * 301,
             "--body", "", "--by", "cs"],
            "--title: at most 300 characters",
        ),
        (
            ["feedback", "record", "--oem", "kestrel", "--category", "use_cases", "--title", "t",
             "--body", "b\x00", "--by", "cs"],
            "--body: control character",
        ),
        (
            ["feedback", "record", "--oem", "kestrel", "--category", "use_cases", "--title", "t",
             "--body", "", "--by", ""],
            "--by: a value is required",
        ),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_writes_nothing(cli, release_24, argv, message):
    repo = release_24
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err
    assert [repo.approval_history(o, c) for o in ("nimbus", "orbitel") for c in ("CHG-1", "CHG-2")] == [[]] * 4
    assert repo.portal_tokens() == [] and repo.feedback() == []


def test_multi_line_comments_are_accepted(cli, release_24):
    code, _, _ = cli(*DECIDE, "--by", "cs.bob", "--comment", "checked:\n\tall fine")
    assert code == 0
    assert release_24.approval_history("nimbus", "CHG-1")[0].comment == "checked:\n\tall fine"


def test_explain_says_where_an_oem_stands_and_why(cli, repo, calendar):
    with time_machine.travel(pendulum.datetime(2026, 11, 10, 12, tz="UTC"), tick=False):
        for release_id, changes in (("2026.18", ()), ("2026.20", ("CHG-1",)), ("2026.22", ("CHG-2", "CHG-3"))):
            cut(repo, calendar, release_id, *changes)
            repo.set_release_status(release_id, ReleaseStatus.DEPLOYED, actor="test")
            repo.request_approvals(release_id, ["nimbus"])
        repo.set_installed_version("nimbus", "2026.18")
        cli("approve", "--oem", "nimbus", "--release", "2026.20", "--by", "cs.bob")
        cli(
            "reject", "--oem", "nimbus", "--release", "2026.22", "--change", "CHG-2", "--by", "cs.bob",
            "--on-behalf-of", "Nina", "--comment", "breaks our SSO",
        )  # fmt: skip
        code, out, _ = cli("explain", "nimbus", "--json")
        assert code == 0
        answer = json.loads(out)
        assert (answer["running"], answer["aims_at"]) == ("2026.18", "2026.22")
        assert [(r["release"], r["state"]) for r in answer["releases"]] == [
            ("2026.20", "approved"),
            ("2026.22", "rejected"),
        ]
        assert answer["releases"][1]["rejected"] == [{"change": "CHG-2", "by": "Nina", "comment": "breaks our SSO"}]
        assert answer["releases"][1]["pending"] == ["CHG-3"]
        assert answer["next"].startswith("installs 2026.20 on Tuesday 10 November 2026 13:00 (Europe/Berlin); 2026.22")
        code, out, _ = cli("explain", "nimbus")
        assert "  2026.22: rejected (CHG-2 rejected by Nina: breaks our SSO; awaiting sign-off of CHG-3)" in out
        # every time shown the way the rest of the output shows it, not as a raw ISO timestamp
        assert out.startswith(
            "nimbus: runs 2026.18; next install day Tuesday 10 November 2026 13:00 (Europe/Berlin)\n"
        ), out
        code, _, err = cli("explain", "acme")
        assert code == 2 and "no such OEM" in err


def test_a_feed_token_is_issued_listed_rotated_and_revoked(cli, repo):
    """``token issue --feed``: a read-only token for the install calendar, valid a year by
    default, told with the URL to subscribe to; the portal's pages and API refuse it."""
    code, out, err = cli("token", "issue", "--oem", "nimbus", "--label", "ops calendar", "--feed", "--by", "ops.eve")
    assert code == 0 and "feed token" in err and "calendar.ics?token=<the token above>" in err
    token = out.strip()
    assert token.startswith("rtc_")
    assert authenticate(repo, token, kind="feed").oem_id == "nimbus"
    assert authenticate(repo, token) is None  # not a portal token
    (row,) = repo.portal_tokens()
    assert (row.kind, row.approver) == ("feed", None)
    assert 365 <= (row.expires_at - row.created_at).days <= 366

    code, out, _ = cli("token", "list", "--json")
    assert [(r["id"], r["kind"], r["state"]) for r in json.loads(out)] == [(row.id, "feed", "active")]
    assert token not in out
    assert "ops calendar [calendar feed]" in cli("token", "list")[1]

    code, out, err = cli("token", "rotate", str(row.id), "--by", "ops.eve", "--days", "30")
    assert code == 0 and f"replaces token {row.id}" in err
    rotated = out.strip()
    assert rotated.startswith("rtc_") and authenticate(repo, token, kind="feed") is None
    assert authenticate(repo, rotated, kind="feed").label == "ops calendar"
    assert cli("token", "revoke", str(row.id + 1))[0] == 0
    assert authenticate(repo, rotated, kind="feed") is None


def test_a_feed_token_speaks_for_no_approver(cli, repo):
    code, out, err = cli("token", "issue", "--oem", "nimbus", "--label", "x", "--feed", "--approver", "Olga Berg")
    assert (code, out) == (2, "") and "--feed: a feed token only reads the install calendar" in err
    assert repo.portal_tokens() == []
