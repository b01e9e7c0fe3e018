"""Stored text holds no control character: one rule, in prefill.text, used by every validator."""

from __future__ import annotations

import msgspec
import pytest

from prefill.models import ContactPerson, Customer
from prefill.text import has_control


@pytest.mark.parametrize("char", ["\r", "\n", "\x00", "\t", "\x1b", "\x7f", "\x85", "\u2028"])
def test_a_control_character_is_found(char: str) -> None:
    assert has_control(f"a{char}b")


def test_a_textarea_may_hold_line_breaks_and_nothing_else() -> None:
    assert not has_control("one\r\ntwo\nthree", multiline=True)
    assert has_control("one\rtwo", multiline=True)
    assert has_control("one\x00two", multiline=True)
    assert not has_control("Åsa Öberg - Kundansvarig, Vasa; 100 %")


@pytest.mark.parametrize("field", ["name", "phone"])
def test_a_stored_record_refuses_it_naming_the_field_not_the_value(field: str) -> None:
    record = {"id": "a", "name": "Anna", "title": {"en": "AM"}, "email": "a@x.example"}
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.convert(record | {field: "+358401111111\rTEL:+1555"}, ContactPerson)
    assert f"$.{field}" in str(refused.value)
    assert "TEL:+1555" not in str(refused.value)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.title\[\.\.\.\]"):
        msgspec.convert(record | {"title": {"en": "A\rB"}}, ContactPerson)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.attributes\[\.\.\.\]"):
        msgspec.convert(
            {"id": "c", "email": "c@x.example", "attributes": {"diet": "a\x00"}}, Customer
        )
    note = msgspec.convert(
        {"id": "c", "email": "c@x.example", "attributes": {"n": "a\nb"}}, Customer
    )
    assert note.attributes == {"n": "a\nb"}
