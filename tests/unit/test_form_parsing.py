"""trustanchor.web.forms.parse_query: the URL-encoded parser of the lean /token route and of
every query string it reads must give exactly what ``urllib.parse.parse_qsl`` gives with the
arguments werkzeug's reading corresponds to (it was written for speed, not for new rules)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.web.forms import _REQUOTE, parse_query, urlencoded_form

# the characters that matter to the parser, and some that do not
_ALPHABET = st.sampled_from([*"&=+%;ab Z09-_.~é\x00", "%2", "%41", "%C3%A9", "%ff", "%zz"])
_TEXT = st.lists(_ALPHABET, max_size=40).map("".join)


@settings(max_examples=2000, deadline=None)
@given(_TEXT)
def test_parse_query_is_parse_qsl(raw: str) -> None:
    assert parse_query(raw) == parse_qsl(raw, keep_blank_values=True, errors=_REQUOTE)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_parse_query_is_parse_qsl_on_any_text(raw: str) -> None:
    assert parse_query(raw) == parse_qsl(raw, keep_blank_values=True, errors=_REQUOTE)


def test_examples() -> None:
    assert parse_query("grant_type=client_credentials&scope=api%3Aread") == [
        ("grant_type", "client_credentials"),
        ("scope", "api:read"),
    ]
    assert parse_query("a&&b=&c=1+2&d=%ff") == [("a", ""), ("b", ""), ("c", "1 2"), ("d", "%FF")]
    assert urlencoded_form(b"x=1&x=2&y") == {"x": ["1", "2"], "y": [""]}
    assert urlencoded_form(b"\xff=1") == {}
