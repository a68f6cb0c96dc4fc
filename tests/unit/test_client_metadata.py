"""Client declarations: what the operator may register, and the stored round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from trustanchor.digests import secret_digest
from trustanchor.oauth.client_metadata import (
    client_from_declaration,
    client_from_metadata,
    client_to_metadata,
)


def _jwk(kid: str = "k1") -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


PUBLIC_KEY = _jwk()


def _bank(**changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "client_id": "bank-a",
        "client_name": {"en": "Bank A", "ja": "A銀行"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [PUBLIC_KEY]},
        "redirect_uris": ["https://bank-a.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid account_link",
        "authorization_details_types": ["account_link", "value_transfer"],
        "audiences": ["https://ledger.example"],
    }
    decl.update(changes)
    return {k: v for k, v in decl.items() if v is not None}


def _wallet(**changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "client_id": "wallet",
        "client_name": "Wallet",
        "client_type": "public",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["https://wallet.example/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid",
    }
    decl.update(changes)
    return {k: v for k, v in decl.items() if v is not None}


def _parse(decl: dict[str, Any], mode: str = "production", base_dir: Path = Path()) -> Any:
    return client_from_declaration(decl, mode=mode, base_dir=base_dir)


def _refused(decl: dict[str, Any], field: str, mode: str = "production", **kw: Any) -> str:
    with pytest.raises(ValueError) as info:
        _parse(decl, mode, **kw)
    message = str(info.value)
    assert message.startswith(f"client {decl.get('client_id', '<missing client_id>')!r}: {field}:")
    return message


def test_confidential_declaration_becomes_a_client() -> None:
    client, digest = _parse(_bank())
    assert digest is None
    assert client.client_id == "bank-a"
    assert client.client_type == "confidential"
    assert client.auth_method == "private_key_jwt"
    assert client.display_name == {"en": "Bank A", "ja": "A銀行"}
    assert client.redirect_uris == ("https://bank-a.example/cb",)
    assert client.scopes == frozenset({"openid", "account_link"})
    assert client.sector_identifier == "bank-a.example"
    assert client.audiences == ("https://ledger.example",)
    assert client.require_dpop is False
    assert client.can_introspect is False


def test_public_client_is_always_dpop_bound() -> None:
    client, _ = _parse(_wallet())
    assert client.is_public and client.require_dpop
    assert client.display_name == {"en": "Wallet"}
    _refused(_wallet(dpop_bound_access_tokens=False), "dpop_bound_access_tokens")


def test_public_client_must_use_auth_method_none() -> None:
    _refused(_wallet(token_endpoint_auth_method="private_key_jwt"), "token_endpoint_auth_method")


def test_public_client_grants_are_code_and_optional_refresh() -> None:
    assert _parse(_wallet(grant_types=["authorization_code"]))[0].grant_types == (
        "authorization_code",
    )
    _refused(_wallet(grant_types=["client_credentials"]), "grant_types")
    _refused(_wallet(grant_types=["authorization_code", "client_credentials"]), "grant_types")
    _refused(_wallet(grant_types=["refresh_token"]), "grant_types")


def test_public_client_cannot_introspect() -> None:
    _refused(_wallet(introspection=True), "introspection")


def test_confidential_client_must_not_use_none() -> None:
    _refused(_bank(token_endpoint_auth_method="none", jwks=None), "token_endpoint_auth_method")


def test_private_key_jwt_needs_jwks() -> None:
    _refused(_bank(jwks=None), "jwks")
    _refused(_bank(jwks={"keys": []}), "jwks")
    _refused(_bank(jwks={"keys": [{**PUBLIC_KEY, "use": "enc"}]}), "jwks")


def test_jwks_with_private_or_symmetric_keys_is_refused() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    private_jwk = ECAlgorithm.to_jwk(private, as_dict=True)
    assert "d" in private_jwk
    assert "private" in _refused(_bank(jwks={"keys": [private_jwk]}), "jwks")
    _refused(_bank(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "jwks")


def test_jwks_with_off_curve_point_is_refused() -> None:
    broken = {**PUBLIC_KEY, "y": PUBLIC_KEY["x"]}
    _refused(_bank(jwks={"keys": [broken]}), "jwks")


def test_jwks_with_duplicate_kid_or_symmetric_alg_is_refused() -> None:
    _refused(_bank(jwks={"keys": [_jwk("same"), _jwk("same")]}), "jwks")
    _refused(_bank(jwks={"keys": [{**PUBLIC_KEY, "alg": "HS256"}]}), "jwks")


def test_jwks_file_is_read_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bank.jwks").write_text(json.dumps({"keys": [PUBLIC_KEY]}))
    client, _ = _parse(_bank(jwks=None, jwks_file="keys/bank.jwks"), base_dir=tmp_path)
    assert client.jwks == {"keys": [PUBLIC_KEY]}


def test_jwks_file_problems_are_named(tmp_path: Path) -> None:
    assert "cannot read" in _refused(
        _bank(jwks=None, jwks_file="missing.jwks"), "jwks_file", base_dir=tmp_path
    )
    (tmp_path / "dup.jwks").write_text('{"keys": [], "keys": []}')
    _refused(_bank(jwks=None, jwks_file="dup.jwks"), "jwks_file", base_dir=tmp_path)
    _refused(_bank(jwks_file="dup.jwks"), "jwks", base_dir=tmp_path)


def test_redirect_uris_must_be_safe() -> None:
    for bad in (
        "http://bank-a.example/cb",
        "https://bank-a.example/cb#x",
        "https://*.bank-a.example/cb",
        "/cb",
    ):
        _refused(_bank(redirect_uris=[bad]), "redirect_uris")


def test_loopback_http_only_outside_production() -> None:
    decl = _wallet(redirect_uris=["http://127.0.0.1:8080/cb"])
    _refused(decl, "redirect_uris", mode="production")
    client, _ = _parse(decl, mode="demo")
    assert client.redirect_uris == ("http://127.0.0.1:8080/cb",)


def test_authorization_code_needs_redirect_uris() -> None:
    _refused(_bank(redirect_uris=[]), "redirect_uris")
    _refused(_bank(grant_types=["client_credentials"]), "redirect_uris")


def test_resource_server_without_redirects() -> None:
    client, _ = _parse(
        _bank(
            client_id="ledger",
            grant_types=[],
            redirect_uris=None,
            introspection=True,
            scope=None,
        )
    )
    assert client.can_introspect
    assert client.redirect_uris == ()
    assert client.sector_identifier == "ledger"


def test_sector_identifier_required_when_hosts_differ() -> None:
    uris = ["https://a.bank.example/cb", "https://b.bank.example/cb"]
    _refused(_bank(redirect_uris=uris), "sector_identifier")
    client, _ = _parse(_bank(redirect_uris=uris, sector_identifier="bank.example"))
    assert client.sector_identifier == "bank.example"
    _refused(_bank(sector_identifier="https://bank.example/"), "sector_identifier")


def test_unknown_keys_are_refused() -> None:
    message = _refused(_bank(token_endpoint_auth_methods="none"), "token_endpoint_auth_methods")
    assert "unknown key" in message


def test_missing_or_bad_client_id_is_refused() -> None:
    _refused(_bank(client_id=None), "client_id")
    with pytest.raises(ValueError, match="client_id"):
        _parse(_bank(client_id="has space"))


def test_bad_field_types_are_refused() -> None:
    _refused(_bank(client_type="spa"), "client_type")
    _refused(_bank(redirect_uris="https://bank-a.example/cb"), "redirect_uris")
    _refused(_bank(grant_types=["implicit"]), "grant_types")
    _refused(_bank(scope=["openid"]), "scope")
    _refused(_bank(scope="openid  double"), "scope")
    _refused(_bank(scope='bad"quote'), "scope")
    _refused(_bank(introspection="yes"), "introspection")
    _refused(_bank(audiences=["ledger"]), "audiences")
    _refused(_bank(client_name={"english": "x"}), "client_name")
    _refused(_bank(client_name=""), "client_name")
    _refused(_bank(client_name={}), "client_name")
    _refused(_bank(redirect_uris=["https://bank-a.example/cb"] * 2), "redirect_uris")


def test_client_secret_basic_is_refused_in_production() -> None:
    decl = _bank(
        token_endpoint_auth_method="client_secret_basic", jwks=None, client_secret="x" * 20
    )
    _refused(decl, "token_endpoint_auth_method", mode="production")


def test_client_secret_basic_in_demo_returns_only_a_digest() -> None:
    decl = _bank(
        token_endpoint_auth_method="client_secret_basic", jwks=None, client_secret="demo-secret-1"
    )
    client, digest = _parse(decl, mode="demo")
    assert client.auth_method == "client_secret_basic"
    assert digest == secret_digest("demo-secret-1")
    assert "demo-secret-1" not in json.dumps(client_to_metadata(client))


def test_client_secret_rules_in_demo() -> None:
    basic = {"token_endpoint_auth_method": "client_secret_basic", "jwks": None}
    _refused(_bank(**basic), "client_secret", mode="demo")
    _refused(_bank(**basic, client_secret="short"), "client_secret", mode="demo")
    _refused(_bank(client_secret="demo-secret-1"), "client_secret", mode="demo")


def test_jwks_refused_for_methods_that_do_not_use_it() -> None:
    _refused(_wallet(jwks={"keys": [PUBLIC_KEY]}), "jwks")


def test_stored_metadata_round_trip() -> None:
    for decl, mode in ((_bank(), "production"), (_wallet(), "production")):
        client, _ = _parse(decl, mode)
        stored = json.loads(json.dumps(client_to_metadata(client)))
        assert client_from_metadata(stored, updated_at=0) == client
    demo, _ = _parse(_wallet(redirect_uris=["http://[::1]:9000/cb"]), mode="demo")
    assert client_from_metadata(client_to_metadata(demo)) == demo
    nameless, _ = _parse(_wallet(client_name=None))
    assert nameless.display_name == {}
    assert client_from_metadata(client_to_metadata(nameless)) == nameless


def test_stored_metadata_refuses_secrets_and_files() -> None:
    client, _ = _parse(_bank())
    stored = client_to_metadata(client)
    with pytest.raises(ValueError, match="client_secret"):
        client_from_metadata({**stored, "client_secret": "x" * 20})
    with pytest.raises(ValueError, match="jwks_file"):
        client_from_metadata({**stored, "jwks_file": "/etc/passwd"})


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        client_from_declaration(_bank(), mode="staging", base_dir=Path())


def test_audit_scope_only_for_client_credentials_private_key_jwt_clients() -> None:
    auditor = _bank(
        client_id="auditor",
        redirect_uris=None,
        grant_types=["client_credentials"],
        scope="audit",
        authorization_details_types=None,
    )
    assert "audit" in _parse(auditor)[0].scopes
    assert "audit is only for" in _refused(_bank(scope="openid audit"), "scope")
    assert "audit is only for" in _refused(
        _bank(grant_types=["client_credentials", "authorization_code"], scope="audit"), "scope"
    )
    assert "audit is only for" in _refused(_wallet(scope="openid audit"), "scope")


@pytest.mark.parametrize(
    "client_id", ["ops@bank.example", "A" * 43, "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"]
)
def test_a_client_id_the_audit_log_cannot_record_is_refused(client_id: str) -> None:
    assert "audit log could not record it" in _refused(_bank(client_id=client_id), "client_id")


def test_an_unknown_authorization_details_type_is_refused_at_registration() -> None:
    message = _refused(
        _bank(authorization_details_types=["account_link", "payment_initiation"]),
        "authorization_details_types",
    )
    assert "'payment_initiation' is not a supported type" in message
    assert _parse(_bank(authorization_details_types=["value_transfer"]))
