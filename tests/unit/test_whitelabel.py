"""The white-label step and the guard behind it, on the repository's config: what
engineers really write comes out clean, and no spelling of the vendor or of another
OEM gets past the guard."""

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from release_pipeline.notes import Audience, BrandingLeak, Whitelabel, render
from release_pipeline.notes.whitelabel import _dictionary
from tests.disguises import GUARD, LABEL, NIMBUS, REGISTRY, VENDOR


@pytest.mark.parametrize(
    ("engineer_wrote", "nimbus_reads"),
    [
        (
            "Test it on https://production.ava.example/flows?x=1.",
            "Test it on https://acceptance.nimbus.example/flows?x=1.",
        ),
        ("Open PRODUCTION.AVA.EXAMPLE/login", "Open acceptance.nimbus.example/login"),
        ("Docs: docs.ava.example/connectors", "Docs: docs.nimbus.example/connectors"),
        ("Run `ava-ctl install 2026.24`", "Run `nimbus-ctl install 2026.24`"),  # glossary
        ("Designed in AVA Studio and ava-studio", "Designed in Nimbus Studio and Nimbus Studio"),
        ("AVAConnect now retries", "NimbusConnectConnect now retries"),
        ("set AVA_API_TOKEN", "set NIMBUS_CONNECT_API_TOKEN"),
        ("the Ava runtime", "the Nimbus Connect runtime"),
        ("non-AVA flows", "non-Nimbus Connect flows"),
        ("the AVA Integration Platform designer", "the Nimbus Connect designer"),
        ("Runtime on Java 21 is available", "Runtime on Java 21 is available"),  # ordinary words
    ],
)
def test_engineer_texts_come_out_in_the_oems_terms(engineer_wrote, nimbus_reads):
    assert LABEL.apply(engineer_wrote) == nimbus_reads
    assert GUARD.scan(nimbus_reads) == []


def test_an_unmapped_vendor_host_is_not_invented_but_held():
    out = LABEL.apply("status page: https://status.ava.example/incidents")
    assert "status.ava.example" in out
    assert [leak.found for leak in GUARD.scan(out)] == ["ava.example"]


def test_a_missing_acceptance_url_leaves_the_vendor_host_for_the_guard():
    bare = NIMBUS.model_copy(update={"acceptance_url": None})
    out = Whitelabel.for_oem(VENDOR, bare).apply("test on https://production.ava.example")
    assert {leak.term for leak in GUARD.scan(out)} >= {"production.ava.example"}


def test_the_guard_names_owner_field_and_passage():
    leaks = GUARD.scan_value({"subject": "ok", "html": "<p>Like <b>Kestrel Flow</b> does</p>"})
    assert [(leak.owner, leak.term, leak.field) for leak in leaks] == [("OEM kestrel", "Kestrel Flow", "html")]
    assert "[Kestrel Flow]" in leaks[0].passage
    with pytest.raises(BrandingLeak, match="html: OEM kestrel 'Kestrel Flow'"):
        GUARD.check({"html": "Kestrel Flow"})


def test_the_oems_own_names_pass():
    assert GUARD.scan("Nimbus Systems GmbH runs Nimbus Connect (nimbus) on acceptance.nimbus.example") == []


def test_rendered_messages_are_white_labelled_everywhere():
    message = render(
        "delivery_update",
        Audience.oem(NIMBUS, VENDOR),
        subject="AVA 2026.24 installed",
        lines=["Use ava-ctl on production.ava.example", "AVAConnect is faster"],
        notes_markdown="",
        notes_html="",
    )
    for text in (message.subject, message.markdown, message.html):
        assert GUARD.scan(text) == [], text


# -- adversarial spellings ---------------------------------------------------------------------------
SEPARATORS = st.sampled_from(["", " ", "-", "_", ".", "/", "  ", "\n", "-_-"])
AFFIXES = st.sampled_from(["", "non", "my", "Connect", "API", "ctl", "studio", "v2", "2", "x", "Q", "the"])


def random_case(draw, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(text, flips, strict=True))


