"""Redirect URIs: exact matching (SECURITY-CASES "redirect_uri not exactly equal") and what may
be registered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.redirect_uri import (
    check_registered_uri,
    is_safe_registered_uri,
    match_redirect_uri,
    redirect_host,
)

REGISTERED = "https://bank.example/cb/oauth?tenant=1"
OTHER = "https://bank.example/other"


def _client(*uris: str) -> Client:
    return Client(
        client_id="bank",
        client_type="confidential",
        auth_method="private_key_jwt",
        display_name={"en": "Bank"},
        redirect_uris=uris,
        grant_types=("authorization_code",),
        scopes=frozenset({"openid"}),
        jwks=None,
        require_dpop=True,
        authorization_details_types=(),
        sector_identifier="bank.example",
        audiences=(),
    )


CLIENT = _client(REGISTERED, OTHER)


def _refused(requested: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        match_redirect_uri(CLIENT, requested)
    assert info.value.status == 400
    assert info.value.error == "invalid_request"
    return info.value


def test_exact_registered_uri_matches() -> None:
    assert match_redirect_uri(CLIENT, REGISTERED) == REGISTERED
    assert match_redirect_uri(CLIENT, OTHER) == OTHER


def test_extra_query_parameter_is_refused() -> None:
    _refused(REGISTERED + "&next=https://evil.example")


def test_query_added_to_uri_without_query_is_refused() -> None:
    _refused(OTHER + "?x=1")


def test_trailing_slash_is_refused() -> None:
    _refused(OTHER + "/")


def test_different_case_is_refused() -> None:
    _refused("https://BANK.example/other")
    _refused("https://bank.example/Other")
    _refused("HTTPS://bank.example/other")


def test_fragment_is_refused() -> None:
    _refused(OTHER + "#frag")
    _refused(OTHER + "#")


def test_dot_segments_are_refused() -> None:
    _refused("https://bank.example/cb/../other")
    _refused("https://bank.example/./other")
    _refused("https://bank.example/x/%2e%2e/other")


def test_percent_encoding_and_default_port_are_not_normalised() -> None:
    _refused("https://bank.example/%6fther")
    _refused("https://bank.example:443/other")


def test_missing_or_non_string_redirect_uri_is_refused() -> None:
    assert "required" in _refused(None).description
    _refused(["https://bank.example/other"])
    _refused(b"https://bank.example/other")


def test_error_does_not_echo_the_requested_uri() -> None:
    error = _refused("https://evil.example/cb")
    assert "evil" not in error.description


@given(st.text(max_size=80))
def test_anything_not_registered_is_refused(requested: str) -> None:
    if requested in CLIENT.redirect_uris:
        return
    with pytest.raises(InvalidRequest):
        match_redirect_uri(CLIENT, requested)


@given(st.sampled_from([REGISTERED, OTHER]), st.text(min_size=1, max_size=8))
def test_any_suffix_or_prefix_breaks_the_match(registered: str, extra: str) -> None:
    for candidate in (registered + extra, extra + registered):
        if candidate in CLIENT.redirect_uris:
            continue
        with pytest.raises(InvalidRequest):
            match_redirect_uri(CLIENT, candidate)


@pytest.mark.parametrize(
    "uri",
    [
        "https://bank.example/cb",
        "https://bank.example:8443/cb?tenant=1",
        "http://127.0.0.1:8080/cb",
        "http://[::1]/cb",
        "http://localhost:3000/cb",
    ],
)
def test_acceptable_registrations_outside_production(uri: str) -> None:
    assert check_registered_uri(uri, production=False) == uri
    assert is_safe_registered_uri(uri, production=False)


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "non-empty"),
        ("/cb", "absolute"),
        ("bank.example/cb", "absolute"),
        ("http://bank.example/cb", "https"),
        ("ftp://bank.example/cb", "absolute https"),
        ("HTTPS://bank.example/cb", "lower case"),
        ("com.bank.app:/cb", "absolute https"),
        ("https://bank.example/cb#x", "fragment"),
        ("https://bank.example/cb#", "fragment"),
        ("https://*.bank.example/cb", "wildcards"),
        ("https://bank.example/*", "wildcards"),
        ("https://user@bank.example/cb", "user information"),
        ("https:///cb", "host"),
        ("https://bank.example:99999/cb", "port"),
        ("https://bank.example/a/../cb", "dot-segments"),
        ("https://bank.example/a/%2E/cb", "dot-segments"),
        ("https://bank.example/c b", "spaces"),
        ("https://bank.example/\u00e9", "ASCII"),
        ("https://bank.example\\@evil.example/", "backslash"),
    ],
)
def test_unsafe_registrations_are_refused(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_registered_uri(uri, production=False)
    assert not is_safe_registered_uri(uri, production=False)


def test_loopback_http_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="production"):
        check_registered_uri("http://127.0.0.1:8080/cb", production=True)
    assert check_registered_uri("https://bank.example/cb", production=True)


def test_redirect_host_is_lower_case_host() -> None:
    assert redirect_host("https://Bank.Example:8443/cb") == "bank.example"
    assert redirect_host("http://[::1]/cb") == "::1"
