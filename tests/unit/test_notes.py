"""Rendered notes: golden files for the shapes that ship, and the white-label guard.

Regenerate the golden files after an intended template change with
``UPDATE_GOLDEN=1 make test-fast`` and review the diff.
"""

import os
from pathlib import Path

import pendulum
import pytest

from release_pipeline.models import Change, ChangeType
from release_pipeline.notes import (
    Audience,
    BrandingLeak,
    Guard,
    ReleaseNotesInput,
    release_sections,
    render_release_notes,
)
from release_pipeline.registry import load_registry
from release_pipeline.vendor import load_vendor

GOLDEN = Path(__file__).parent / "golden"
VENDOR = load_vendor()
MERGED = pendulum.datetime(2026, 11, 20, 12, tz="UTC")


def change(id_, type_, title, description="", breaking=False, component="connectors", release_id="2026.24"):
    return Change(id_, type_, component, title, description, breaking, MERGED, release_id)


RELEASE_23 = ReleaseNotesInput(
    "2026.23",
    pendulum.datetime(2026, 11, 12, 10, tz="Europe/Amsterdam"),
    [
        change(
            "CHG-101",
            ChangeType.FIX,
            "Cron flows keep the DST hour",
            "Fixed in the AVA scheduler.",
            component="scheduler",
            release_id="2026.23",
        ),
        change(
            "CHG-102",
            ChangeType.COMPONENT,
            "Runtime on Java 21",
            "The AVA Platform runtime moves to Java 21.",
            breaking=True,
            component="runtime",
            release_id="2026.23",
        ),
    ],
)
RELEASE_24 = ReleaseNotesInput(
    "2026.24",
    pendulum.datetime(2026, 11, 26, 10, tz="Europe/Amsterdam"),
    [
        change(
            "CHG-201",
            ChangeType.FEATURE,
            "Salesforce Bulk API 2.0 connector",
            "Move millions of records from AVA Integration Platform flows.",
        ),
        change("CHG-202", ChangeType.IMPROVEMENT, "Faster mapper previews", "3x faster.", component="mapper"),
        change(
            "CHG-203",
            ChangeType.FEATURE,
            "OAuth 2.1 for <api> & gateways",
            "Expose flows behind OAuth 2.1.",
            component="api-gateway",
        ),
    ],
)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text()


def test_vendor_notes_of_one_release():
    notes = render_release_notes([RELEASE_24], Audience.vendor(VENDOR, "Europe/Amsterdam"))
    assert notes.subject == "AVA Integration Platform 2026.24 release notes"
    check_golden("release_2026.24.vendor.md", notes.markdown)
    check_golden("release_2026.24.vendor.html", notes.html)


def test_oem_general_notes_of_a_window_are_white_labelled():
    oem = load_registry().get("kestrel")
    notes = render_release_notes([RELEASE_23, RELEASE_24], Audience.oem(oem, VENDOR))
    assert notes.subject == "Kestrel Flow 2026.23 and 2026.24 release notes"
    check_golden("window_2026.23-2026.24.kestrel.md", notes.markdown)
    check_golden("window_2026.23-2026.24.kestrel.html", notes.html)
    for text in (notes.subject, notes.markdown, notes.html):
        assert "AVA" not in text
    # dates are shown in the OEM's timezone
    assert "(26 November 2026)" in notes.markdown


def test_breaking_changes_come_first_and_are_flagged():
    markdown = render_release_notes([RELEASE_23, RELEASE_24], Audience.vendor(VENDOR)).markdown
    assert markdown.index("## Breaking changes") < markdown.index("## AVA Integration Platform 2026.24")
    assert "- **BREAKING** Component changes: **Runtime on Java 21** (runtime, CHG-102, release 2026.23)" in markdown
    assert markdown.count("Runtime on Java 21") == 1  # not repeated in its type group


def test_html_is_escaped_and_markdown_is_not():
    vendor = render_release_notes([RELEASE_24], Audience.vendor(VENDOR))
    assert "OAuth 2.1 for &lt;api&gt; &amp; gateways" in vendor.html
    assert "OAuth 2.1 for <api> & gateways" in vendor.markdown


def test_a_vendor_change_key_is_shown_by_its_neutral_id():
    """Ids are never rewritten as text (that would break the reference): a Jira key that
    carries the vendor's name is shown by its OEM-neutral id, the one the portal shows and
    takes decisions by (issue 24)."""
    leaky = ReleaseNotesInput("2026.24", RELEASE_24.released_at, [change("AVA-7", ChangeType.FIX, "Fix", "A fix.")])
    registry = load_registry()
    oem = registry.get("nimbus")
    notes = render_release_notes([leaky], Audience.oem(oem, VENDOR))
    shown = {"subject": notes.subject, "markdown": notes.markdown, "html": notes.html}
    assert "CHANGE-7" in notes.markdown and "CHANGE-7" in notes.html
    assert "AVA-7" not in str(shown)
    assert Guard.for_oem(oem, registry, VENDOR).scan_value(shown) == []
    assert "AVA-7" in render_release_notes([leaky], Audience.vendor(VENDOR)).markdown  # the vendor's own copy


def test_vendor_branding_that_cannot_be_replaced_is_refused():
    """A vendor host the OEM has no URL for cannot be replaced: the guard, which every send
    path runs, refuses the copy and names the passage."""
    text = "See https://status.%61va.example/incidents"
    leaky = ReleaseNotesInput("2026.24", RELEASE_24.released_at, [change("CHG-7", ChangeType.FIX, "Fix", text)])
    registry = load_registry()
    oem = registry.get("nimbus")
    notes = render_release_notes([leaky], Audience.oem(oem, VENDOR))
    guard = Guard.for_oem(oem, registry, VENDOR)
    leak = r"release_notes for nimbus: markdown: vendor .* in “.*\[.*%61va.example\]"
    with pytest.raises(BrandingLeak, match=leak):
        guard.check(
            {"subject": notes.subject, "markdown": notes.markdown, "html": notes.html}, "release_notes for nimbus"
        )


def test_empty_release():
    notes = render_release_notes([ReleaseNotesInput("2026.25", RELEASE_24.released_at, [])], Audience.vendor(VENDOR))
    assert "No changes in this release." in notes.markdown


def test_the_sections_of_several_releases_are_dated_by_the_calendar_with_their_own_changes(calendar):
    changes = RELEASE_23.changes + RELEASE_24.changes
    sections = release_sections(calendar, ["2026.24", "2026.23"], iter(changes))
    assert [s.release_id for s in sections] == ["2026.24", "2026.23"]  # in the order asked
    assert [s.released_at for s in sections] == [calendar.release_by_id(r).at for r in ("2026.24", "2026.23")]
    assert sections[0].changes == list(RELEASE_24.changes) and sections[1].changes == list(RELEASE_23.changes)
    assert release_sections(calendar, ["2026.22"], changes)[0].changes == []
