"""One set of bounds for what people type: the JSON API's pydantic fields come from the
same rules the forms and the CLI check with, so the two never drift apart."""

from typing import Annotated

import pydantic
import pytest

from release_pipeline import inputs

SAMPLES = ["", "x", "   ", "a\tb", "a\nb", "a\r\nb", "a\x00b", "a\x85b", "2026.24", "CHG-1", "CHG 1", "é" * 8]
# invisible characters: zero-width space, ZWNJ, soft hyphen, word joiner, BOM, bidi override,
# a tag character beyond the BMP; and text with nothing visible in it
INVISIBLE = ["\u200b", "a\u200cb", "A\u00adVA", "a\u2060b", "\ufeffa", "a\u202eb", "a\U000e0041", "\u0301", "\u3164"]


@pytest.mark.parametrize("name", ["TITLE", "BODY", "COMPONENT", "COMMENT", "NAME", "CHANGE"])
def test_the_api_field_accepts_exactly_what_the_form_check_accepts(name):
    rule = getattr(inputs, name)
    adapter = pydantic.TypeAdapter(Annotated[str, pydantic.Field(**rule.field()), rule.validator(name.lower())])
    for value in [*SAMPLES, *INVISIBLE, "y" * rule.max_length, "y" * (rule.max_length + 1)]:
        try:
            rule.check(name.lower(), value)
            checked = True
        except inputs.InvalidInput:
            checked = False
        try:
            adapter.validate_python(value)
            validated = True
        except pydantic.ValidationError:
            validated = False
        assert validated == checked, (name, value)


@pytest.mark.parametrize("name", ["TITLE", "BODY", "COMPONENT", "COMMENT", "NAME", "CHANGE"])
@pytest.mark.parametrize("value", INVISIBLE)
def test_invisible_characters_are_refused_naming_the_field_and_the_character(name, value):
    refused = rf"^{name.lower()}: (invisible character U\+|needs a visible|.* is not)"
    with pytest.raises(inputs.InvalidInput, match=refused):
        getattr(inputs, name).check(name.lower(), value)


def test_the_schema_patterns_refuse_the_invisible_characters_of_the_bmp():
    import re

    for value in ("\u200b", "x\u200by", "x\u00ad", "x\ufeff", "x\u202e"):
        assert not re.fullmatch(inputs.NONBLANK_TEXT.strip("^$"), value), value
        assert not re.fullmatch(inputs.LINE.strip("^$"), value), value
    assert re.fullmatch(inputs.TEXT.strip("^$"), "")  # an optional text may be left empty
