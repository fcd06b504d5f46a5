"""The changes of a Jira project: issues resolved in the cut's span, chosen by fix version
and/or JQL (docs/change-sources.md).

- **Search**: Jira Cloud removed ``/rest/api/2/search``; it answers ``/rest/api/3/search/jql``
  one page at a time, each naming the next by ``nextPageToken`` (``isLast`` on the last).
  Jira Server and Data Center answer ``/rest/api/2/search`` with ``startAt``/``total``.
- **Merged** is the issue's ``resolutiondate``. JQL compares dates in the searching user's
  time zone, so the query asks for a day more on each side and the exact ``[since, until)``
  is kept here from the timestamps Jira returns with their offsets.
- **Fields**: key -> id, issue type (``issue_types``; other types are skipped) -> type, the
  first component -> component, summary -> title, the configured ``release_note_field`` ->
  description (on Cloud the ``description`` is a rich-text document, ADF: a rich-text field
  configured here is flattened to its text), the ``breaking_label`` -> breaking, labels
  ``roadmap:<item>`` -> roadmap_items, a label ``reverts:<KEY>`` -> reverts.

An issue the rules cannot read refuses the whole answer, naming the issue and the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pendulum

from release_pipeline.change_feed import ChangeFeedError
from release_pipeline.models import Change, ChangeType
from release_pipeline.vendor import JiraChangeSource

CLOUD_SEARCH = "rest/api/3/search/jql"
SERVER_SEARCH = "rest/api/2/search"
REVERTS_LABEL = "reverts:"
MAX_PAGES = 1000  # a server that never says "last" must not hold the cut forever
Get = Callable[[str, dict[str, Any]], dict]


class JiraChangesError(ChangeFeedError):
    """Jira answered something the release train cannot use."""


def jql(source: JiraChangeSource, release_id: str, since: dt.datetime, until: dt.datetime) -> str:
    """The search: the fix version and/or the configured filter, resolved in the span
    (widened a day each side: JQL dates are in the searching user's time zone)."""
    parts = []
    if source.fix_version:
        version = source.fix_version.replace("{release}", release_id).replace('"', '\\"')
        parts.append(f'fixVersion = "{version}"')
    if source.jql:
        parts.append(f"({source.jql})")
    day = dt.timedelta(days=1)
    parts.append(f'resolutiondate >= "{(since - day):%Y/%m/%d %H:%M}"')
    parts.append(f'resolutiondate < "{(until + day):%Y/%m/%d %H:%M}"')
    return " AND ".join(parts) + " ORDER BY resolutiondate ASC, key ASC"


def fields(source: JiraChangeSource) -> list[str]:
    return ["summary", "issuetype", "components", "labels", "resolutiondate", source.release_note_field]


def issues(source: JiraChangeSource, query: str, get: Get) -> Iterator[dict]:
    """Every issue the search finds, page after page; ``get(path, params)`` answers JSON."""
    params: dict[str, Any] = {"jql": query, "fields": ",".join(fields(source)), "maxResults": source.page_size}
    for _ in range(MAX_PAGES):
        if source.deployment == "cloud":
            page = _page(get(CLOUD_SEARCH, params))
            yield from page["issues"]
            token = page.get("nextPageToken")
            if page.get("isLast", not token) or not token:
                return
            params = {**params, "nextPageToken": token}
        else:
            start = params.get("startAt", 0)
            page = _page(get(SERVER_SEARCH, {**params, "startAt": start}))
            yield from page["issues"]
            start += len(page["issues"])
            if not page["issues"] or start >= int(page.get("total", 0)):
                return
            params = {**params, "startAt": start}
    raise JiraChangesError(f"Jira answer refused: more than {MAX_PAGES} pages")


def _page(answer: Any) -> dict:
    if not isinstance(answer, dict) or not isinstance(answer.get("issues"), list):
        raise JiraChangesError('Jira answer refused: a search page has no "issues" list')
    return answer


def changes_in(
    issues_found: Iterator[dict], source: JiraChangeSource, since: dt.datetime, until: dt.datetime
) -> list[Change]:
    """The changes of the issues resolved in ``[since, until)``; raises
    :class:`JiraChangesError` naming every issue and field it cannot read."""
    changes, problems, seen = [], [], set()
    for position, issue in enumerate(issues_found, start=1):
        key = issue.get("key") if isinstance(issue, dict) else None
        name = f"issue {key!r}" if key else f"issue #{position}"
        try:
            change = _change(issue, source)
        except ValueError as exc:
            problems.append(f"{name}, {exc}")
            continue
        if change is None or not since <= change.merged_at < until or change.id in seen:
            continue  # another type, outside the span, or on two pages (an issue resolved while paging)
        seen.add(change.id)
        changes.append(change)
    if problems:
        raise JiraChangesError("Jira answer refused: " + "; ".join(problems))
    return changes


def _change(issue: Any, source: JiraChangeSource) -> Change | None:
    if not isinstance(issue, dict) or not issue.get("key") or not isinstance(issue.get("fields"), dict):
        raise ValueError("field 'fields': expected an issue with a key and its fields")
    found = issue["fields"]
    issue_type = (found.get("issuetype") or {}).get("name")
    if issue_type not in source.issue_types:
        return None
    components = [c.get("name") for c in found.get("components") or [] if isinstance(c, dict) and c.get("name")]
    if not components:
        raise ValueError("field 'components': the issue names no component")
    title = (found.get("summary") or "").strip()
    if not title or len(title) > 300:
        raise ValueError("field 'summary': " + ("is empty" if not title else "longer than 300 characters"))
    labels = [str(label) for label in found.get("labels") or []]
    reverts = [label.removeprefix(REVERTS_LABEL) for label in labels if label.startswith(REVERTS_LABEL)]
    return Change(
        id=issue["key"],
        type=ChangeType(source.issue_types[issue_type]),
        component=components[0][:100],
        title=title,
        description=_text(found.get(source.release_note_field), source.release_note_field),
        breaking=source.breaking_label in labels,
        merged_at=_moment(found.get("resolutiondate")),
        roadmap_items=tuple(
            dict.fromkeys(
                label.removeprefix(source.roadmap_label_prefix)
                for label in labels
                if label.startswith(source.roadmap_label_prefix)
            )
        ),
        reverts=reverts[0] if reverts else None,
    )


def _moment(value: Any) -> pendulum.DateTime:
    try:  # Jira writes 2026-06-01T10:00:00.000+0000
        moment = dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        raise ValueError(f"field 'resolutiondate': {value!r} is not a resolution timestamp (unresolved?)") from None
    return pendulum.instance(moment).in_timezone("UTC")


def _text(value: Any, field: str) -> str:
    """A release note field: plain text, or a rich-text (ADF) document flattened."""
    if value is None or isinstance(value, str):
        return (value or "").strip()
    if isinstance(value, dict) and value.get("type") == "doc":
        return "\n\n".join(filter(None, (_adf_text(block).strip() for block in value.get("content") or [])))
    raise ValueError(f"field {field!r}: expected text or a rich-text document, got {type(value).__name__}")


def _adf_text(node: dict) -> str:
    if node.get("type") == "text":
        return node.get("text", "")
    if node.get("type") == "hardBreak":
        return "\n"
    joiner = "\n" if node.get("type") in ("bulletList", "orderedList") else ""
    return joiner.join(_adf_text(child) for child in node.get("content") or [] if isinstance(child, dict))
