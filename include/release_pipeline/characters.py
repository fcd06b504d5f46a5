"""Which characters show: one answer for the white-label guard (which reads a text as it
is seen) and for the bounds on what people type (which refuse what is not seen)."""

from __future__ import annotations

import unicodedata

# default-ignorable code points that are not format characters (Cf): Unicode's
# DerivedCoreProperties.txt, Default_Ignorable_Code_Point minus Cf
IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),  # Mongolian variation selectors
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),  # tags, variation selectors supplement
)


def invisible(char: str) -> bool:
    """A format character (Cf: zero-width space, ZWNJ, ZWJ, soft hyphen, word joiner, BOM,
    bidi controls) or another default-ignorable code point: it shows nothing."""
    if unicodedata.category(char) == "Cf":
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in IGNORABLE_RANGES)


def visible(char: str) -> bool:
    """A character that puts ink on the page: not blank, not invisible, not a control
    character and not a mark that only modifies the one before it."""
    if char.isspace() or invisible(char):
        return False
    return unicodedata.category(char) not in ("Cc", "Mn", "Me", "Zs", "Zl", "Zp")


def describe(char: str) -> str:
    """``U+200B (ZERO WIDTH SPACE)``."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def invisible_bmp_class() -> str:
    """The invisible characters of the Basic Multilingual Plane as the body of a regex
    character class that Python, pydantic's (Rust) engine and ECMAScript read alike
    (``\\uXXXX`` ranges); those beyond it are refused by :func:`invisible` alone."""
    ranges, start, previous = [], None, None
    for code in range(0x80, 0x10000):
        if invisible(chr(code)):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            ranges.append((start, previous))
            start = None
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
