"""Client metadata ``post_logout_redirect_uris`` (OpenID Connect RP-Initiated Logout 1.0 §3.1,
issue 10 item 5): registered under the rules of redirect URIs, kept in the stored form, and
left out of it when empty so rows written before the field existed stay unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from trustanchor.oauth.client_metadata import (
    client_from_declaration,
    client_from_metadata,
    client_to_metadata,
)


def _bank(**changes: Any) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1", "use": "sig"}
    return {
        "client_id": "bank-a",
        "client_name": "Bank A",
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk]},
        "redirect_uris": ["https://bank-a.example/cb"],
        "grant_types": ["authorization_code"],
        "scope": "openid",
        **changes,
    }


def _refused(decl: dict[str, Any], mode: str = "production") -> str:
    with pytest.raises(ValueError) as info:
        client_from_declaration(decl, mode=mode, base_dir=Path())
    message = str(info.value)
    assert "post_logout_redirect_uris" in message, message
    return message


def test_registered_uris_are_kept_exactly_and_survive_storage() -> None:
    uris = ["https://bank-a.example/logged-out", "https://bank-a.example/bye?from=op"]
    client, _ = client_from_declaration(
        _bank(post_logout_redirect_uris=uris), mode="production", base_dir=Path()
    )
    assert client.post_logout_redirect_uris == tuple(uris)
    stored = client_to_metadata(client)
    assert stored["post_logout_redirect_uris"] == uris
    assert client_from_metadata(stored) == client
    # They are not redirect URIs: the sector identifier still comes from redirect_uris alone.
    other_host, _ = client_from_declaration(
        _bank(post_logout_redirect_uris=["https://elsewhere.example/bye"]),
        mode="production",
        base_dir=Path(),
    )
    assert other_host.sector_identifier == "bank-a.example"


def test_without_them_the_stored_form_is_as_before() -> None:
    client, _ = client_from_declaration(_bank(), mode="production", base_dir=Path())
    assert client.post_logout_redirect_uris == ()
    assert "post_logout_redirect_uris" not in client_to_metadata(client)


@pytest.mark.parametrize(
    "uri",
    [
        "http://bank-a.example/bye",  # not https
        "https://bank-a.example/bye#top",  # fragment
        "https://*.bank-a.example/bye",  # wildcard
        "https://bank-a.example/a/../bye",  # dot-segment
        "https://user@bank-a.example/bye",  # user information
        "/bye",  # relative
        "",
    ],
)
def test_unsafe_uris_are_refused(uri: str) -> None:
    _refused(_bank(post_logout_redirect_uris=[uri]))


def test_loopback_http_only_outside_production() -> None:
    decl = _bank(post_logout_redirect_uris=["http://127.0.0.1:8001/bye"])
    _refused(decl)
    client, _ = client_from_declaration(decl, mode="demo", base_dir=Path())
    assert client.post_logout_redirect_uris == ("http://127.0.0.1:8001/bye",)


def test_shape_duplicates_and_grant_are_checked() -> None:
    _refused(_bank(post_logout_redirect_uris="https://bank-a.example/bye"))
    _refused(_bank(post_logout_redirect_uris=["https://bank-a.example/bye"] * 2))
    machine = _bank(
        redirect_uris=[],
        grant_types=["client_credentials"],
        post_logout_redirect_uris=["https://bank-a.example/bye"],
    )
    assert "authorization_code" in _refused(machine)
