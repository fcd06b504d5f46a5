"""Every text the release train sends or publishes, rendered from Jinja2 templates into
Markdown and HTML, white-labelled for its audience.

One path for all of them: :func:`render` passes every piece of text it is given through
the audience's white-label step (:mod:`release_pipeline.notes.whitelabel`). The guard
that holds a leaking text runs where texts leave: the send path
(``release_train_airflow.outbound``) and the portal.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from release_pipeline.ledger import carried, carrier
from release_pipeline.models import Change, ChangeType
from release_pipeline.notes.whitelabel import BrandingLeak, Guard, Leak, Whitelabel
from release_pipeline.registry import Oem
from release_pipeline.vendor import VendorConfig

if TYPE_CHECKING:
    from release_pipeline.release_calendar import ReleaseCalendar

__all__ = [
    "Audience",
    "BrandingLeak",
    "Guard",
    "Leak",
    "Rendered",
    "ReleaseNotesInput",
    "Whitelabel",
    "markdown_text",
    "release_sections",
    "render",
    "render_release_notes",
]

TEMPLATES = Path(__file__).parent / "templates"

GROUPS = (
    (ChangeType.FEATURE, "New features"),
    (ChangeType.IMPROVEMENT, "Improvements"),
    (ChangeType.FIX, "Fixes"),
    (ChangeType.COMPONENT, "Component changes"),
)
TYPE_LABELS = dict(GROUPS) | {ChangeType.FEATURE: "New feature", ChangeType.FIX: "Fix"}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

# Markdown's inline syntax: a backslash before any of these makes it plain text (the
# block markers -, +, #, = only count at a line start, which the filter never leaves)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>!|~])")


def markdown_text(value: Any) -> str:
    """``value`` as literal text in Markdown: no link, image, emphasis or HTML survives
    (``[x](https://…)`` arrives as those characters); line breaks become spaces. For
    text that people outside the vendor wrote or could have written."""
    text = " ".join(str(value).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("://", ":\\/\\/")


_env.filters["md"] = markdown_text


@dataclass(frozen=True)
class Audience:
    """Who a text is for: the vendor itself (``key == "vendor"``) or one OEM."""

    key: str
    product: str  # the platform's name as this audience knows it
    organisation: str
    timezone: str
    whitelabel: Whitelabel

    @classmethod
    def vendor(cls, vendor: VendorConfig, timezone: str = "UTC") -> Audience:
        return cls("vendor", vendor.product_name, vendor.name, timezone, Whitelabel.for_audience(vendor, None))

    @classmethod
    def oem(cls, oem: Oem, vendor: VendorConfig) -> Audience:
        return cls(oem.id, oem.brand_name, oem.display_name, oem.timezone, Whitelabel.for_oem(vendor, oem))

    @property
    def is_vendor(self) -> bool:
        return self.key == "vendor"

    def local(self, moment: dt.datetime) -> pendulum.DateTime:
        return pendulum.instance(moment).in_timezone(self.timezone)


@dataclass(frozen=True)
class Rendered:
    subject: str
    markdown: str
    html: str

    def as_message(self, **meta: Any) -> dict[str, Any]:
        return {"subject": self.subject, "markdown": self.markdown, "html": self.html, **meta}


def render(template: str, audience: Audience, subject: str, **context: Any) -> Rendered:
    """Render ``<template>.md.j2`` and ``<template>.html.j2`` for ``audience``.

    Strings in ``context`` (also inside lists and dicts) are white-labelled before
    rendering, except identifiers (keys ending in ``id``): rewriting a change id would
    break the reference, so an id that carries the vendor's name (``AVA-1234``) is shown
    by its OEM-neutral id (``CHANGE-1234``, :meth:`Whitelabel.neutral_id`), the same the
    portal shows and takes decisions by.
    """
    label = audience.whitelabel
    context = _whitelabelled(context, label)
    subject = label.apply(subject)
    values = {"audience": audience, "product": audience.product, "subject": subject, **context}
    markdown = _env.get_template(f"{template}.md.j2").render(values)
    html = _env.get_template(f"{template}.html.j2").render(values)
    return Rendered(subject=subject, markdown=markdown, html=html)


def _whitelabelled(value: Any, label: Whitelabel) -> Any:
    if isinstance(value, str):
        return label.apply(value)
    if isinstance(value, dict):
        return {
            k: _identifier(v, label) if str(k).endswith("id") else _whitelabelled(v, label) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_whitelabelled(v, label) for v in value]
    return value


def _identifier(value: Any, label: Whitelabel) -> Any:
    return label.neutral_id(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class ReleaseNotesInput:
    """One release and its changes, as the notes show them."""

    release_id: str
    released_at: dt.datetime
    changes: Sequence[Change] = field(default_factory=tuple)


def release_sections(
    train: ReleaseCalendar, release_ids: Iterable[str], changes: Iterable[Change]
) -> list[ReleaseNotesInput]:
    """One section per release of ``release_ids``, in that order, at its calendar moment,
    with its changes among ``changes``: the notes of several releases (an OEM's delivery,
    a notes window). A change of a release not among them (one that never reached
    production) is listed with the release that carries it (the ledger's rule L2)."""
    release_ids, changes = list(release_ids), list(changes)
    return [
        ReleaseNotesInput(r, train.release_by_id(r).at, [c for c in changes if carrier(c.release_id, release_ids) == r])
        for r in release_ids
    ]


def _change(change: Change, section: str, show_release: bool, asked: Mapping[str, Sequence[dict]]) -> dict[str, Any]:
    return {
        "id": change.id,
        "title": change.title,
        "description": change.description,
        "component": change.component,
        "type_label": TYPE_LABELS[change.type],
        "breaking": change.breaking,
        "release_id": section if show_release else None,
        # cut into a release that never reached production, shipped with this one (L2)
        "carried_from": change.release_id if carried(section, change.release_id) else None,
        # the roadmap items this audience asked for and this change delivers
        "asked_for": [item["title"] for item in asked.get(change.id, ())],
    }


def release_notes_context(
    releases: Sequence[ReleaseNotesInput], audience: Audience, asked: Mapping[str, Sequence[dict]] | None = None
) -> dict[str, Any]:
    """Breaking changes first (flagged, across all releases), then each release's
    other changes grouped by type; the newest release first. ``asked`` (change id ->
    roadmap items, from :func:`release_pipeline.roadmap.asked_for`) marks the changes
    that deliver what this audience asked for: it must be this audience's own."""
    asked = asked or {}
    ordered = sorted(releases, key=lambda r: r.release_id, reverse=True)
    several = len(ordered) > 1
    breaking = [
        _change(c, r.release_id, several, asked)
        for r in ordered
        for c in sorted(r.changes, key=lambda c: c.id)
        if c.breaking
    ]
    sections = []
    for release in ordered:
        groups = []
        for change_type, label in GROUPS:
            changes = sorted(
                (c for c in release.changes if c.type == change_type and not c.breaking), key=lambda c: c.id
            )
            if changes:
                groups.append(
                    {"label": label, "changes": [_change(c, release.release_id, False, asked) for c in changes]}
                )
        sections.append(
            {
                "release_id": release.release_id,
                "date": audience.local(release.released_at).format("D MMMM YYYY"),
                "groups": groups,
                "count": len(release.changes),
            }
        )
    return {"breaking": breaking, "releases": sections, "several": several}


def render_release_notes(
    releases: Sequence[ReleaseNotesInput], audience: Audience, asked: Mapping[str, Sequence[dict]] | None = None
) -> Rendered:
    """Notes of one release (biweekly) or of a notes window (the general notes);
    ``asked``: see :func:`release_notes_context`."""
    ids = sorted(r.release_id for r in releases)
    span = ids[0] if len(ids) == 1 else f"{ids[0]} and {ids[-1]}" if len(ids) == 2 else f"{ids[0]} to {ids[-1]}"
    return render(
        "release_notes",
        audience,
        subject=f"{audience.product} {span} release notes",
        **release_notes_context(releases, audience, asked),
    )
