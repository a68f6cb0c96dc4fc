"""Client authentication: one test per SECURITY-CASES "Client authentication (private_key_jwt)"
line, plus the rules around them (one method per request, none, client_secret_basic).

Assertions are built with PyJWT and cryptography, independently of trustanchor.jose. Replay
protection is the real database registry on SQLite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from trustanchor.config.settings import ClientAuthSettings
from trustanchor.digests import secret_digest
from trustanchor.domain.clients import Client
from trustanchor.jose import jws as jws_module
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import key_fits_alg
from trustanchor.oauth.client_auth import (
    ASSERTION_NOT_VERIFIED,
    BASIC_NOT_VERIFIED,
    CONFIDENTIAL_ONLY,
    JWT_BEARER_ASSERTION,
    NOT_A_PUBLIC_CLIENT,
    ClientAuthenticator,
    _stand_in_key,
)
from trustanchor.oauth.client_metadata import client_from_declaration
from trustanchor.oauth.errors import InvalidClient, InvalidRequest, OAuthError
from trustanchor.services.client_registry import StaticClients
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade
from trustanchor.storage.replay import DatabaseJtiRegistry

ISSUER = "https://as.example"
TOKEN_URL = f"{ISSUER}/token"
PAR_URL = f"{ISSUER}/par"
NOW = 1_750_000_000
SETTINGS = ClientAuthSettings(
    assertion_max_lifetime=300, clock_skew=30, allowed_algs=("ES256", "ES384", "EdDSA", "PS256")
)

BANK_KEY = ec.generate_private_key(ec.SECP256R1())
BANK_KEY_2 = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P521_KEY = ec.generate_private_key(ec.SECP521R1())


def _public_jwk(key: Any, kid: str) -> dict[str, Any]:
    exporter = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**exporter.to_jwk(key.public_key(), as_dict=True), "kid": kid}


def _declare(decl: dict[str, Any]) -> tuple[Client, str | None]:
    return client_from_declaration(decl, mode="demo", base_dir=Path())


BANK = _declare(
    {
        "client_id": "bank",
        "client_type": "confidential",
        "jwks": {
            "keys": [
                _public_jwk(BANK_KEY, "bank-1"),
                _public_jwk(BANK_KEY_2, "bank-2"),
                _public_jwk(RSA_KEY, "bank-rsa"),
                _public_jwk(P521_KEY, "bank-p521"),
            ]
        },
        "redirect_uris": ["https://bank.example/cb"],
    }
)
NOKID = _declare(
    {
        "client_id": "nokid",
        "client_type": "confidential",
        "jwks": {"keys": [{k: v for k, v in _public_jwk(BANK_KEY, "x").items() if k != "kid"}]},
        "redirect_uris": ["https://nokid.example/cb"],
    }
)
WALLET = _declare(
    {
        "client_id": "wallet",
        "client_type": "public",
        "redirect_uris": ["https://wallet.example/cb"],
    }
)
DEMO = _declare(
    {
        "client_id": "demo:rp",
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": "demo secret/+:1",
        "redirect_uris": ["https://demo.example/cb"],
    }
)


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseJtiRegistry]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('replay') / 'replay.db'}")
    upgrade(db)
    yield DatabaseJtiRegistry(db)
    db.dispose()


@pytest.fixture
def auth(replay: DatabaseJtiRegistry) -> ClientAuthenticator:
    store = StaticClients([BANK, NOKID, WALLET, DEMO])
    return ClientAuthenticator(store, replay, SETTINGS, issuer=ISSUER, max_jws_bytes=16384)


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "bank",
        "sub": "bank",
        "aud": ISSUER,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": str(uuid.uuid4()),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _assertion(
    claims: dict[str, Any] | None = None,
    *,
    key: Any = BANK_KEY,
    alg: str = "ES256",
    kid: str | None = "bank-1",
    headers: dict[str, Any] | None = None,
) -> str:
    extra = {"kid": kid} if kid is not None else {}
    extra.update(headers or {})
    return jwt.encode(claims or _claims(), key, algorithm=alg, headers=extra)


def _form(assertion: str, **extra: str) -> dict[str, list[str]]:
    form = {
        "grant_type": ["authorization_code"],
        "client_assertion_type": [JWT_BEARER_ASSERTION],
        "client_assertion": [assertion],
    }
    form.update({k: [v] for k, v in extra.items()})
    return form


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signature)}"


def _refused(
    auth: ClientAuthenticator,
    form: dict[str, list[str]],
    authorization: str | None = None,
    *,
    kind: type[OAuthError] = InvalidClient,
    allow_public: bool = True,
) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        auth.authenticate(form, authorization, at=NOW, allow_public=allow_public)
    assert type(info.value) is kind
    if kind is InvalidClient:
        assert info.value.status == 401
        assert info.value.error == "invalid_client"
    return info.value


# -- the happy paths -----------------------------------------------------------------------------


def test_valid_assertion_authenticates_the_client(auth: ClientAuthenticator) -> None:
    client = auth.authenticate(_form(_assertion()), None, at=NOW)
    assert client.client_id == "bank"


def test_valid_assertion_with_matching_body_client_id(auth: ClientAuthenticator) -> None:
    form = _form(_assertion(), client_id="bank")
    assert auth.authenticate(form, None, at=NOW).client_id == "bank"


def test_second_registered_key_and_other_algs_are_accepted(auth: ClientAuthenticator) -> None:
    assert auth.authenticate(_form(_assertion(key=BANK_KEY_2, kid="bank-2")), None, at=NOW)
    rsa_assertion = _assertion(key=RSA_KEY, alg="PS256", kid="bank-rsa")
    assert auth.authenticate(_form(rsa_assertion), None, at=NOW)


def test_assertion_without_kid_tries_the_keys_that_fit(auth: ClientAuthenticator) -> None:
    assert auth.authenticate(_form(_assertion(kid=None)), None, at=NOW).client_id == "bank"
    nokid = _assertion(_claims(iss="nokid", sub="nokid"), kid=None)
    assert auth.authenticate(_form(nokid), None, at=NOW).client_id == "nokid"


def test_small_clock_skew_is_tolerated(auth: ClientAuthenticator) -> None:
    claims = _claims(iat=NOW + 10, nbf=NOW + 10, exp=NOW + 70)
    assert auth.authenticate(_form(_assertion(claims)), None, at=NOW)
    expired_just_now = _claims(iat=NOW - 100, exp=NOW - 10)
    assert auth.authenticate(_form(_assertion(expired_just_now)), None, at=NOW)


# -- SECURITY-CASES: aud other than our issuer identifier -----------------------------------------


def test_aud_token_endpoint_url_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(aud=TOKEN_URL))))
    assert "aud" in error.log_detail


def test_aud_par_endpoint_url_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(aud=PAR_URL))))
    assert "aud" in error.log_detail


def test_aud_array_even_with_only_the_issuer_is_invalid_client(auth: ClientAuthenticator) -> None:
    for aud in ([ISSUER], [ISSUER, TOKEN_URL]):
        error = _refused(auth, _form(_assertion(_claims(aud=aud))))
        assert "aud" in error.log_detail


def test_aud_missing_or_issuer_with_trailing_slash_is_invalid_client(
    auth: ClientAuthenticator,
) -> None:
    _refused(auth, _form(_assertion(_claims(aud=None))))
    _refused(auth, _form(_assertion(_claims(aud=ISSUER + "/"))))


# -- SECURITY-CASES: jti seen before --------------------------------------------------------------


def test_jti_reuse_is_invalid_client(auth: ClientAuthenticator) -> None:
    claims = _claims(jti="once-only")
    assert auth.authenticate(_form(_assertion(claims)), None, at=NOW)
    # A fresh signature over the same jti is still a replay.
    error = _refused(auth, _form(_assertion(claims, key=BANK_KEY_2, kid="bank-2")))
    assert "jti" in error.log_detail


def test_same_jti_from_another_client_is_not_a_replay(auth: ClientAuthenticator) -> None:
    shared = str(uuid.uuid4())
    assert auth.authenticate(_form(_assertion(_claims(jti=shared))), None, at=NOW)
    other = _assertion(_claims(iss="nokid", sub="nokid", jti=shared), kid=None)
    assert auth.authenticate(_form(other), None, at=NOW).client_id == "nokid"


def test_jti_missing_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(jti=None))))
    assert "jti" in error.log_detail


# -- SECURITY-CASES: expired, or iat/nbf far in the future ---------------------------------------


def test_expired_assertion_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(iat=NOW - 400, exp=NOW - 100))))
    assert "expired" in error.log_detail


def test_iat_far_in_the_future_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(iat=NOW + 3600, exp=NOW + 3660))))
    assert "iat" in error.log_detail


def test_nbf_far_in_the_future_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(nbf=NOW + 3600))))
    assert "nbf" in error.log_detail


def test_exp_or_iat_missing_is_invalid_client(auth: ClientAuthenticator) -> None:
    _refused(auth, _form(_assertion(_claims(exp=None))))
    _refused(auth, _form(_assertion(_claims(iat=None))))
    _refused(auth, _form(_assertion(_claims(exp=str(NOW + 60)))))


def test_lifetime_beyond_the_maximum_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(exp=NOW + 3600))))
    assert "lifetime" in error.log_detail


# -- SECURITY-CASES: sub missing, iss ≠ sub, sub ≠ body client_id --------------------------------


def test_sub_missing_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(sub=None))))
    assert "sub" in error.log_detail


def test_iss_differs_from_sub_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(iss="nokid"))))
    assert "iss" in error.log_detail


def test_sub_differs_from_body_client_id_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(), client_id="nokid"))
    assert "client_id" in error.log_detail


# -- SECURITY-CASES: alg none, HS256 keyed with the public key, alg outside the allow-list --------


@pytest.mark.parametrize("signature", [b"", b"\x00" * 32])
def test_alg_none_is_invalid_client(auth: ClientAuthenticator, signature: bytes) -> None:
    token = _unsigned({"alg": "none", "typ": "JWT"}, _claims(), signature)
    detail = _refused(auth, _form(token)).log_detail
    # An empty signature segment fails the shape check before the alg check; both refuse.
    assert ("alg_not_allowed" if signature else "malformed") in detail


def test_hs256_keyed_with_the_public_key_is_invalid_client(auth: ClientAuthenticator) -> None:
    public_pem = BANK_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(_public_jwk(BANK_KEY, "bank-1")).encode()):
        head = _b64(json.dumps({"alg": "HS256", "kid": "bank-1"}).encode())
        body = _b64(json.dumps(_claims()).encode())
        mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        error = _refused(auth, _form(f"{head}.{body}.{_b64(mac)}"))
        assert "alg_not_allowed" in error.log_detail


def test_alg_outside_the_allow_list_is_invalid_client(auth: ClientAuthenticator) -> None:
    rs256 = _assertion(key=RSA_KEY, alg="RS256", kid="bank-rsa")
    assert "alg_not_allowed" in _refused(auth, _form(rs256)).log_detail
    es512 = _assertion(key=P521_KEY, alg="ES512", kid="bank-p521")
    assert "alg_not_allowed" in _refused(auth, _form(es512)).log_detail


def test_alg_not_matching_the_selected_key_is_invalid_client(auth: ClientAuthenticator) -> None:
    # ES384 is allowed, but the kid names a P-256 key.
    token = _assertion(key=ec.generate_private_key(ec.SECP384R1()), alg="ES384", kid="bank-1")
    _refused(auth, _form(token))


# -- other assertion failures ---------------------------------------------------------------------


def test_signature_by_an_unregistered_key_is_invalid_client(auth: ClientAuthenticator) -> None:
    _refused(auth, _form(_assertion(key=OTHER_KEY)))
    _refused(auth, _form(_assertion(key=OTHER_KEY, kid=None)))
    assert "kid" in _refused(auth, _form(_assertion(kid="unknown"))).log_detail


def test_unknown_client_is_invalid_client(auth: ClientAuthenticator) -> None:
    error = _refused(auth, _form(_assertion(_claims(iss="ghost", sub="ghost"))))
    assert error.description == ASSERTION_NOT_VERIFIED
    assert error.reason == "unknown_client" and error.client_id is None


def test_client_registered_for_another_method_is_invalid_client(
    auth: ClientAuthenticator,
) -> None:
    token = _assertion(_claims(iss="wallet", sub="wallet"))
    assert "registered for none" in _refused(auth, _form(token)).log_detail


def test_wrong_assertion_type_is_invalid_client(auth: ClientAuthenticator) -> None:
    form = _form(_assertion())
    form["client_assertion_type"] = ["urn:ietf:params:oauth:client-assertion-type:saml2-bearer"]
    _refused(auth, form)
    del form["client_assertion_type"]
    _refused(auth, form)
    _refused(auth, {"client_assertion_type": [JWT_BEARER_ASSERTION]})


def test_jwt_made_for_another_purpose_is_invalid_client(auth: ClientAuthenticator) -> None:
    token = _assertion(headers={"typ": "dpop+jwt"})
    assert "typ" in _refused(auth, _form(token)).log_detail
    explicit = _assertion(headers={"typ": "client-authentication+jwt"})
    assert auth.authenticate(_form(explicit), None, at=NOW)


def test_malformed_or_oversized_assertion_is_invalid_client(auth: ClientAuthenticator) -> None:
    _refused(auth, _form("not-a-jwt"))
    _refused(auth, _form(_assertion(_claims(pad="x" * 20000))))
    _refused(auth, _form("a.b.c.d.e"))


def test_who_is_registered_is_never_told(auth: ClientAuthenticator) -> None:
    """Unknown client, another method, unregistered kid, a key not registered, with or
    without kid: one description, one status, one error code; the reasons stay distinct."""
    cases = {
        "unknown_client": _assertion(_claims(iss="ghost", sub="ghost")),
        "unknown_client ": _assertion(_claims(iss="ghost", sub="ghost"), kid=None),
        "auth_method_mismatch": _assertion(_claims(iss="wallet", sub="wallet")),
        "auth_method_mismatch ": _assertion(_claims(iss="demo:rp", sub="demo:rp")),
        "assertion_kid_unknown": _assertion(kid="unknown"),
        "assertion_signature": _assertion(key=OTHER_KEY),
        "assertion_signature ": _assertion(key=OTHER_KEY, kid=None),
    }
    for reason, token in cases.items():
        error = _refused(auth, _form(token))
        assert (error.status, error.body()) == (
            401,
            {"error": "invalid_client", "error_description": ASSERTION_NOT_VERIFIED},
        ), reason
        assert error.reason == reason.strip()


def test_basic_unknown_client_and_wrong_secret_are_one_answer(auth: ClientAuthenticator) -> None:
    for authorization in (
        _basic("demo:rp", "wrong secret"),
        _basic("ghost", "demo secret/+:1"),
        _basic("bank", "anything"),
    ):
        error = _refused(auth, {}, authorization)
        assert error.body() == {"error": "invalid_client", "error_description": BASIC_NOT_VERIFIED}


def test_none_unknown_and_confidential_clients_are_one_answer(auth: ClientAuthenticator) -> None:
    for client_id in ("ghost", "bank", "demo:rp"):
        error = _refused(auth, {"client_id": [client_id]})
        assert error.description == NOT_A_PUBLIC_CLIENT
    # where a public client is refused, the refusal comes before anything about the client
    for client_id in ("ghost", "wallet", "bank"):
        refused = _refused(auth, {"client_id": [client_id]}, allow_public=False)
        assert refused.description == CONFIDENTIAL_ONLY
        assert refused.reason == "public_client_refused"


class _CountingVerify:
    """Counts the signature verifications (trustanchor.jose.jws.verify_signature, which runs)."""

    def __init__(self) -> None:
        self.real = jws_module.verify_signature
        self.calls: list[str] = []

    def __call__(self, parsed: Any, key: Any) -> None:
        self.calls.append(type(key).__name__)
        self.real(parsed, key)


def test_an_unknown_client_costs_the_signature_check_a_wrong_key_costs(
    auth: ClientAuthenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timing oracle (an unknown client answered without any signature check, twice as
    fast) is closed: with a kid, and with one fitting key without kid, each refusal verifies
    exactly one signature of the assertion's alg, whether the client exists or not."""
    counting = _CountingVerify()
    monkeypatch.setattr(jws_module, "verify_signature", counting)
    pairs = [
        (_assertion(_claims(iss="ghost", sub="ghost")), _assertion(key=OTHER_KEY)),
        (_assertion(_claims(iss="ghost", sub="ghost")), _assertion(kid="unknown")),
        (
            _assertion(_claims(iss="ghost", sub="ghost"), kid=None),
            _assertion(_claims(iss="nokid", sub="nokid"), key=OTHER_KEY, kid=None),
        ),
        (
            _assertion(_claims(iss="ghost", sub="ghost"), key=RSA_KEY, alg="PS256"),
            _assertion(key=OTHER_KEY, alg="ES256", kid="bank-rsa"),
        ),
        (_assertion(_claims(iss="wallet", sub="wallet")), _assertion(key=OTHER_KEY)),
    ]
    for unknown, wrong_key in pairs:
        counting.calls.clear()
        first = _refused(auth, _form(unknown))
        unknown_calls = len(counting.calls)
        counting.calls.clear()
        second = _refused(auth, _form(wrong_key))
        assert unknown_calls == len(counting.calls) == 1
        assert first.body() == second.body()


