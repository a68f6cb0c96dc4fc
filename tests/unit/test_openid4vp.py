"""OpenID4VP 1.0 verifier side: DCQL, the signed Request Object, wallet links, direct_post parsing.

The Request Object is checked with an independent JOSE library (joserfc), not with our own code.
"""

from __future__ import annotations

import base64
import datetime
import json
import string
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws as rfc_jws
from joserfc.jwk import ECKey
from joserfc.registry import HeaderParameter

from trustanchor.digests import sha256_b64url
from trustanchor.jose import jws
from trustanchor.jose.jwk import PrivateKey, public_jwk, thumbprint
from trustanchor.keystore.signing_keys import SigningKey
from trustanchor.openid4vp import dcql, links, request_object, response, transaction_data
from trustanchor.openid4vp.dcql import DCQLError
from trustanchor.openid4vp.links import LinkError
from trustanchor.openid4vp.request_object import (
    RequestObjectError,
    RequestUriPostError,
    VerifierIdentity,
    build_request_object,
)
from trustanchor.openid4vp.response import WalletResponse, WalletResponseError, parse_direct_post

AT = 1_760_000_000
NONCE = "n0nce-" + "A" * 40
STATE = "st4te-" + "B" * 40
RESPONSE_URI = "https://auth.example.jp/wallet/response"
REQUEST_URI = "https://auth.example.jp/wallet/request/" + "C" * 43
CLIENT_ID = "trustanchor-verifier"
VCT = "https://credentials.example.jp/national_id"
PRESENTATION = "eyJhbGciOiJFUzI1NiJ9.eyJ2Y3QiOiJ4In0.c2ln~WyJzYWx0IiwibmFtZSIsIlgiXQ~eyJ0.eyJu.c2ln"
REQUIRED_MEMBERS = {
    "iss",
    "aud",
    "iat",
    "exp",
    "client_id",
    "response_type",
    "response_mode",
    "response_uri",
    "nonce",
    "state",
    "dcql_query",
}


def _signing_key(private: PrivateKey, alg: str) -> SigningKey:
    return SigningKey(
        kid=thumbprint(public_jwk(private)),
        alg=alg,
        created_at=AT,
        retired_at=None,
        demo=True,
        private_key=private,
    )


@pytest.fixture(scope="module")
def es256_key() -> SigningKey:
    return _signing_key(ec.generate_private_key(ec.SECP256R1()), "ES256")


@pytest.fixture(scope="module")
def query() -> dict[str, Any]:
    return dcql.build_query("national_id", [VCT], [["family_name"], ["given_name"], ["birthdate"]])


def _build(verifier: VerifierIdentity, query: dict[str, Any], **overrides: Any) -> str:
    arguments: dict[str, Any] = {
        "nonce": NONCE,
        "state": STATE,
        "response_uri": RESPONSE_URI,
        "dcql_query": query,
        "at": AT,
        "lifetime": 300,
    }
    arguments.update(overrides)
    return build_request_object(verifier, **arguments)


