"""The card app's direct_post form (services/certificate_login.parse_response): every field read
at most once, sizes bounded, an error never together with an answer, and nothing but
ResponseMalformed for any input (property tests)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.services.certificate_login import (
    CertificateResponse,
    ResponseMalformed,
    parse_response,
)

STATE = "t" * 32
JWS = "eyJhbGciOiJSUzI1NiJ9.eyJub25jZSI6Im4ifQ.c2lnbmF0dXJl"


def parse(form: Any, max_bytes: int = 65536, max_jws_bytes: int = 16384) -> CertificateResponse:
    return parse_response(form, max_bytes=max_bytes, max_jws_bytes=max_jws_bytes)


def reason(form: Any, **limits: int) -> str:
    with pytest.raises(ResponseMalformed) as refused:
        parse(form, **limits)
    return refused.value.reason


def test_an_authentication_answer_and_an_enrolment_answer() -> None:
    assert parse({"state": [STATE], "authentication": [JWS]}) == CertificateResponse(
        state=STATE, authentication=JWS
    )
    both = parse({"state": [STATE], "authentication": [JWS], "signature": [JWS]})
    assert (both.authentication, both.signature, both.error) == (JWS, JWS, None)


def test_a_declined_answer() -> None:
    declined = parse({"state": [STATE], "error": ["access_denied"]})
    assert (declined.error, declined.authentication) == ("access_denied", None)


def test_fields_we_do_not_read_are_ignored() -> None:
    """A counter terminal's post carries its client authentication and staff operator."""
    form = {"state": [STATE], "authentication": [JWS], "staff_operator": ["a", "b"]}
    assert parse(form).authentication == JWS


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"state": [STATE, STATE], "authentication": [JWS]}, "repeated_parameter"),
        ({"state": [STATE], "authentication": [JWS, JWS]}, "repeated_parameter"),
        (
            {"state": [STATE], "signature": [JWS, JWS], "authentication": [JWS]},
            "repeated_parameter",
        ),
        ({"state": [], "authentication": [JWS]}, "malformed_form"),
        ({"authentication": [JWS]}, "invalid_state"),
        ({"state": ["a b"], "authentication": [JWS]}, "invalid_state"),
        ({"state": ["x" * 65], "authentication": [JWS]}, "invalid_state"),
        ({"state": [STATE]}, "missing_authentication"),
        ({"state": [STATE], "signature": [JWS]}, "missing_authentication"),
        ({"state": [STATE], "authentication": ["not-a-jws"]}, "malformed_authentication"),
        ({"state": [STATE], "authentication": [JWS + "~"]}, "malformed_authentication"),
        ({"state": [STATE], "authentication": [JWS], "signature": ["a.b"]}, "malformed_signature"),
        (
            {"state": [STATE], "authentication": [JWS], "error": ["access_denied"]},
            "ambiguous_response",
        ),
        ({"state": [STATE], "error": ['bad"code']}, "invalid_error"),
        ({"state": [STATE], "authentication": [JWS], "error_description": ["x"]}, "invalid_error"),
        ({"state": [STATE], "authentication": [1]}, "malformed_form"),
        ({"state": STATE}, "malformed_form"),
        (None, "malformed_form"),
    ],
)
def test_malformed_answers_are_refused_with_a_reason(form: Any, expected: str) -> None:
    assert reason(form) == expected


def test_sizes_are_bounded() -> None:
    assert reason({"state": [STATE], "authentication": [JWS]}, max_jws_bytes=len(JWS) - 1) == (
        "malformed_authentication"
    )
    big = {"state": [STATE], "authentication": [JWS], "padding": ["x" * 1000]}
    assert reason(big, max_bytes=1000) == "too_large"


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(".-_"),
    max_size=40,
)
_names = st.sampled_from(
    ["state", "authentication", "signature", "error", "error_description", "other"]
)
_forms = st.dictionaries(
    _names, st.lists(_text | st.just(JWS) | st.just(STATE), max_size=3), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(_forms)
def test_any_form_parses_or_is_refused_with_a_reason(form: dict[str, list[str]]) -> None:
    try:
        parsed = parse(form)
    except ResponseMalformed as refused:
        assert refused.reason
        return
    # Whatever parses holds exactly one state and an answer or an error, never both.
    assert form["state"] == [parsed.state]
    assert (parsed.error is None) != (parsed.authentication is None)
    if parsed.signature is not None:
        assert parsed.authentication is not None