def test_stand_in_keys_exist_for_every_alg_and_verify_nothing() -> None:
    message = _assertion()
    parsed = jws_module.parse(message, max_bytes=16384, allowed_algs=jws_module.ASYMMETRIC_ALGS)
    for alg in sorted(jws_module.ASYMMETRIC_ALGS):
        key = _stand_in_key(alg)
        assert key_fits_alg(key, alg), alg
        with pytest.raises(JoseError):
            jws_module.verify_signature(parsed, key)


def test_descriptions_say_what_to_change(auth: ClientAuthenticator) -> None:
    def said(form: dict[str, list[str]], authorization: str | None = None) -> str:
        return _refused(auth, form, authorization).description

    aud = f'client_assertion aud must be exactly "{ISSUER}"'
    assert said(_form(_assertion(_claims(aud=TOKEN_URL)))).startswith(aud)
    assert said(_form(_assertion(_claims(aud=[ISSUER])))).startswith(aud)
    assert said(_form(_assertion(_claims(aud=None)))).startswith(aud)
    assert "has expired" in said(_form(_assertion(_claims(iat=NOW - 400, exp=NOW - 100))))
    assert "iat is in the future" in said(_form(_assertion(_claims(iat=NOW + 100))))
    assert "nbf" in said(_form(_assertion(_claims(nbf=NOW + 100))))
    assert "exp and iat" in said(_form(_assertion(_claims(exp=None))))
    assert "at most 300 s" in said(_form(_assertion(_claims(exp=NOW + 1000))))
    assert "must carry a jti" in said(_form(_assertion(_claims(jti=None))))
    token = _assertion()
    auth.authenticate(_form(token), None, at=NOW)
    assert "jti was already used" in said(_form(token))
    assert (
        said(_form(_assertion(_claims(sub=None))))
        == "client_assertion must carry sub: the client_id"
    )
    assert "iss must equal its sub" in said(_form(_assertion(_claims(iss="other"))))
    assert "sub must equal the client_id parameter" in said(_form(_assertion(), client_id="other"))
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert said(_form(_assertion(alg="ES384", key=p384))) == ASSERTION_NOT_VERIFIED
    assert said(_form(_assertion(key=P521_KEY, alg="ES512", kid="bank-p521"))) == (
        "client_assertion alg must be one of ES256 ES384 EdDSA PS256"
    )
    assert "typ must be" in said(_form(_assertion(headers={"typ": "dpop+jwt"})))
    assert "not a compact JWS" in said(_form("not-a-jwt"))
    assert said(_form("a" * 20000 + ".b.c")) == "client_assertion is too large"
    assert "unsupported JWS feature" in said(_form("a.b.c.d.e"))
    assert "client_id is malformed" in said({}, _basic("bad id", "x"))
    assert "sub is not a client_id" in said(_form(_assertion(_claims(iss="a b", sub="a b"))))
    assert "client_secret_post is not supported" in said(
        {"client_id": ["demo:rp"], "client_secret": ["x"]}
    )


