"""The git change source (``change_source: {kind: git}``) against a real repository built
here with the git binary: a pull request merged with a merge commit (its branch's commits
are not changes), a breaking footer, a ``Change-Id`` footer, skipped types, a revert of the
merge and a revert of a commit inside a merged branch, commit times at the span's edges; read
from the path, from a URL (cloned), and through an Airflow git connection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest
from airflow.sdk.exceptions import AirflowFailException
from hypothesis import given
from hypothesis import strategies as st

from release_pipeline.git_changes import Commit, GitChangesError, changes_in
from release_pipeline.models import ChangeType
from release_pipeline.vendor import GitChangeSource
from release_train_airflow.change_sources import change_feed
from simulator.git_history import run_git

SINCE = pendulum.datetime(2026, 6, 1, 8, tz="UTC")
UNTIL = pendulum.datetime(2026, 6, 15, 8, tz="UTC")


class Git:
    """A repository at ``path``; every commit at the moment given (author and committer)."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir()
        self("init", "--quiet", "--initial-branch=main")

    def __call__(self, *args: str, at: dt.datetime | None = None) -> str:
        return run_git(self.path, *args, at=at)

    def commit(self, message: str, at: dt.datetime) -> str:
        """A commit adding a file of its own (so that a revert has something to undo)."""
        self.files = getattr(self, "files", 0) + 1
        (self.path / f"file-{self.files}.txt").write_text(message)
        self("add", "--all")
        self("commit", "--quiet", "-m", message, at=at)
        return self("rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path):
    """The repository and the shas of its commits, by name."""
    git, sha = Git(tmp_path / "platform"), {}
    sha["init"] = git.commit("chore: initial commit", SINCE - dt.timedelta(days=3))
    sha["before"] = git.commit("feat(api): merged before the span", SINCE - dt.timedelta(seconds=1))
    git("checkout", "--quiet", "-b", "webhooks")
    sha["branch_feat"] = git.commit("feat(api): sign webhooks", SINCE + dt.timedelta(hours=1))
    sha["branch_test"] = git.commit("test(api): cover signatures", SINCE + dt.timedelta(hours=2))
    git("checkout", "--quiet", "main")
    git(
        "merge",
        "--quiet",
        "--no-ff",
        "webhooks",
        "-m",
        "Merge pull request #12 from dev/webhooks\n\nfeat(api)!: signed webhooks\n\n"
        "Every webhook carries a signature header.\n\nRefs: webhook-signing, #41",
        at=SINCE,  # merged exactly at since: in the span
    )
    sha["merge"] = git("rev-parse", "HEAD")
    sha["fix"] = git.commit(
        "fix(billing): round totals to cents\n\nTotals were off by a cent.\n\n"
        "BREAKING CHANGE: totals are rounded half-even\nChange-Id: I8f3c2a",
        SINCE + dt.timedelta(days=1),
    )
    git.commit("ci: faster pipeline", SINCE + dt.timedelta(days=2))
    sha["perf"] = git.commit("perf(search): cache the index", SINCE + dt.timedelta(days=3))
    git("checkout", "--quiet", "-b", "exports")
    sha["exports"] = git.commit("feat(exports): CSV exports", SINCE + dt.timedelta(days=3, hours=1))
    git("checkout", "--quiet", "main")
    git(
        "merge",
        "--quiet",
        "--no-ff",
        "exports",
        "-m",
        "feat(exports): exports as CSV (#13)",
        at=SINCE + dt.timedelta(days=4),
    )
    sha["exports_merge"] = git("rev-parse", "HEAD")
    git("revert", "--no-edit", "-m", "1", sha["merge"], at=SINCE + dt.timedelta(days=5))
    sha["revert_merge"] = git("rev-parse", "HEAD")
    git("revert", "--no-edit", sha["exports"], at=SINCE + dt.timedelta(days=6))  # a commit inside a PR
    sha["revert_exports"] = git("rev-parse", "HEAD")
    sha["after"] = git.commit("feat(api): merged at until", UNTIL)
    return git, sha


def source(repository, **fields) -> GitChangeSource:
    return GitChangeSource(kind="git", repository=str(repository), **fields)


def test_one_change_per_first_parent_commit_in_the_span(history):
    git, sha = history
    changes = {c.id: c for c in change_feed("2026.24", source(git.path))(SINCE, UNTIL)}
    short = {name: value[:12] for name, value in sha.items()}
    assert sorted(changes) == sorted(
        [
            short["merge"],
            "I8f3c2a",
            short["perf"],
            short["exports_merge"],
            short["revert_merge"],
            short["revert_exports"],
        ]
    )
    # the merge is the pull request: its title and body, not the branch's commits
    merged = changes[short["merge"]]
    assert (merged.type, merged.component, merged.title, merged.breaking) == (
        ChangeType.FEATURE,
        "api",
        "signed webhooks",
        True,
    )
    assert merged.description == "Every webhook carries a signature header."
    assert merged.roadmap_items == ("webhook-signing",)  # "#41" is a ticket, not a roadmap item
    assert merged.merged_at == SINCE
    fix = changes["I8f3c2a"]  # the Change-Id footer is the id
    assert (fix.type, fix.component, fix.breaking, fix.description) == (
        ChangeType.FIX,
        "billing",
        True,
        "Totals were off by a cent.",
    )
    assert changes[short["perf"]].type == ChangeType.IMPROVEMENT and not changes[short["perf"]].breaking
    assert changes[short["exports_merge"]].title == "exports as CSV (#13)"  # a squash-style merge subject
    # git revert of the merge, and of a commit inside the merged exports branch
    assert changes[short["revert_merge"]].reverts == short["merge"]
    assert changes[short["revert_merge"]].title == "Revert: signed webhooks"
    assert changes[short["revert_merge"]].component == "api"
    assert changes[short["revert_exports"]].reverts == short["exports_merge"]
    assert all(SINCE <= c.merged_at < UNTIL for c in changes.values())


def test_the_spans_of_consecutive_cuts_take_each_commit_once(history):
    git, _ = history
    feed = change_feed("2026.24", source(git.path))
    middle = SINCE + dt.timedelta(days=3)
    before, after = feed(SINCE, middle), feed(middle, UNTIL)
    whole = feed(SINCE, UNTIL)
    assert sorted(c.id for c in before + after) == sorted(c.id for c in whole)
    assert not {c.id for c in before} & {c.id for c in after}


def test_a_url_is_cloned_and_a_git_connection_supplies_it(history, monkeypatch):
    git, sha = history
    expected = sorted(c.id for c in change_feed("2026.24", source(git.path))(SINCE, UNTIL))
    assert sorted(c.id for c in change_feed("2026.24", source(f"file://{git.path}"))(SINCE, UNTIL)) == expected
    # credentials come from an Airflow connection of type git (the git provider's GitHook)
    monkeypatch.setenv("AIRFLOW_CONN_PLATFORM_GIT", f'{{"conn_type": "git", "host": "file://{git.path}"}}')
    through_hook = change_feed("2026.24", source(f"file://{git.path}", connection="platform_git"))(SINCE, UNTIL)
    assert sorted(c.id for c in through_hook) == expected


def test_a_commit_the_rules_cannot_read_refuses_the_answer_naming_commit_and_field(history):
    git, _ = history
    bad = git.commit("feet(api): typo in the type", SINCE + dt.timedelta(days=7))
    unscoped = git.commit("fix: no scope", SINCE + dt.timedelta(days=8))
    with pytest.raises(AirflowFailException) as refused:
        change_feed("2026.24", source(git.path))(SINCE, UNTIL)
    message = str(refused.value)
    assert message.startswith("release 2026.24: git change source refused: ")
    assert message.endswith("; nothing of this release was recorded")
    assert f"commit {bad[:12]} ('feet(api): typo in the type'), field 'type': unknown commit type 'feet'" in message
    assert "did you mean 'feat'" in message
    assert f"commit {unscoped[:12]} ('fix: no scope'), field 'scope'" in message
    # with a default component an unscoped commit is read; the typo still refuses
    with pytest.raises(AirflowFailException, match="field 'type'") as refused:
        change_feed("2026.24", source(git.path, default_component="platform"))(SINCE, UNTIL)
    assert "field 'scope'" not in str(refused.value)


def test_a_revert_of_a_commit_outside_the_main_branch_is_refused(history):
    git, _ = history
    git("checkout", "--quiet", "-b", "elsewhere")
    stray = git.commit("feat(api): never merged", SINCE + dt.timedelta(days=7))
    git("checkout", "--quiet", "main")
    git.commit(f'Revert "feat(api): never merged"\n\nThis reverts commit {stray}.', SINCE + dt.timedelta(days=8))
    with pytest.raises(AirflowFailException, match=rf"field 'reverts': commit {stray} is not in the history"):
        change_feed("2026.24", source(git.path))(SINCE, UNTIL)


def test_a_missing_repository_or_branch_reads_like_the_feed(tmp_path, history):
    git, _ = history
    with pytest.raises(AirflowFailException, match=r"^release 2026.24: git change source refused: repository "):
        change_feed("2026.24", source(tmp_path / "nowhere"))(SINCE, UNTIL)
    with pytest.raises(AirflowFailException, match=r"branch 'trunk' of .*; nothing of this release was recorded$"):
        change_feed("2026.24", source(git.path, branch="trunk"))(SINCE, UNTIL)


# the rule, over any header: what the header says is what the change says
_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(lambda w: w[0] != "-")


@given(
    kind=st.sampled_from(["feat", "fix", "perf", "refactor", "chore", "docs", "ci", "test", "build", "style"]),
    scope=_WORD,
    bang=st.booleans(),
    subject=st.text(alphabet="abcdefghij XYZ0123.,", min_size=1, max_size=60).map(str.strip).filter(bool),
    footer=st.booleans(),
    minutes=st.integers(-60 * 24, 60 * 24 * 20),
)
def test_a_header_says_type_scope_and_breaking(kind, scope, bang, subject, footer, minutes):
    at = SINCE + dt.timedelta(minutes=minutes)
    message = f"{kind}({scope}){'!' if bang else ''}: {subject}\n\nBody.\n\n" + (
        "BREAKING CHANGE: it breaks" if footer else "Refs: item-one"
    )
    commit = Commit("ab" * 20, ("cd" * 20,), at, message)
    changes = changes_in([commit], SINCE, UNTIL, source("/srv/platform"), merged_by=lambda _: None)
    if kind in ("chore", "docs", "ci", "test", "build", "style") or not SINCE <= at < UNTIL:
        assert changes == []
        return
    (change,) = changes
    assert change.id == "abababababab" and change.component == scope and change.title == subject
    assert change.type == {"feat": "feature", "fix": "fix"}.get(kind, "improvement")
    assert change.breaking is (bang or footer)
    assert change.roadmap_items == (() if footer else ("item-one",))


def test_a_revert_without_its_reverted_commit_line_names_the_field():
    commit = Commit("ef" * 20, ("cd" * 20,), SINCE, 'Revert "feat(api): x"\n\nIt was wrong.')
    with pytest.raises(GitChangesError, match=r"commit efefefefefef \('Revert \"feat\(api\): x\"'\), field 'reverts'"):
        changes_in([commit], SINCE, UNTIL, source("/srv/platform"), merged_by=lambda _: None)


def test_the_source_says_which_types_are_changes():
    """A vendor that marks new components with a type of its own maps it; a type it does not
    name refuses the answer, so that a typo never drops a change."""
    commit = Commit("ab" * 20, ("cd" * 20,), SINCE, "component(runtime)!: Runtime on Java 21")
    with pytest.raises(GitChangesError, match="unknown commit type 'component'"):
        changes_in([commit], SINCE, UNTIL, source("/srv/platform"), merged_by=lambda _: None)
    mapped = source("/srv/platform", types={"feat": "feature", "component": "component"})
    (change,) = changes_in([commit], SINCE, UNTIL, mapped, merged_by=lambda _: None)
    assert (change.type, change.component, change.breaking) == (ChangeType.COMPONENT, "runtime", True)
    skipping = source("/srv/platform", skipped_types=("component",))
    assert changes_in([commit], SINCE, UNTIL, skipping, merged_by=lambda _: None) == []


def test_the_config_check_asks_for_the_change_sources_connection(monkeypatch):
    from release_pipeline.registry import load_registry
    from release_train_airflow.checks import missing_connections

    monkeypatch.delenv("AIRFLOW_CONN_CHANGE_FEED", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_PLATFORM_GIT", raising=False)
    registry = load_registry()
    with_feed = missing_connections(registry)  # the HTTP feed, config/vendor.yaml's default
    assert "change_feed (needed by the change source (http))" in with_feed
    through_git = missing_connections(registry, source("https://git.example/p.git", connection="platform_git"))
    assert "platform_git (needed by the change source (git))" in through_git
    assert not any(m.startswith("change_feed ") for m in through_git)
    assert not any("change source" in m for m in missing_connections(registry, source("/srv/platform")))
