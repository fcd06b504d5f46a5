"""The one normalisation every name match of the white-label step and the guard runs on.

A text is read the way a person (or a browser's URL parser) reads it, not as it is
spelled. :func:`view` turns it into a :class:`View`: one folded character per visible
character, each remembering the span of the original text it came from, so that a match
found in the view can be rewritten in the original. In order:

1. decoded: HTML character references (``&#65;``, ``&amp;``), percent-encoding
   (``%41``, ``%E2%80%8B``, any UTF-8) and IDNA labels (``xn--...``), repeated while
   something changes (``&#37;41`` is ``%41`` is ``A``);
2. invisible characters dropped: Unicode format characters (zero-width space, ZWNJ,
   ZWJ, soft hyphen, word joiner, BOM, bidi controls) and the other default-ignorable
   code points (variation selectors, fillers), and combining marks (``Ä`` reads ``A``);
3. each character NFKC-normalised (full-width, mathematical, circled letters), case-folded
   and mapped to its Unicode TR39 confusable skeleton (Cyrillic ``А`` and Greek ``Α``
   read ``a``, ``m`` and ``rn`` alike), from the confusables data of the pinned
   ``confusable_homoglyphs`` package. Only letters and digits, and non-ASCII symbols,
   are mapped: an ASCII ``|`` in a Markdown table stays a ``|``.

The case of each character before folding is kept beside it (``U``, ``L`` or ``-``): it
tells where an identifier's parts begin (``AVAConnect`` is ``AVA`` + ``Connect``,
``JavaBeans`` is ``Java`` + ``Beans``).
"""

from __future__ import annotations

import codecs
import html
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

from release_pipeline.characters import invisible

_DECODABLE = re.compile(
    r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"  # HTML character reference
    r"|(?:%[0-9A-Fa-f]{2})+"  # percent-encoded bytes
    r"|(?<![\w-])[xX][nN]--[A-Za-z0-9-]+"  # an IDNA (punycode) label
)
MAX_DECODE_PASSES = 4


@cache
def _skeleton_map() -> dict[str, str]:
    """Character -> its confusable prototype in ASCII letters/digits (TR39 skeleton data).

    The package's data lists, for each character, what it can be confused with, both
    ways round; the prototype is the ASCII letter/digit string among them. An ASCII
    letter or digit is mapped only where it has exactly one prototype (``m`` -> ``rn``,
    ``0`` -> ``o``, ``1`` -> ``l``): Latin letters are what everything else maps to."""
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    mapping: dict[str, str] = {}
    for char, entries in data.items():
        if len(char) != 1:
            continue
        targets = [e["c"].replace("\u200e", "") for e in entries]
        ascii_targets = [t for t in targets if t.isascii() and t.isalnum() and t.lower() != char.lower()]
        if not ascii_targets:
            continue
        if char.isascii() and (not char.isalnum() or len(targets) != 1):
            continue
        mapping[char] = min(ascii_targets, key=len).lower()
    return mapping


@cache
def fold_char(char: str) -> str:
    """What one character reads as: "" for an invisible one, else its folded skeleton."""
    if invisible(char):
        return ""
    out = []
    for part in unicodedata.normalize("NFKD", char):
        if unicodedata.category(part) in ("Mn", "Me") or invisible(part):
            continue
        for normal in unicodedata.normalize("NFKC", part):
            # a look-alike as written first (Greek capital Epsilon reads E, its small
            # letter does not), then case-folded; ASCII only after folding (I is i, not l)
            if not normal.isascii() and normal in _skeleton_map():
                out.append(_skeleton_map()[normal])
                continue
            for folded in normal.casefold():
                out.append(_skeleton_map().get(folded, folded) if folded.isalnum() or not folded.isascii() else folded)
    return "".join(out).lower()


@cache
def _case(char: str) -> str:
    char = unicodedata.normalize("NFKC", char)[:1]
    return "U" if char.isupper() else "L" if char.islower() else "-"


def fold(text: str) -> str:
    """``text`` as the view reads it (terms are folded the same way as texts)."""
    return view(text).text


def _decode_one(found: str) -> str:
    if found.startswith("&"):
        return html.unescape(found)
    if found.startswith("%"):
        raw = bytes.fromhex(found.replace("%", ""))
        decoded = raw.decode("utf-8", errors="surrogateescape")
        # an invalid byte stays as it was written
        return "".join(f"%{ord(c) - 0xDC00:02X}" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in decoded)
    try:
        return codecs.decode(found[4:].lower().encode("ascii"), "punycode")
    except (UnicodeError, ValueError):
        return found


def _decoded(units: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    for _ in range(MAX_DECODE_PASSES):
        text = "".join(u[0] for u in units)
        out, last, changed = [], 0, False
        for m in _DECODABLE.finditer(text):
            decoded = _decode_one(m.group(0))
            if decoded == m.group(0):
                continue
            start, end = units[m.start()][1], units[m.end() - 1][2]
            out += units[last : m.start()]
            out += [(c, start, end) for c in decoded]
            last, changed = m.end(), True
        if not changed:
            return units
        units = out + units[last:]
    return units


@dataclass(frozen=True)
class View:
    """A text as read: ``text`` (folded), and for each of its characters the span of the
    original it came from and its case there."""

    source: str
    text: str
    spans: tuple[tuple[int, int], ...]
    case: str

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``self.text[start:end]`` came from."""
        return self.spans[start][0], self.spans[end - 1][1]

    def boundary(self, i: int) -> bool:
        """Whether an identifier part begins or ends between ``text[i-1]`` and ``text[i]``:
        at the ends, beside a non-alphanumeric, between a letter and a digit, at a
        lower-to-upper step (``myAva``) and before the last capital of a capital run
        followed by a lower-case letter (``AVAConnect``)."""
        text, case = self.text, self.case
        if i <= 0 or i >= len(text):
            return True
        before, here = text[i - 1], text[i]
        if not (before.isalnum() and here.isalnum()):
            return True
        if before.isdigit() != here.isdigit():
            return True
        if case[i - 1] == "L" and case[i] == "U":
            return True
        following = case[i + 1] if i + 1 < len(text) and text[i + 1].isalpha() else ""
        return case[i - 1] == "U" and case[i] == "U" and following == "L"

    def part(self, start: int, end: int) -> tuple[int, int]:
        """The identifier part(s) around ``text[start:end]``, widened to their boundaries."""
        while not self.boundary(start):
            start -= 1
        while not self.boundary(end):
            end += 1
        return start, end

    def run(self, start: int, end: int) -> tuple[int, int]:
        """The run of letters around ``text[start:end]``, whatever its case."""
        while start > 0 and self.text[start - 1].isalpha():
            start -= 1
        while end < len(self.text) and self.text[end].isalpha():
            end += 1
        return start, end


def view(text: str) -> View:
    if _DECODABLE.search(text):
        units = _decoded([(c, i, i + 1) for i, c in enumerate(text)])
    else:  # nothing to decode (most texts): no need for the units' list first
        units = ((c, i, i + 1) for i, c in enumerate(text))
    chars, spans, case = [], [], []
    for char, start, end in units:
        folded = fold_char(char)
        if not folded:
            continue
        flag = _case(char)
        for c in folded:
            chars.append(c)
            spans.append((start, end))
            case.append(flag)
    return View(text, "".join(chars), tuple(spans), "".join(case))
