"""The changes of a git repository whose main branch follows Conventional Commits
(https://www.conventionalcommits.org/en/v1.0.0/): one change per commit of the main branch's
first-parent history, merged when that commit was committed (docs/change-sources.md).

- **Merge commits are the merged pull request**: a merge whose subject is git's or a forge's
  (``Merge pull request #12 from ...``, ``Merge branch '...'``) takes its Conventional
  Commits header from the first line of its body, where GitHub and GitLab put the PR title;
  any other merge subject (a forge configured to use the PR title) is read as the header.
  The commits of the merged branch are not changes of their own.
- **Type** (the source's ``types``, by default): ``feat`` -> feature, ``fix`` -> fix,
  ``perf`` and ``refactor`` -> improvement. Types nobody outside engineering sees
  (``skipped_types``: ``build``, ``chore``, ``ci``, ``docs``, ``style``, ``test``) are
  skipped; any other type refuses the answer (a typo must not drop a change).
- **Scope** -> component (the source's ``default_component`` when there is none);
  ``!`` or a ``BREAKING CHANGE:`` footer -> breaking; ``Refs:`` footer entries that are
  roadmap item ids -> roadmap_items (other references, ``#123`` or ``JIRA-7``, are left).
- **Reverts**: git's ``Revert "..."`` with ``This reverts commit <sha>.`` (or a
  ``revert: ...`` commit with that line) reverts the change that commit belongs to: the
  first-parent commit that brought it into the main branch (the pull request's merge, for a
  commit of the merged branch). It takes that change's type and scope, is titled
  ``Revert: <its subject>``, and is skipped when that type is.
- **Change id**: a ``Change-Id:`` footer (Gerrit) if present, else the first 12 hex digits
  of the commit's sha (stable whatever the repository grows to, unlike ``--short``).

A commit the rules cannot read refuses the whole answer, naming the commit and the field,
like a malformed change feed answer: a release is never cut from half a history.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pendulum

from release_pipeline.change_feed import ChangeFeedError
from release_pipeline.config_loading import did_you_mean
from release_pipeline.models import Change, ChangeType
from release_pipeline.roadmap import ITEM_ID_PATTERN
from release_pipeline.vendor import GitChangeSource

SHA_DIGITS = 12

_HEADER = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?: (?P<subject>\S.*)$")
_FOOTER = re.compile(r"^(?P<token>BREAKING[ -]CHANGE|[A-Za-z][A-Za-z0-9-]*)(?:: | #)(?P<value>.*)$")
_MERGE_SUBJECT = re.compile(r"^Merge (pull request #\d+ from \S+|branch '[^']+'.*|remote-tracking branch '[^']+'.*)$")
_REVERT_SUBJECT = re.compile(r'^Revert "(?P<header>.+)"$')
_REVERTS_LINE = re.compile(r"^This reverts commit (?P<sha>[0-9a-fA-F]{7,40})\b.*$", re.MULTILINE)
_ROADMAP_ITEM = re.compile(ITEM_ID_PATTERN)


class GitChangesError(ChangeFeedError):
    """The repository's history holds a commit the release train cannot read."""


@dataclass(frozen=True)
class Commit:
    """One commit of the main branch's first-parent history, as git reports it."""

    sha: str
    parents: tuple[str, ...]
    committed_at: dt.datetime
    message: str


@dataclass(frozen=True)
class Message:
    """A commit message taken apart: the header line, the body, the footers."""

    header: str
    body: str
    footers: tuple[tuple[str, str], ...]

    def footer(self, *tokens: str) -> list[str]:
        return [value for token, value in self.footers if token in tokens]


def split_message(message: str, *, merge: bool = False) -> Message:
    """Header, body and footers; for a merge with git's or a forge's subject, the header
    is the first line of the body (the pull request's title)."""
    lines = message.strip().splitlines()
    if merge and lines and _MERGE_SUBJECT.match(lines[0]):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    header, rest = (lines[0].strip() if lines else ""), "\n".join(lines[1:]).strip()
    paragraphs = re.split(r"\n\s*\n", rest) if rest else []
    footers: list[tuple[str, str]] = []
    if paragraphs and _FOOTER.match(paragraphs[-1].splitlines()[0]):
        for line in paragraphs.pop().splitlines():
            if found := _FOOTER.match(line):
                footers.append(
                    (
                        found["token"].replace("-", " ") if found["token"].startswith("BREAKING") else found["token"],
                        found["value"].strip(),
                    )
                )
            elif footers:  # a footer's value goes on over several lines
                token, value = footers[-1]
                footers[-1] = (token, f"{value}\n{line.strip()}".strip())
    return Message(header, "\n\n".join(paragraphs), tuple(footers))