def test_descriptions_carry_no_secret_and_no_request_value(auth: ClientAuthenticator) -> None:
    """What is said about an assertion or a secret never repeats the caller's values (kid, sub,
    secret) and never names the keys registered."""
    cases = [
        (_form(_assertion(_claims(iss="ghost-7x", sub="ghost-7x"))), None),
        (_form(_assertion(kid="kid-7x")), None),
        ({}, _basic("demo:rp", "secret-7x")),
        ({}, _basic("ghost-7x", "secret-7x")),
    ]
    for form, authorization in cases:
        description = _refused(auth, form, authorization).description
        assert "7x" not in description
        assert "bank-1" not in description and "demo secret" not in description


# -- SECURITY-CASES: two authentication methods in one request → 400 invalid_request --------------


def _basic(client_id: str, secret: str) -> str:
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def test_two_methods_basic_and_assertion_is_invalid_request(auth: ClientAuthenticator) -> None:
    error = _refused(
        auth, _form(_assertion()), _basic("demo:rp", "demo secret/+:1"), kind=InvalidRequest
    )
    assert error.status == 400 and error.error == "invalid_request"


def test_two_methods_basic_and_body_secret_is_invalid_request(auth: ClientAuthenticator) -> None:
    form = {"client_id": ["demo:rp"], "client_secret": ["demo secret/+:1"]}
    error = _refused(auth, form, _basic("demo:rp", "demo secret/+:1"), kind=InvalidRequest)
    assert error.status == 400


