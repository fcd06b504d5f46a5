"""One set of bounds for what people type: the JSON API's pydantic fields come from the
same rules the forms and the CLI check with, so the two never drift apart."""

import pydantic
import pytest

from release_pipeline import inputs

SAMPLES = ["", "x", "   ", "a\tb", "a\nb", "a\r\nb", "a\x00b", "a\x85b", "2026.24", "CHG-1", "CHG 1", "é" * 8]


@pytest.mark.parametrize("name", ["TITLE", "BODY", "COMPONENT", "COMMENT", "NAME", "CHANGE"])
def test_the_api_field_accepts_exactly_what_the_form_check_accepts(name):
    rule = getattr(inputs, name)
    adapter = pydantic.TypeAdapter(pydantic.constr(**rule.field()))
    for value in [*SAMPLES, "y" * rule.max_length, "y" * (rule.max_length + 1)]:
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
