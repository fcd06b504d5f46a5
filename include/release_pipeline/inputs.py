"""Bounds on what people type: one set of limits for the portal (its JSON API, where
they are pydantic constraints and so documented in the OpenAPI schema, and its forms)
and the CLI.

Control characters (C0, DEL, C1) are refused everywhere: a NUL cannot be stored by PostgreSQL, and
the others have no business in a name or a title. Multi-line text (a comment, a
feedback body) may hold tabs and line breaks, including the ``\\r\\n`` browsers send
from a textarea.

Invisible characters are refused too (Unicode format characters: zero-width space and
joiners, soft hyphen, word joiner, BOM, bidi overrides; and the other default-ignorable
code points): what a person reads must be what is stored, and a name hidden by them
must not slip past the white-label guard. A value that is given must contain a visible
character: a rejection whose comment is one zero-width space is no comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator

from release_pipeline.characters import describe, invisible, invisible_bmp_class, visible

# regexes that Python, pydantic's (Rust) regex engine and JSON Schema's (ECMAScript) one
# all read alike, so the OpenAPI schema shows exactly what the server enforces: no
# ``\s`` (its meaning differs between them), explicit classes instead
CONTROL = r"\x00-\x1f\x7f-\x9f"  # C0, DEL and C1
MULTILINE_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # tab, line feed, carriage return allowed
# control characters and every character Python or ECMAScript counts as whitespace
BLANK = CONTROL + r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# invisible characters of the Basic Multilingual Plane (format characters, default-ignorables);
# those beyond it only Rule.check and Rule.validator refuse (ECMAScript cannot name them alike)
INVISIBLE = invisible_bmp_class()
_LINE_BODY = f"[^{CONTROL}{INVISIBLE}]*"
_TEXT_BODY = f"[^{MULTILINE_CONTROL}{INVISIBLE}]*"
_SHOWN = f"[^{BLANK}{INVISIBLE}]"
NONBLANK_LINE = rf"^{_LINE_BODY}{_SHOWN}{_LINE_BODY}$"
NONBLANK_TEXT = rf"^{_TEXT_BODY}{_SHOWN}{_TEXT_BODY}$"
LINE = rf"^(?:{_LINE_BODY}{_SHOWN}{_LINE_BODY})?$"  # empty, or with something to read
TEXT = rf"^(?:{_TEXT_BODY}{_SHOWN}{_TEXT_BODY})?$"
RELEASE_ID = r"^[0-9]{4}\.[0-9]{2}$"
CHANGE_ID = rf"^[^{BLANK}{INVISIBLE}]+$"

# maximum lengths (characters); the database columns are at least this wide
MAX_TITLE = 300
MAX_COMMENT = 4000
MAX_BODY = 10000
MAX_COMPONENT = 100
MAX_NAME = 100  # token labels, --by, --on-behalf-of, submitted_by
MAX_CHANGE_ID = 64
MAX_CHANGES = 500


class InvalidInput(ValueError):
    """A value a person typed is out of bounds; the message names the field."""


def unseen_problem(value: str) -> str | None:
    """Why ``value`` does not read as it is stored (an invisible character, or nothing
    visible at all), or None."""
    for char in value:
        if invisible(char):
            return f"invisible character {describe(char)} is not allowed"
    if value and not any(visible(char) for char in value):
        return "needs a visible character (it has none)"
    return None


@dataclass(frozen=True)
class Rule:
    max_length: int
    multiline: bool = False
    required: bool = False
    pattern: str | None = None  # an extra shape, e.g. RELEASE_ID
    shape: str = ""  # how to describe ``pattern`` in a message

    def check(self, field: str, value: str | None) -> str | None:
        """``value`` unchanged when it is acceptable, else :class:`InvalidInput`."""
        if value is None or value == "":
            if self.required:
                raise InvalidInput(f"{field}: a value is required")
            return value
        control = _control_character(value, self.multiline)
        if control is not None:
            raise InvalidInput(f"{field}: control character {control!r} is not allowed")
        if len(value) > self.max_length:
            raise InvalidInput(f"{field}: at most {self.max_length} characters ({len(value)} given)")
        if not value.strip():  # optional, but once given it must say something
            raise InvalidInput(f"{field}: a value is required (it is blank)")
        if unseen := unseen_problem(value):
            raise InvalidInput(f"{field}: {unseen}")
        if self.pattern and not re.fullmatch(self.pattern.strip("^$"), value):
            raise InvalidInput(f"{field}: {value!r} is not {self.shape or 'well-formed'}")
        return value

    def field(self) -> dict[str, Any]:
        """The same bounds as pydantic ``Field`` arguments: the JSON API enforces them, and
        documents them in its OpenAPI schema, exactly as :meth:`check` does for forms."""
        if self.pattern:
            pattern = self.pattern
        elif self.multiline:
            pattern = NONBLANK_TEXT if self.required else TEXT
        else:
            pattern = NONBLANK_LINE if self.required else LINE
        return {"max_length": self.max_length, "pattern": pattern} | ({"min_length": 1} if self.required else {})

    def validator(self, field: str) -> AfterValidator:
        """What :meth:`field`'s pattern cannot say (invisible characters beyond the Basic
        Multilingual Plane, a value of combining marks only), for a pydantic field."""

        def check(value: str | None) -> str | None:
            try:
                return self.check(field, value)
            except InvalidInput as exc:
                raise ValueError(str(exc).removeprefix(f"{field}: ")) from None

        return AfterValidator(check)


def _control_character(value: str, multiline: bool) -> str | None:
    allowed = "\t\n\r" if multiline else ""
    for char in value:
        if (ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F) and char not in allowed:
            return char
    return None


NAME = Rule(MAX_NAME, required=True)
TITLE = Rule(MAX_TITLE, required=True)
COMMENT = Rule(MAX_COMMENT, multiline=True)
BODY = Rule(MAX_BODY, multiline=True)
COMPONENT = Rule(MAX_COMPONENT)
RELEASE = Rule(7, required=True, pattern=RELEASE_ID, shape="a release id like 2026.24")
CHANGE = Rule(MAX_CHANGE_ID, required=True, pattern=CHANGE_ID, shape="a change id (no spaces)")