@st.composite
def disguised(draw, terms):
    """A term in random case, its words joined by random separators, glued into a
    compound or identifier, amid ordinary text."""
    term = draw(st.sampled_from(terms))
    words = re.findall(r"[^\W_]+", term)
    spelled = words[0]
    for word in words[1:]:
        spelled += draw(SEPARATORS) + word
    spelled = random_case(draw, spelled)
    compound = draw(AFFIXES) + draw(SEPARATORS) + spelled + draw(SEPARATORS) + draw(AFFIXES)
    before = draw(st.text(alphabet="abc XYZ.,:;()<>\n", max_size=20))
    after = draw(st.text(alphabet="abc XYZ.,:;()<>\n", max_size=20))
    return term, f"{before} {compound} {after}"


VENDOR_ORDINARY = {o.lower() for o in VENDOR.ordinary_words}


def ordinary(term: str, text: str) -> bool:
    """Whether the disguise happened to form an ordinary word around the term (the vendor's
    list, or the English word list the guard reads): a name inside one is no name."""
    chunks = [c.lower() for c in re.findall(r"[^\W_]+", term)]
    runs = [w.lower() for w in re.findall(r"[^\W\d_]+", text)]
    return any((w in _dictionary() or w in VENDOR_ORDINARY) and any(c in w and c != w for c in chunks) for w in runs)


OTHER_OEM_TERMS = [
    term
    for oem in REGISTRY.oems.values()
    if oem.id != "nimbus"
    for term in (oem.id, oem.display_name, oem.brand_name, *oem.hosts)
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(disguised(list(VENDOR.guarded_terms)))
def test_no_spelling_of_the_vendor_passes_the_guard(case):
    term, text = case
    assume(not ordinary(term, text))
    assert GUARD.scan(text), (term, text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(disguised(OTHER_OEM_TERMS))
def test_no_spelling_of_another_oem_passes_the_guard(case):
    term, text = case
    assert GUARD.scan(text), (term, text)
    # white-labelling never launders it either
    assert GUARD.scan(LABEL.apply(text)), (term, text)


ENGINEER_WORDS = st.sampled_from(
    [
        "AVA", "Ava", "ava", "AVA Platform", "AVA Integration Platform", "AVA Studio", "ava-ctl", "AVA_API",
        "AVAConnect", "non-AVA", "https://production.ava.example/x", "docs.ava.example", "production.ava.example",
        "Java", "available", "flows", "retry", "runtime", "connector", "the", "on", "2026.24", "(beta)", "-", ":",
    ]
)  # fmt: skip


@settings(max_examples=300)
@given(st.lists(ENGINEER_WORDS, max_size=20), st.lists(st.sampled_from([" ", "\n", ". ", ", "]), max_size=20))
def test_white_labelled_engineer_texts_pass_the_guard(words, gaps):
    text = "".join(w + (gaps[i] if i < len(gaps) else " ") for i, w in enumerate(words))
    out = LABEL.apply(text)
    assert GUARD.scan(out) == [], (text, out)
    assert LABEL.apply(out) == out  # the step is idempotent: a re-check never rewrites twice


def test_the_signoff_request_points_at_the_oems_acceptance_url():
    """production_release.py hands the vendor's production_url to render(): the OEM reads its own."""
    message = render(
        "signoff_request",
        Audience.oem(NIMBUS, VENDOR),
        subject="AVA 2026.24 is ready for your sign-off",
        release_id="2026.24",
        production_url=VENDOR.production_url,
        portal_url=VENDOR.portal_url,
        install_date="Thursday 3 December 2026",
        signoff_deadline="Tuesday 01 December 2026 10:00 (Europe/Berlin)",
        timezone=NIMBUS.timezone,
        changes=[{"id": "CHG-1", "title": "AVAConnect retries", "component": "AVA_API", "breaking": False}],
        notes_markdown="",
        notes_html="",
    )
    assert "live on the acceptance environment at https://acceptance.nimbus.example." in message.markdown
    assert 'href="https://acceptance.nimbus.example"' in message.html or "acceptance.nimbus.example" in message.html
    assert GUARD.scan_value({"s": message.subject, "m": message.markdown, "h": message.html}) == []
    assert "**Sign-off deadline:** Tuesday 01 December 2026 10:00 (Europe/Berlin)." in message.markdown
    assert "<strong>Sign-off deadline:</strong> Tuesday 01 December 2026 10:00 (Europe/Berlin)." in message.html
