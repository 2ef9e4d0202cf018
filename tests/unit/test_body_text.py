"""cangyun.fields.Text: the one rule for a line of text in any declared body, edge or cloud."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from cangyun.fields import Text


class Line(BaseModel):
    text: Text(20)


class Note(BaseModel):
    text: Text(20, multiline=True)


def accepted(model: type[BaseModel], value: str) -> bool:
    try:
        model(text=value)
    except ValidationError:
        return False
    return True


@given(st.characters(codec="utf-8"))
def test_a_line_refuses_exactly_the_control_characters(char):
    # Cc is also what the CRM import refuses (cloud_api.crm.records), so the API and the
    # import agree on every character, C1 (U+0080..U+009F) included.
    assert accepted(Line, f"a{char}b") is (unicodedata.category(char) != "Cc")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_note_refuses_control_characters_but_keeps_line_breaks(char):
    assert not accepted(Note, f"a{char}b")
    assert accepted(Note, "第一行\r\n第二行\t完")
    assert not accepted(Line, "第一行\n第二行")


def test_the_text_is_stripped_and_bounded():
    assert Line(text="  库位 A-01  ").text == "库位 A-01"
    assert not accepted(Line, "x" * 21)
