"""The list commands' tables (trustanchor/cli/table.py): aligned columns, wide characters
counted as two, nothing in a cell able to break a row or hide what it says."""

from __future__ import annotations

import pytest

from trustanchor.cli.table import render


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    lines = render(("id", "kind", "name"), [("jp", "sd_jwt_vc", "My Number"), ("eu-pid", "", "")])
    assert lines == [
        "id      kind       name",
        "jp      sd_jwt_vc  My Number",
        "eu-pid  -          -",
    ]


def test_wide_characters_take_two_columns() -> None:
    lines = render(("name", "id"), [("デモ銀行", "a"), ("Demo Bank", "b")])
    assert lines == ["name       id", "デモ銀行   a", "Demo Bank  b"]


@pytest.mark.parametrize("hidden", ["\t", "\n", "\r", "\x1b", "\u202e", "\u2028"])
def test_control_and_format_characters_cannot_break_a_row(hidden: str) -> None:
    _header, row = render(("label", "x"), [(f"a{hidden}b", "y")])
    assert row == "a?b    y"
    assert len(render(("label",), [(f"a{hidden}b",)])) == 2


def test_a_row_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="one value per column"):
        render(("a", "b"), [("only one",)])
