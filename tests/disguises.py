"""Names in disguise, and an independent reader of them (issue 24): the hypothesis
strategy that hides the vendor's and the OEMs' names in texts the way an attacker or a
careless engineer would, and :func:`shows`, which reads a text the way a person or a
browser would without using the code under test (``release_pipeline.notes.normalise``):
it undoes exactly the disguises the strategy uses, with the standard library and a
look-alike table of its own."""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import unquote

from hypothesis import strategies as st

from release_pipeline.notes import Guard, Whitelabel
from release_pipeline.registry import load_registry
from release_pipeline.vendor import load_vendor

# the repository's config, and what OEM nimbus is sent through
VENDOR = load_vendor()
REGISTRY = load_registry()
NIMBUS = REGISTRY.get("nimbus")
LABEL = Whitelabel.for_oem(VENDOR, NIMBUS)
GUARD = Guard.for_oem(NIMBUS, REGISTRY, VENDOR)
GUARD.scan("nonava")  # loads the English word list once, outside any example's deadline

# Latin letter -> look-alikes of other scripts (the strategy's own table, not TR39's)
CYRILLIC = dict(zip("aAeEoOpPcCxXBHKMTyij", "аАеЕоОрРсСхХВНКМТуіј", strict=True))
GREEK = dict(zip("ABEZHIKMNOPTYXov", "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧον", strict=True))
UNDO_LOOKALIKES = str.maketrans({v: k for table in (CYRILLIC, GREEK) for k, v in table.items()})
INVISIBLE = ["\u200b", "\u200c", "\u00ad", "\u2060", "\ufeff", "\u202e", "\u200d"]
SEPARATORS = [".", "-", " ", "_"]


def _fullwidth(c: str) -> str:
    return chr(ord(c) - 0x21 + 0xFF01)


def _math_bold(c: str) -> str:
    return chr((0x1D400 + ord(c) - 65) if c.isupper() else (0x1D41A + ord(c) - 97))


def _circled(c: str) -> str:
    return chr((0x24B6 + ord(c) - 65) if c.isupper() else (0x24D0 + ord(c) - 97))


@st.composite
def letter(draw, c: str) -> str:
    """One ASCII letter or digit, maybe in disguise."""
    if c.isalpha() and c.isascii():
        c = draw(st.sampled_from([c.lower(), c.upper()]))
        kinds = ["plain", "fullwidth", "math", "circled", "decimal", "hex", "percent"]
        if c in CYRILLIC:
            kinds.append("cyrillic")
        if c in GREEK:
            kinds.append("greek")
        kind = draw(st.sampled_from(kinds))
        return {
            "plain": lambda: c,
            "fullwidth": lambda: _fullwidth(c),
            "math": lambda: _math_bold(c),
            "circled": lambda: _circled(c),
            "decimal": lambda: f"&#{ord(c)};",
            "hex": lambda: f"&#x{ord(c):x};",
            "percent": lambda: f"%{ord(c):02X}",
            "cyrillic": lambda: CYRILLIC.get(c, c),
            "greek": lambda: GREEK.get(c, c),
        }[kind]()
    return c


@st.composite
def disguised(draw, name: str) -> str:
    """``name`` with look-alike and encoded letters, invisible characters between them, and
    (a short one-word name) its letters spelled out with one separator each."""
    words = re.findall(r"[A-Za-z0-9]+|[^A-Za-z0-9]+", name)
    spell = len(words) == 1 and len(name) <= 8 and name.isalnum() and draw(st.booleans())
    separator = draw(st.sampled_from(SEPARATORS)) if spell else ""
    out = []
    for word in words:
        for i, c in enumerate(word):
            out.append(draw(letter(c)))
            if i < len(word) - 1:
                if separator:
                    out.append(separator)
                elif draw(st.integers(0, 3)) == 0:
                    out.append(draw(st.sampled_from(INVISIBLE)))
    return "".join(out)


CONTEXTS = [
    "{x}",
    "Use {x} now",
    "non-{x} flows",
    "the {x}_API token",
    "({x})",
    "{x}Connect",
    "see [guide](https://{x}.example/g)",
    "see [guide][1]\n\n[1]: https://{x}.example/g",
    "https://{x}/path",
    "<{x}>",
]


@st.composite
def placed(draw, names: list[str]) -> tuple[str, str]:
    """(name, a text that carries it in disguise)."""
    name = draw(st.sampled_from(names))
    text = draw(st.sampled_from(CONTEXTS)).format(x=draw(disguised(name)))
    return name, text


# -- the independent reader ----------------------------------------------------------------------
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def reads(text: str) -> str:
    """``text`` as a person reads it: entities and percent-encoding decoded (repeatedly),
    format characters dropped, NFKC, look-alikes back to Latin."""
    for _ in range(4):
        text = unquote(html.unescape(text))
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFKC", text).translate(UNDO_LOOKALIKES)


def words(text: str) -> list[str]:
    """The words and identifier parts of ``text`` (read), lower-case; letters spelled out
    one separator apart are one word."""
    found = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(reads(text))]
    merged: list[list] = []
    for word, start, end in found:
        if merged and len(word) == 1 and merged[-1][3] and start - merged[-1][2] == 1:
            merged[-1][0] += word
            merged[-1][2] = end
        else:
            merged.append([word, start, end, len(word) == 1])
    return [m[0] for m in merged]


def shows(name: str, text: str) -> bool:
    """Whether ``text`` shows ``name`` as words of their own."""
    needle, hay = words(name), words(text)
    return bool(needle) and any(hay[i : i + len(needle)] == needle for i in range(len(hay) - len(needle) + 1))