def _independent_verify(token: str, key: SigningKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with joserfc and the public JWK only (as a wallet holding our JWKS would)."""
    public = ECKey.import_key(dict(key.public_jwk()))
    registry = rfc_jws.JWSRegistry(
        header_registry={"jwt": HeaderParameter("OpenID4VP Verifier Attestation JWT", "str")},
        algorithms=["ES256"],
    )
    registry.max_header_length = 8192  # x5c and attestation headers exceed joserfc's 512 default
    obj = rfc_jws.deserialize_compact(token, public, registry=registry)
    return dict(obj.headers()), json.loads(obj.payload)


def _self_signed(key: PrivateKey, dns_name: str) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def _x5c(der: bytes) -> tuple[str, ...]:
    return (base64.b64encode(der).decode("ascii"),)


# -- DCQL ----------------------------------------------------------------------------------------


def test_build_query_is_one_sd_jwt_vc_credential_query() -> None:
    q = dcql.build_query("national_id", [VCT], [["family_name"], ["address", "locality"]])
    assert q == {
        "credentials": [
            {
                "id": "national_id",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [VCT]},
                "claims": [{"path": ["family_name"]}, {"path": ["address", "locality"]}],
            }
        ]
    }
    assert dcql.credential_ids(q) == ("national_id",)


def test_build_query_without_claims_omits_claims() -> None:
    q = dcql.build_query("pid", [VCT], [])
    assert "claims" not in q["credentials"][0]


def test_build_query_refuses_a_bare_string_as_vct_values() -> None:
    with pytest.raises(DCQLError) as err:
        dcql.build_query("pid", VCT, [["family_name"]])
    assert err.value.reason == "invalid_meta"


def test_build_query_refuses_bad_credential_id() -> None:
    with pytest.raises(DCQLError) as err:
        dcql.build_query("national id", [VCT], [["family_name"]])
    assert err.value.reason == "invalid_id"


def test_validate_accepts_specification_shapes() -> None:
    dcql.validate_query(
        {
            "credentials": [
                {
                    "id": "pid",
                    "format": "dc+sd-jwt",
                    "meta": {"vct_values": [VCT]},
                    "claims": [
                        {"id": "a", "path": ["address", "street_address"]},
                        {"id": "b", "path": ["nationalities", None]},
                        {"id": "c", "path": ["degrees", 0, "type"], "values": ["BSc", 1, True]},
                    ],
                    "claim_sets": [["a", "c"], ["b"]],
                    "trusted_authorities": [
                        {"type": "aki", "values": ["s9tIpPmhxdiuNkHMEWNpYim8S8Y"]}
                    ],
                    "multiple": False,
                    "require_cryptographic_holder_binding": True,
                },
                {
                    "id": "mdl",
                    "format": "mso_mdoc",
                    "meta": {"doctype_value": "org.iso.18013.5.1.mDL"},
                    "claims": [{"path": ["org.iso.18013.5.1", "family_name"]}],
                },
            ],
            "credential_sets": [{"options": [["pid"], ["mdl"]], "required": True}],
            "future_extension": {"ignored": True},
        }
    )


def _one(**credential: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "pid", "format": "dc+sd-jwt", "meta": {"vct_values": [VCT]}}
    base.update(credential)
    return {"credentials": [{k: v for k, v in base.items() if v is not _DROP}]}


_DROP = object()


@pytest.mark.parametrize(
    ("q", "reason"),
    [
        ([], "not_an_object"),
        ({}, "not_a_non_empty_array"),
        ({"credentials": []}, "not_a_non_empty_array"),
        ({"credentials": ["pid"]}, "invalid_credential_query"),
        (_one(id=""), "invalid_id"),
        (_one(id="a.b"), "invalid_id"),
        (_one(format=""), "invalid_format"),
        (_one(meta=_DROP), "invalid_meta"),
        (_one(meta={}), "not_a_non_empty_array"),
        (_one(meta={"vct_values": [""]}), "invalid_meta"),
        (_one(multiple="yes"), "invalid_credential_query"),
        (_one(claims=[]), "not_a_non_empty_array"),
        (_one(claims=[{"path": []}]), "not_a_non_empty_array"),
        (_one(claims=[{"path": ["a", -1]}]), "invalid_claim_path"),
        (_one(claims=[{"path": ["a", True]}]), "invalid_claim_path"),
        (_one(claims=[{"path": ["a", 1.5]}]), "invalid_claim_path"),
        (_one(claims=[{"path": ["a"]}, {"path": ["a"]}]), "duplicate_claim"),
        (_one(claims=[{"path": ["a"], "values": [1.5]}]), "invalid_claims_query"),
        (_one(claim_sets=[["a"]]), "invalid_claim_sets"),
        (_one(claims=[{"path": ["a"]}], claim_sets=[["a"]]), "invalid_id"),
        (_one(claims=[{"id": "a", "path": ["a"]}], claim_sets=[["b"]]), "unknown_claim_id"),
        (_one(claims=[{"id": "a", "path": ["a"]}], claim_sets=[[["a"]]]), "unknown_claim_id"),
        (
            _one(claims=[{"id": "a", "path": ["a"]}, {"id": "a", "path": ["b"]}]),
            "duplicate_id",
        ),
        (_one(trusted_authorities=[{"type": "aki", "values": []}]), "not_a_non_empty_array"),
        (
            {"credentials": _one()["credentials"] * 2},
            "duplicate_id",
        ),
        (
            {**_one(), "credential_sets": [{"options": [["other"]]}]},
            "unknown_credential_id",
        ),
        (
            {**_one(), "credential_sets": [{"options": [[{"id": "pid"}]]}]},
            "unknown_credential_id",
        ),
        (
            {
                "credentials": [
                    {
                        "id": "m",
                        "format": "mso_mdoc",
                        "meta": {"doctype_value": "x"},
                        "claims": [{"path": ["only_one"]}],
                    }
                ]
            },
            "invalid_claim_path",
        ),
    ],
)
def test_validate_rejects_malformed_queries(q: Any, reason: str) -> None:
    with pytest.raises(DCQLError) as err:
        dcql.validate_query(q)
    assert err.value.reason == reason


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "credentials",
                    "id",
                    "format",
                    "meta",
                    "vct_values",
                    "claims",
                    "path",
                    "claim_sets",
                    "values",
                    "credential_sets",
                    "options",
                    "required",
                    "multiple",
                    "trusted_authorities",
                    "type",
                    "doctype_value",
                ]
            )
            | st.text(max_size=4),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@given(_json)
@settings(max_examples=400)
def test_validate_query_only_ever_raises_dcql_error(q: Any) -> None:
    try:
        dcql.validate_query(q)
    except DCQLError as exc:
        assert exc.reason
    else:
        assert dcql.credential_ids(q)


# -- Client Identifier Prefix and VerifierIdentity ---------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "prefix"),
    [
        ("trustanchor-verifier", "pre-registered"),
        ("https://auth.example.jp", "pre-registered"),
        ("x509_hash:abc", "x509_hash"),
        ("x509_san_dns:auth.example.jp", "x509_san_dns"),
        ("decentralized_identifier:did:example:123", "decentralized_identifier"),
        ("verifier_attestation:auth", "verifier_attestation"),
        ("redirect_uri:https://auth.example.jp/cb", "redirect_uri"),
        ("openid_federation:https://auth.example.jp", "openid_federation"),
    ],
)
def test_client_id_prefix_is_the_text_before_the_first_colon(client_id: str, prefix: str) -> None:
    assert request_object.client_id_prefix(client_id) == prefix


def test_redirect_uri_prefix_is_refused_because_it_cannot_be_signed(es256_key: SigningKey) -> None:
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("redirect_uri:https://auth.example.jp/cb", es256_key)
    assert err.value.reason == "unsignable_prefix"


def test_origin_prefix_is_reserved(es256_key: SigningKey) -> None:
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("origin:https://auth.example.jp", es256_key)
    assert err.value.reason == "reserved_prefix"


def test_client_id_with_spaces_is_refused(es256_key: SigningKey) -> None:
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("trust anchor", es256_key)
    assert err.value.reason == "invalid_client_id"


def test_x5c_with_a_pre_registered_client_is_refused(es256_key: SigningKey) -> None:
    der = _self_signed(es256_key.private_key, "auth.example.jp")
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity(CLIENT_ID, es256_key, x5c=_x5c(der))
    assert err.value.reason == "unexpected_x5c"


# -- The Request Object (pre-registered client, the default) -----------------------------------


def test_request_object_verifies_with_joserfc_and_has_exactly_the_required_members(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    token = _build(VerifierIdentity(CLIENT_ID, es256_key), query)
    header, claims = _independent_verify(token, es256_key)
    assert header == {"alg": "ES256", "typ": "oauth-authz-req+jwt", "kid": es256_key.kid}
    assert set(claims) == REQUIRED_MEMBERS
    assert claims == {
        "iss": CLIENT_ID,
        "aud": "https://self-issued.me/v2",
        "iat": AT,
        "exp": AT + 300,
        "client_id": CLIENT_ID,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": RESPONSE_URI,
        "nonce": NONCE,
        "state": STATE,
        "dcql_query": query,
    }
    # response_uri and redirect_uri are mutually exclusive; pre-registered: no client_metadata.
    assert "redirect_uri" not in claims and "client_metadata" not in claims


def test_request_object_passes_our_own_typ_check(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    token = _build(VerifierIdentity(CLIENT_ID, es256_key), query)
    _, claims = jws.verify(
        token,
        es256_key.public_key,
        allowed_algs=("ES256",),
        max_bytes=16384,
        typ=request_object.REQUEST_OBJECT_TYP,
    )
    assert claims["nonce"] == NONCE


def test_request_object_signed_with_eddsa_key_verifies() -> None:
    key = _signing_key(ed25519.Ed25519PrivateKey.generate(), "EdDSA")
    token = _build(VerifierIdentity(CLIENT_ID, key), dcql.build_query("pid", [VCT], []))
    header, _ = jws.verify(token, key.public_key, allowed_algs=("EdDSA",), max_bytes=16384)
    assert header["alg"] == "EdDSA" and header["kid"] == key.kid


def test_wallet_nonce_is_echoed(es256_key: SigningKey, query: dict[str, Any]) -> None:
    verifier = VerifierIdentity(CLIENT_ID, es256_key)
    token = _build(verifier, query, wallet_nonce="qPmxiNFCR3QTm19POc8u")
    _, claims = _independent_verify(token, es256_key)
    assert claims["wallet_nonce"] == "qPmxiNFCR3QTm19POc8u"
    assert set(claims) == REQUIRED_MEMBERS | {"wallet_nonce"}


def _element(credential_id: str = "national_id") -> str:
    return transaction_data.encode(
        transaction_data.funding_element(
            direction="deposit_to_wallet",
            amount="10000",
            currency="JPY",
            deposit_account_reference="…dep1",
            wallet_account_reference="…wal1",
            credential_ids=[credential_id],
        )
    )


def test_transaction_data_is_sent_exactly_as_given(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    """OpenID4VP 1.0 section 5.1: an array of the base64url strings, unchanged."""
    verifier = VerifierIdentity(CLIENT_ID, es256_key)
    element = _element()
    _, claims = _independent_verify(
        _build(verifier, query, transaction_data_items=[element]), es256_key
    )
    assert claims["transaction_data"] == [element]
    assert set(claims) == REQUIRED_MEMBERS | {"transaction_data"}
    _, plain = _independent_verify(_build(verifier, query), es256_key)
    assert "transaction_data" not in plain


@pytest.mark.parametrize(
    "items",
    [
        ["not-an-element"],
        [_element("another_credential")],  # names a credential the query does not ask for
        [_element()] * 5,
    ],
)
def test_transaction_data_a_wallet_would_refuse_is_not_sent(
    es256_key: SigningKey, query: dict[str, Any], items: list[str]
) -> None:
    verifier = VerifierIdentity(CLIENT_ID, es256_key)
    with pytest.raises(RequestObjectError) as caught:
        _build(verifier, query, transaction_data_items=items)
    assert caught.value.reason == "invalid_transaction_data"


def test_client_metadata_with_a_pre_registered_client_is_refused(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    with pytest.raises(RequestObjectError) as err:
        _build(
            VerifierIdentity(CLIENT_ID, es256_key),
            query,
            client_metadata=request_object.sd_jwt_vc_client_metadata(),
        )
    assert err.value.reason == "unexpected_client_metadata"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("nonce", "short", "invalid_nonce"),
        ("nonce", "A" * 30 + " " + "B", "invalid_nonce"),
        ("nonce", "A" * 257, "invalid_nonce"),
        ("state", "A" * 21, "invalid_state"),
        ("state", "A" * 30 + "/", "invalid_state"),
        ("response_uri", "http://auth.example.jp/wallet/response", "invalid_response_uri"),
        ("response_uri", "https://auth.example.jp/wallet/response#frag", "invalid_response_uri"),
        ("response_uri", "https://user@auth.example.jp/r", "invalid_response_uri"),
        ("response_uri", "/wallet/response", "invalid_response_uri"),
        ("dcql_query", {"credentials": []}, "invalid_dcql_query"),
        ("lifetime", 0, "invalid_lifetime"),
        ("lifetime", 3601, "invalid_lifetime"),
        ("lifetime", True, "invalid_lifetime"),
        ("at", -1, "invalid_time"),
        ("wallet_nonce", "", "invalid_wallet_nonce"),
        ("wallet_nonce", "with space", "invalid_wallet_nonce"),
    ],
)
def test_request_object_refuses_bad_arguments(
    es256_key: SigningKey, query: dict[str, Any], field: str, value: Any, reason: str
) -> None:
    with pytest.raises(RequestObjectError) as err:
        _build(VerifierIdentity(CLIENT_ID, es256_key), query, **{field: value})
    assert err.value.reason == reason


def test_http_loopback_response_uri_only_when_allowed(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    verifier = VerifierIdentity(CLIENT_ID, es256_key)
    local = "http://127.0.0.1:5000/wallet/response"
    with pytest.raises(RequestObjectError):
        _build(verifier, query, response_uri=local)
    _, claims = _independent_verify(
        _build(verifier, query, response_uri=local, allow_http_loopback=True), es256_key
    )
    assert claims["response_uri"] == local


# -- Other prefixes: configurable, checked at construction --------------------------------------


def test_x509_hash_identity_sends_x5c_and_client_metadata(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    der = _self_signed(es256_key.private_key, "auth.example.jp")
    verifier = VerifierIdentity("x509_hash:" + sha256_b64url(der), es256_key, x5c=_x5c(der))
    with pytest.raises(RequestObjectError) as err:
        _build(verifier, query)
    assert err.value.reason == "missing_client_metadata"
    metadata = request_object.sd_jwt_vc_client_metadata()
    token = _build(verifier, query, client_metadata=metadata)
    header, claims = _independent_verify(token, es256_key)
    assert header["x5c"] == list(_x5c(der)) and "kid" not in header
    assert claims["client_metadata"] == {
        "vp_formats_supported": {
            "dc+sd-jwt": {"sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"]}
        }
    }
    assert claims["client_id"] == claims["iss"] == verifier.client_id


def test_x509_hash_must_be_the_hash_of_the_leaf(es256_key: SigningKey) -> None:
    der = _self_signed(es256_key.private_key, "auth.example.jp")
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("x509_hash:" + sha256_b64url(b"other"), es256_key, x5c=_x5c(der))
    assert err.value.reason == "x509_hash_mismatch"


def test_x509_prefix_without_certificate_is_refused(es256_key: SigningKey) -> None:
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("x509_hash:abc", es256_key)
    assert err.value.reason == "missing_x5c"


def test_x509_leaf_must_hold_our_signing_key(es256_key: SigningKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    der = _self_signed(other, "auth.example.jp")
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("x509_hash:" + sha256_b64url(der), es256_key, x5c=_x5c(der))
    assert err.value.reason == "x5c_key_mismatch"


def test_x509_san_dns_must_be_in_the_certificate_and_host_the_response_uri(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    der = _self_signed(es256_key.private_key, "auth.example.jp")
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("x509_san_dns:other.example.jp", es256_key, x5c=_x5c(der))
    assert err.value.reason == "x509_san_mismatch"
    verifier = VerifierIdentity("x509_san_dns:auth.example.jp", es256_key, x5c=_x5c(der))
    metadata = request_object.sd_jwt_vc_client_metadata()
    _build(verifier, query, client_metadata=metadata)
    with pytest.raises(RequestObjectError) as err:
        _build(
            verifier,
            query,
            client_metadata=metadata,
            response_uri="https://elsewhere.example.jp/response",
        )
    assert err.value.reason == "invalid_response_uri"


def test_garbage_x5c_is_refused(es256_key: SigningKey) -> None:
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity("x509_hash:abc", es256_key, x5c=("not base64!",))
    assert err.value.reason == "invalid_x5c"


def test_decentralized_identifier_needs_a_did_url_as_kid(es256_key: SigningKey) -> None:
    did = "did:web:auth.example.jp"
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity(f"decentralized_identifier:{did}", es256_key)
    assert err.value.reason == "invalid_did"
    verifier = VerifierIdentity(
        f"decentralized_identifier:{did}", es256_key, kid_override=f"{did}#key-1"
    )
    assert verifier.jose_header() == {"typ": "oauth-authz-req+jwt", "kid": f"{did}#key-1"}


def _attestation(issuer_key: ec.EllipticCurvePrivateKey, sub: str, bound: PrivateKey) -> str:
    claims = {
        "iss": "https://attester.example.jp",
        "sub": sub,
        "exp": AT + 86400,
        "cnf": {"jwk": public_jwk(bound)},
    }
    return jws.sign(claims, issuer_key, alg="ES256", headers={"typ": "verifier-attestation+jwt"})


def test_verifier_attestation_is_carried_in_the_jwt_header(
    es256_key: SigningKey, query: dict[str, Any]
) -> None:
    attester = ec.generate_private_key(ec.SECP256R1())
    token = _attestation(attester, "auth.example.jp", es256_key.private_key)
    verifier = VerifierIdentity(
        "verifier_attestation:auth.example.jp", es256_key, attestation_jwt=token
    )
    header, _ = _independent_verify(
        _build(verifier, query, client_metadata=request_object.sd_jwt_vc_client_metadata()),
        es256_key,
    )
    assert header["jwt"] == token


@pytest.mark.parametrize("wrong", ["sub", "cnf"])
def test_verifier_attestation_must_name_us_and_bind_our_key(
    es256_key: SigningKey, wrong: str
) -> None:
    attester = ec.generate_private_key(ec.SECP256R1())
    sub = "someone.else" if wrong == "sub" else "auth.example.jp"
    bound = attester if wrong == "cnf" else es256_key.private_key
    with pytest.raises(RequestObjectError) as err:
        VerifierIdentity(
            "verifier_attestation:auth.example.jp",
            es256_key,
            attestation_jwt=_attestation(attester, sub, bound),
        )
    assert err.value.reason == "invalid_attestation"


# -- POST to request_uri (request_uri_method=post) ---------------------------------------------


def test_request_uri_post_reads_wallet_nonce_and_metadata() -> None:
    metadata = {"vp_formats_supported": {"dc+sd-jwt": {"kb-jwt_alg_values": ["ES256"]}}}
    parsed = request_object.parse_request_uri_post(
        {
            "wallet_nonce": ["qPmxiNFCR3QTm19POc8u"],
            "wallet_metadata": [json.dumps(metadata)],
            "unknown": ["x", "y"],
        },
        max_bytes=4096,
    )
    assert parsed.wallet_nonce == "qPmxiNFCR3QTm19POc8u"
    assert parsed.wallet_metadata == metadata
    empty = request_object.parse_request_uri_post({}, max_bytes=4096)
    assert empty.wallet_nonce is None and empty.wallet_metadata is None


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"wallet_nonce": ["a", "b"]}, "repeated_parameter"),
        ({"wallet_nonce": ["has space"]}, "invalid_wallet_nonce"),
        ({"wallet_metadata": ["[1]"]}, "invalid_wallet_metadata"),
        ({"wallet_metadata": ['{"a":1,"a":2}']}, "invalid_wallet_metadata"),
        ({"wallet_metadata": ["x" * 5000]}, "too_large"),
        ({"wallet_nonce": "abc"}, "malformed"),
    ],
)
def test_request_uri_post_rejects_malformed_bodies(form: Any, reason: str) -> None:
    with pytest.raises(RequestUriPostError) as err:
        request_object.parse_request_uri_post(form, max_bytes=4096)
    assert err.value.reason == reason


# -- Wallet invocation links ---------------------------------------------------------------------


def _query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)


@pytest.mark.parametrize(
    ("base", "prefix"),
    [
        ("openid4vp://", "openid4vp://?"),
        ("openid4vp:", "openid4vp://?"),
        ("haip-vp://", "haip-vp://?"),
        ("https://wallet.example.jp/authorize", "https://wallet.example.jp/authorize?"),
    ],
)
def test_wallet_url_round_trips_through_urllib(base: str, prefix: str) -> None:
    url = links.wallet_request_url(base, client_id=CLIENT_ID, request_uri=REQUEST_URI)
    assert url.startswith(prefix)
    assert _query_of(url) == {"client_id": [CLIENT_ID], "request_uri": [REQUEST_URI]}
    # ':' and '/' of the request_uri are percent-encoded, as in the specification's examples.
    assert "request_uri=https%3A%2F%2F" in url


def test_prefixed_client_id_and_request_uri_method_round_trip() -> None:
    client_id = "x509_hash:Uvo3HtuIxuhC92rShpgqcT3YXwrqRxWEviRiA0OZszk"
    url = links.wallet_request_url(
        "openid4vp://", client_id=client_id, request_uri=REQUEST_URI, request_uri_method="post"
    )
    assert _query_of(url) == {
        "client_id": [client_id],
        "request_uri": [REQUEST_URI],
        "request_uri_method": ["post"],
    }
    assert links.parse_wallet_request_url(url) == links.WalletRequestParams(
        client_id, REQUEST_URI, "post"
    )


def test_wallet_links_share_the_request_uri() -> None:
    result = links.wallet_links(
        same_device_base="https://wallet.example.jp/ul",
        qr_base="openid4vp://",
        client_id=CLIENT_ID,
        request_uri=REQUEST_URI,
    )
    assert result.same_device.startswith("https://wallet.example.jp/ul?")
    assert result.qr_content.startswith("openid4vp://?")
    assert _query_of(result.same_device) == _query_of(result.qr_content)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"scheme_or_base": "javascript:"}, "invalid_wallet_endpoint"),
        ({"scheme_or_base": "data:"}, "invalid_wallet_endpoint"),
        ({"scheme_or_base": "http://wallet.example.jp/"}, "insecure_url"),
        ({"scheme_or_base": "openid4vp://?x=1"}, "invalid_wallet_endpoint"),
        ({"scheme_or_base": "https://wallet.example.jp/a?x=1"}, "invalid_wallet_endpoint"),
        ({"scheme_or_base": "no-scheme"}, "invalid_wallet_endpoint"),
        ({"request_uri": "http://auth.example.jp/r"}, "insecure_url"),
        ({"request_uri": "https://auth.example.jp/r#f"}, "invalid_url"),
        ({"request_uri_method": "POST"}, "invalid_request_uri_method"),
        ({"client_id": ""}, "invalid_client_id"),
        ({"client_id": "a b"}, "invalid_client_id"),
    ],
)
def test_wallet_url_refuses_bad_input(kwargs: dict[str, Any], reason: str) -> None:
    arguments: dict[str, Any] = {
        "scheme_or_base": "openid4vp://",
        "client_id": CLIENT_ID,
        "request_uri": REQUEST_URI,
    }
    arguments.update(kwargs)
    base = arguments.pop("scheme_or_base")
    with pytest.raises(LinkError) as err:
        links.wallet_request_url(base, **arguments)
    assert err.value.reason == reason


def test_http_loopback_request_uri_only_when_allowed() -> None:
    local = "http://localhost:5000/wallet/request/abc"
    with pytest.raises(LinkError):
        links.wallet_request_url("openid4vp://", client_id=CLIENT_ID, request_uri=local)
    url = links.wallet_request_url(
        "openid4vp://", client_id=CLIENT_ID, request_uri=local, allow_http_loopback=True
    )
    assert _query_of(url)["request_uri"] == [local]


def test_parse_wallet_url_refuses_repeated_parameters() -> None:
    url = links.wallet_request_url("openid4vp://", client_id=CLIENT_ID, request_uri=REQUEST_URI)
    with pytest.raises(LinkError) as err:
        links.parse_wallet_request_url(url + "&client_id=evil")
    assert err.value.reason == "repeated_parameter"


_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


@given(
    client_id=st.text(alphabet=_PRINTABLE, min_size=1, max_size=80),
    path=st.text(alphabet=string.ascii_letters + string.digits + "-._~/%!$&'()*+,;=:@"),
    method=st.sampled_from([None, "get", "post"]),
)
def test_wallet_url_round_trip_property(client_id: str, path: str, method: str | None) -> None:
    request_uri = "https://auth.example.jp/" + path.replace("#", "")
    url = links.wallet_request_url(
        "openid4vp://", client_id=client_id, request_uri=request_uri, request_uri_method=method
    )
    expected = {"client_id": [client_id], "request_uri": [request_uri]}
    if method is not None:
        expected["request_uri_method"] = [method]
    assert _query_of(url) == expected


# -- The wallet's direct_post response -----------------------------------------------------------


def _form(**values: Any) -> dict[str, list[str]]:
    return {name: value if isinstance(value, list) else [value] for name, value in values.items()}


def _vp(value: Any) -> str:
    return json.dumps(value)


def _parse(form: Any) -> WalletResponse:
    return parse_direct_post(form, credential_id="national_id", max_bytes=64 * 1024)


def test_well_formed_response_yields_the_presentation() -> None:
    result = _parse(_form(vp_token=_vp({"national_id": [PRESENTATION]}), state=STATE, iss="x"))
    assert result == WalletResponse(state=STATE, presentation=PRESENTATION)
    assert not result.is_error


def test_presentation_without_key_binding_still_parses_for_the_verifier_to_judge() -> None:
    sd_jwt_only = "eyJhbGciOiJFUzI1NiJ9.eyJ2Y3QiOiJ4In0.c2ln~WyJzYWx0In0~"
    result = _parse(_form(vp_token=_vp({"national_id": [sd_jwt_only]}), state=STATE))
    assert result.presentation == sd_jwt_only


def test_wallet_error_response_is_returned_not_raised() -> None:
    result = _parse(_form(error="access_denied", error_description="user declined", state=STATE))
    assert result.is_error
    assert (result.error, result.error_description, result.state) == (
        "access_denied",
        "user declined",
        STATE,
    )
    assert result.presentation is None


def test_unknown_parameters_are_ignored_even_repeated() -> None:
    form = _form(vp_token=_vp({"national_id": [PRESENTATION]}), state=STATE, extra=["a", "b"])
    assert _parse(form).presentation == PRESENTATION


_GOOD_VP = _vp({"national_id": [PRESENTATION]})


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        (_form(vp_token=[_GOOD_VP, _GOOD_VP], state=STATE), "repeated_parameter"),
        (_form(vp_token=_GOOD_VP, state=[STATE, STATE]), "repeated_parameter"),
        (_form(error=["access_denied", "x"], state=STATE), "repeated_parameter"),
        (_form(vp_token=[], state=STATE), "malformed_form"),
        ({"vp_token": _GOOD_VP, "state": [STATE]}, "malformed_form"),
        ({"vp_token": [1], "state": [STATE]}, "malformed_form"),
        ({1: ["x"], "state": [STATE]}, "malformed_form"),
        ("vp_token=x&state=y", "malformed_form"),
        (None, "malformed_form"),
        (_form(vp_token=_GOOD_VP), "missing_state"),
        (_form(vp_token=_GOOD_VP, state=""), "invalid_state"),
        (_form(vp_token=_GOOD_VP, state="a b"), "invalid_state"),
        (_form(vp_token=_GOOD_VP, state="s" * 257), "invalid_state"),
        (_form(state=STATE), "missing_vp_token"),
        (_form(response="eyJ.enc.rypted", state=STATE), "encrypted_response_not_supported"),
        (_form(vp_token=_GOOD_VP, error="access_denied", state=STATE), "ambiguous_response"),
        (_form(error='bad"quote', state=STATE), "invalid_error"),
        (_form(error="", state=STATE), "invalid_error"),
        (
            _form(error="access_denied", error_description="\n", state=STATE),
            "invalid_error_description",
        ),
        (_form(vp_token=_GOOD_VP, error_description="x", state=STATE), "invalid_error_description"),
        (_form(vp_token="not json", state=STATE), "vp_token_not_json"),
        (
            _form(vp_token='{"national_id":["a~"],"national_id":["b~"]}', state=STATE),
            "vp_token_not_json",
        ),
        (_form(vp_token="[[[[[[[[[[]]]]]]]]]]", state=STATE), "vp_token_not_json"),
        (_form(vp_token=_vp([PRESENTATION]), state=STATE), "vp_token_not_object"),
        (_form(vp_token=_vp(PRESENTATION), state=STATE), "vp_token_not_object"),
        (_form(vp_token=_vp({}), state=STATE), "missing_credential"),
        (_form(vp_token=_vp({"other": [PRESENTATION]}), state=STATE), "missing_credential"),
        (
            _form(
                vp_token=_vp({"national_id": [PRESENTATION], "other": [PRESENTATION]}), state=STATE
            ),
            "unexpected_credential",
        ),
        (
            _form(vp_token=_vp({"national_id": PRESENTATION}), state=STATE),
            "presentations_not_array",
        ),
        (_form(vp_token=_vp({"national_id": []}), state=STATE), "no_presentation"),
        (
            _form(vp_token=_vp({"national_id": [PRESENTATION, PRESENTATION]}), state=STATE),
            "multiple_presentations",
        ),
        (
            _form(vp_token=_vp({"national_id": [{"jwt": PRESENTATION}]}), state=STATE),
            "presentation_not_string",
        ),
        (
            _form(vp_token=_vp({"national_id": ["no-tilde.at.all"]}), state=STATE),
            "malformed_presentation",
        ),
        (_form(vp_token=_vp({"national_id": ["a b~"]}), state=STATE), "malformed_presentation"),
        (_form(vp_token=_vp({"national_id": [""]}), state=STATE), "malformed_presentation"),
    ],
)
def test_malformed_responses_raise_wallet_response_error(form: Any, reason: str) -> None:
    with pytest.raises(WalletResponseError) as err:
        _parse(form)
    assert err.value.reason == reason


def test_over_size_response_is_refused_before_parsing() -> None:
    big = _vp({"national_id": [PRESENTATION + "A" * 5000]})
    with pytest.raises(WalletResponseError) as err:
        parse_direct_post(
            _form(vp_token=big, state=STATE), credential_id="national_id", max_bytes=4096
        )
    assert err.value.reason == "too_large"


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    form = _form(state=STATE, filler="あ" * 1400)  # 1400 characters, 4200 bytes
    with pytest.raises(WalletResponseError) as err:
        parse_direct_post(form, credential_id="national_id", max_bytes=4096)
    assert err.value.reason == "too_large"


_names = st.sampled_from(["vp_token", "state", "error", "error_description", "response", "x"])
_vp_tokens = st.one_of(
    st.text(max_size=40),
    _json.map(json.dumps),
    st.dictionaries(
        st.sampled_from(["national_id", "other"]) | st.text(max_size=5),
        st.lists(st.text(max_size=20) | st.integers(), max_size=3)
        | st.text(max_size=10)
        | st.none(),
        max_size=3,
    ).map(json.dumps),
)
_values = st.one_of(st.text(max_size=60), _vp_tokens, st.just(STATE))
_forms = st.dictionaries(
    _names | st.text(max_size=6),
    st.lists(_values, max_size=3) | st.none() | st.integers() | _values,
    max_size=6,
)


@given(_forms)
@settings(max_examples=500)
def test_arbitrary_form_input_only_ever_raises_wallet_response_error(form: Any) -> None:
    try:
        result = _parse(form)
    except WalletResponseError:
        return
    assert isinstance(result, WalletResponse)
    assert (result.presentation is None) != (result.error is None)


@given(st.text(max_size=30), st.text(max_size=30))
def test_arbitrary_error_strings_never_escape_as_other_exceptions(error: str, text: str) -> None:
    try:
        result = _parse(_form(error=error, error_description=text, state=STATE))
    except WalletResponseError as exc:
        assert exc.reason in ("invalid_error", "invalid_error_description")
    else:
        assert (result.error, result.error_description) == (error, text)


# -- What the response endpoint answers ----------------------------------------------------------


def test_same_device_redirect_carries_the_response_code() -> None:
    code = "R" * 43
    base = "https://auth.example.jp/wallet/done"
    url = response.same_device_redirect_uri(base, response_code=code)
    assert url == f"https://auth.example.jp/wallet/done?response_code={code}"
    with_query = response.same_device_redirect_uri(
        "https://auth.example.jp/wallet/done?i=1", response_code=code
    )
    assert _query_of(with_query) == {"i": ["1"], "response_code": [code]}
    assert response.response_endpoint_reply(redirect_uri=url) == {"redirect_uri": url}
    assert response.response_endpoint_reply() == {}


@pytest.mark.parametrize(
    ("base", "code", "reason"),
    [
        ("https://auth.example.jp/done", "short", "invalid_response_code"),
        ("https://auth.example.jp/done", "R" * 30 + "/", "invalid_response_code"),
        ("http://auth.example.jp/done", "R" * 43, "invalid_redirect_uri"),
        ("https://auth.example.jp/done#x", "R" * 43, "invalid_redirect_uri"),
    ],
)
def test_same_device_redirect_refuses_weak_codes_and_unsafe_bases(
    base: str, code: str, reason: str
) -> None:
    with pytest.raises(WalletResponseError) as err:
        response.same_device_redirect_uri(base, response_code=code)
    assert err.value.reason == reason