def test_two_methods_assertion_and_body_secret_is_invalid_request(
    auth: ClientAuthenticator,
) -> None:
    form = _form(_assertion(), client_secret="whatever")
    _refused(auth, form, kind=InvalidRequest)


def test_repeated_parameter_is_invalid_request(auth: ClientAuthenticator) -> None:
    form = _form(_assertion())
    form["client_assertion"].append(_assertion())
    _refused(auth, form, kind=InvalidRequest)
    _refused(auth, {"client_id": ["wallet", "wallet"]}, kind=InvalidRequest)
    repeated_other = {**_form(_assertion()), "scope": ["openid", "openid"]}
    error = _refused(auth, repeated_other, kind=InvalidRequest)
    assert error.description == "parameter scope is repeated"


FORGED = "\n2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]: login through anchor x: ok\n"


@pytest.mark.parametrize(
    "name",
    [f"a{FORGED}b", "x" * 32_000, "k" * 41, "a b", 'a"b', "a\\b", "é", "a\u2028b", "<script>"],
)
def test_a_repeated_parameter_is_named_only_when_its_name_is_short_and_plain(
    auth: ClientAuthenticator, name: str
) -> None:
    """Attack report F2: the name is the caller's choice; repeating it raw put forged lines into
    the text log and 32 KB into every answer."""
    form = {**_form(_assertion()), name: ["1", "2"]}
    error = _refused(auth, form, kind=InvalidRequest)
    assert error.description == error.log_detail == "a parameter is repeated"
    assert error.reason == "parameter_repeated"
    plain = "k" * 40
    named = _refused(auth, {**_form(_assertion()), plain: ["1", "2"]}, kind=InvalidRequest)
    assert named.description == f"parameter {plain} is repeated"


