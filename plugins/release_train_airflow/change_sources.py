"""The change source ``config/vendor.yaml`` names (``change_source``), as a feed: the changes
merged in ``[since, until)`` (docs/change-sources.md). Whatever the source, an answer the
release train cannot use fails the task with the same sentence: ``release <id>: <what,
naming the change/commit/issue and the field>; nothing of this release was recorded``."""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

from airflow.sdk.exceptions import AirflowFailException

from release_pipeline.change_feed import ChangeFeedError, parse_changes
from release_pipeline.cut import Feed
from release_pipeline.git_changes import Commit, GitChangesError
from release_pipeline.git_changes import changes_in as git_changes_in
from release_pipeline.jira_changes import JiraChangesError, issues, jql
from release_pipeline.jira_changes import changes_in as jira_changes_in
from release_pipeline.models import Change
from release_pipeline.vendor import ChangeSource, GitChangeSource, HttpChangeSource, JiraChangeSource, load_vendor


def change_feed(release_id: str, source: ChangeSource | None = None) -> Feed:
    """The configured change source (``source``: the vendor config's by default) as a feed."""
    source = source if source is not None else load_vendor().change_source
    read = {HttpChangeSource: _http, GitChangeSource: _git, JiraChangeSource: _jira}[type(source)]

    def fetch(since: dt.datetime, until: dt.datetime) -> list[Change]:
        try:
            return read(source, release_id, since, until)
        except ChangeFeedError as exc:
            raise AirflowFailException(f"release {release_id}: {exc}; nothing of this release was recorded") from None

    return fetch


def _http(source: HttpChangeSource, release_id: str, since: dt.datetime, until: dt.datetime) -> list[Change]:
    from airflow.providers.http.hooks.http import HttpHook

    response = HttpHook("GET", http_conn_id="change_feed").run(
        "changes", data={"since": since.isoformat(), "until": until.isoformat()}, extra_options={"timeout": 60}
    )
    return parse_changes(response.content)


def _git(source: GitChangeSource, release_id: str, since: dt.datetime, until: dt.datetime) -> list[Change]:
    from git import BadName, GitCommandError

    with _repository(source) as repo:
        try:
            first_parent = [
                Commit(c.hexsha, tuple(p.hexsha for p in c.parents), c.committed_datetime, c.message)
                for c in repo.iter_commits(source.branch, first_parent=True)
            ]
        except (GitCommandError, ValueError) as exc:
            raise GitChangesError(
                f"git change source refused: branch {source.branch!r} of {source.repository}: {_git_error(exc)}"
            ) from None
        position = {c.sha: i for i, c in enumerate(first_parent)}  # newest first

        def merged_by(sha: str) -> Commit | None:
            """The first-parent commit that brought ``sha`` in: the oldest one that has it
            as an ancestor (ancestry only grows along the first-parent chain)."""
            try:
                full = repo.commit(sha).hexsha
            except (BadName, ValueError, GitCommandError):
                return None
            if full in position:
                return first_parent[position[full]]
            if not first_parent or not repo.is_ancestor(full, first_parent[0].sha):
                return None
            low, high = 0, len(first_parent) - 1
            while low < high:  # find the last index (oldest) whose commit holds ``full``
                middle = (low + high + 1) // 2
                if repo.is_ancestor(full, first_parent[middle].sha):
                    low = middle
                else:
                    high = middle - 1
            return first_parent[low]

        return git_changes_in(first_parent, since, until, source, merged_by=merged_by)


@contextlib.contextmanager
def _repository(source: GitChangeSource) -> Iterator:
    """The repository to read: a local path as it is; a URL cloned (commits only, no file
    contents) into a temporary directory with the connection's credentials."""
    from git import GitCommandError, InvalidGitRepositoryError, NoSuchPathError, Repo

    try:
        if source.connection is None and Path(source.repository).expanduser().is_dir():
            yield Repo(Path(source.repository).expanduser())
            return
        hook = None
        if source.connection is not None:
            from airflow.providers.git.hooks.git import GitHook

            hook = GitHook(git_conn_id=source.connection, repo_url=source.repository)
        with tempfile.TemporaryDirectory(prefix="release-train-git-") as clone:
            with hook.configure_hook_env() if hook else contextlib.nullcontext():
                repo = Repo.clone_from(
                    hook.repo_url if hook else source.repository,
                    clone,
                    env=hook.env if hook else None,
                    multi_options=["--bare", "--filter=blob:none", "--single-branch", f"--branch={source.branch}"],
                )
            yield repo
    except (GitCommandError, InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise GitChangesError(f"git change source refused: repository {source.repository}: {_git_error(exc)}") from None


def _git_error(exc: Exception) -> str:
    return (getattr(exc, "stderr", "") or str(exc)).strip().removeprefix("stderr: ").strip("'\" \n") or type(
        exc
    ).__name__


def _jira(source: JiraChangeSource, release_id: str, since: dt.datetime, until: dt.datetime) -> list[Change]:
    from requests import RequestException

    client = _jira_client(source)
    try:
        found = list(
            issues(source, jql(source, release_id, since, until), lambda path, params: client.get(path, params=params))
        )
    except RequestException as exc:
        raise JiraChangesError(
            f"Jira search failed (connection {source.connection!r}, {source.deployment}): {exc}"
        ) from None
    return jira_changes_in(iter(found), source, since, until)


def _jira_client(source: JiraChangeSource):
    """The provider's client with the connection's login and API token; on Cloud marked
    ``cloud`` (its v3 search); on Server/Data Center with a personal access token (a Bearer
    token, which the provider's hook does not offer) when the source says so."""
    from airflow.providers.atlassian.jira.hooks.jira import JiraHook

    if source.personal_access_token:
        from airflow.sdk import BaseHook
        from atlassian import Jira

        conn = BaseHook.get_connection(source.connection)
        verify = conn.extra_dejson.get("verify", True)
        return Jira(url=conn.host, token=conn.password, verify_ssl=verify, api_version="2")
    client = JiraHook(
        jira_conn_id=source.connection, api_version="3" if source.deployment == "cloud" else "2"
    ).get_conn()
    client.cloud = source.deployment == "cloud"
    return client
