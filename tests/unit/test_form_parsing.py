"""The parsers on every token request, rewritten for speed and held to their reference by
property tests: trustanchor.web.forms.parse_query (the lean /token route's form and query) must
give exactly what ``urllib.parse.parse_qsl`` gives with the arguments werkzeug's reading
corresponds to, and trustanchor.oauth.scopes.parse_scope must accept exactly the scope-tokens of
RFC 6749 §3.3 that its former character-by-character check accepted."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.oauth.errors import InvalidScope
from trustanchor.oauth.scopes import parse_scope
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


def _scope_by_characters(value: str) -> tuple[str, ...] | None:
    """The rule parse_scope implements, character by character (RFC 6749 §3.3); None when
    the value is refused."""
    parts = value.split(" ")
    if any(not p for p in parts):
        return None
    if not all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for part in parts for c in part):
        return None
    return tuple(dict.fromkeys(parts))


_SCOPE_PIECES = st.sampled_from([*' !"#[\\]~\x7f\x00éab:', "api:read", "openid"])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_SCOPE_PIECES, max_size=30).map("".join))
def test_parse_scope_is_the_character_rule(value: str) -> None:
    try:
        parsed: tuple[str, ...] | None = parse_scope(value)
    except InvalidScope:
        parsed = None
    assert parsed == _scope_by_characters(value)