# -- none (public clients) ------------------------------------------------------------------------


def test_public_client_authenticates_with_client_id_only(auth: ClientAuthenticator) -> None:
    assert auth.authenticate({"client_id": ["wallet"]}, None, at=NOW).client_id == "wallet"


def test_public_client_refused_where_authentication_is_required(
    auth: ClientAuthenticator,
) -> None:
    _refused(auth, {"client_id": ["wallet"]}, allow_public=False)


def test_confidential_client_without_credentials_is_invalid_client(
    auth: ClientAuthenticator,
) -> None:
    _refused(auth, {"client_id": ["bank"]})
    _refused(auth, {"client_id": ["ghost"]})
    _refused(auth, {"grant_type": ["authorization_code"]})


def test_client_secret_post_is_not_supported(auth: ClientAuthenticator) -> None:
    _refused(auth, {"client_id": ["demo:rp"], "client_secret": ["demo secret/+:1"]})


# -- client_secret_basic (demo clients) -----------------------------------------------------------


def test_client_secret_basic_with_the_right_secret(auth: ClientAuthenticator) -> None:
    client = auth.authenticate({}, _basic("demo:rp", "demo secret/+:1"), at=NOW)
    assert client.client_id == "demo:rp"
    assert DEMO[1] == secret_digest("demo secret/+:1")


def test_client_secret_basic_failures_are_invalid_client(auth: ClientAuthenticator) -> None:
    _refused(auth, {}, _basic("demo:rp", "wrong secret"))
    _refused(auth, {}, _basic("ghost", "demo secret/+:1"))
    _refused(auth, {}, _basic("bank", "anything"))
    _refused(auth, {"client_id": ["bank"]}, _basic("demo:rp", "demo secret/+:1"))
    _refused(auth, {}, "Basic !!!notbase64")
    _refused(auth, {}, "Basic \xe9\xe9")  # non-ASCII: was a 500 (ValueError) before
    _refused(auth, {}, "Basic YQ==\xff")
    _refused(auth, {}, "Basic " + base64.b64encode(b"no-colon").decode())
    _refused(auth, {}, "Bearer abc")