def change_id(commit_sha: str, message: Message) -> str:
    """A commit's change id: its ``Change-Id:`` footer, else its sha's first 12 digits."""
    given = message.footer("Change-Id")
    return given[0] if given else commit_sha[:SHA_DIGITS].lower()


def changes_in(
    commits: Iterable[Commit],
    since: dt.datetime,
    until: dt.datetime,
    source: GitChangeSource,
    *,
    merged_by: Callable[[str], Commit | None],
) -> list[Change]:
    """The changes of the first-parent ``commits`` committed in ``[since, until)``.

    ``merged_by(sha)`` is the first-parent commit that brought ``sha`` (full or abbreviated)
    into the main branch (itself when it is one), None when none did: it names the change a
    revert reverts. Raises :class:`GitChangesError` naming every commit it cannot read."""
    changes, problems, seen = [], [], {}
    for commit in commits:
        if not since <= commit.committed_at < until:
            continue
        message = split_message(commit.message, merge=len(commit.parents) > 1)
        name = f"commit {commit.sha[:SHA_DIGITS]} ({message.header[:60]!r})"
        try:
            change = _change(commit, message, merged_by, source)
        except ValueError as exc:
            problems.append(f"{name}, {exc}")
            continue
        if change is None:
            continue
        if change.id in seen:
            problems.append(f"{name}, field 'Change-Id': {change.id!r} is also commit {seen[change.id][:SHA_DIGITS]}'s")
            continue
        seen[change.id] = commit.sha
        changes.append(change)
    if problems:
        raise GitChangesError("git change source refused: " + "; ".join(problems))
    return sorted(changes, key=lambda c: (c.merged_at, c.id))


def _change(commit: Commit, message: Message, merged_by, source: GitChangeSource) -> Change | None:
    reverts, header = None, message.header
    revert = _REVERT_SUBJECT.match(header) or (re.match(r"^revert: (?P<header>.+)$", header))
    if revert:  # it takes the type and scope of the change it reverts
        sha = _REVERTS_LINE.search(commit.message)
        if sha is None:
            raise ValueError("field 'reverts': a revert needs a 'This reverts commit <sha>.' line")
        reverted = merged_by(sha["sha"])
        if reverted is None:
            raise ValueError(f"field 'reverts': commit {sha['sha']} is not in the history of the main branch")
        reverted_message = split_message(reverted.message, merge=len(reverted.parents) > 1)
        header, reverts = reverted_message.header, change_id(reverted.sha, reverted_message)
    parsed = _HEADER.match(header)
    if parsed is None:
        raise ValueError("field 'type': the header is not a Conventional Commits header '<type>(<scope>)!: <subject>'")
    kind = parsed["type"].lower()
    if kind in source.skipped_types:
        return None
    if kind not in source.types:
        known = sorted(source.types) + sorted(source.skipped_types)
        raise ValueError(
            f"field 'type': unknown commit type {kind!r}{did_you_mean(kind, known)}; expected one of {known}"
        )
    component = (parsed["scope"] or "").strip() or source.default_component
    if not component:
        raise ValueError("field 'scope': no scope names the component, and the source has no default_component")
    subject = parsed["subject"].strip()
    title = f"Revert: {subject}" if revert else subject
    if len(title) > 300 or len(component) > 100:
        raise ValueError(
            "field 'subject': longer than 300 characters"
            if len(title) > 300
            else "field 'scope': longer than 100 characters"
        )
    refs = [ref.strip() for value in message.footer("Refs") for ref in value.split(",")]
    description = _REVERTS_LINE.sub("", message.body).strip() if revert else message.body
    return Change(
        id=change_id(commit.sha, message),
        type=ChangeType(source.types[kind]),
        component=component,
        title=title,
        description=description,
        breaking=bool(parsed["bang"]) or bool(message.footer("BREAKING CHANGE")),
        merged_at=pendulum.instance(commit.committed_at).in_timezone("UTC"),
        roadmap_items=tuple(dict.fromkeys(r for r in refs if _ROADMAP_ITEM.match(r))),
        reverts=reverts,
    )
