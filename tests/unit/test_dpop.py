"""DPoP proof validation (RFC 9449): the SECURITY-CASES.md "DPoP" lines that concern the proof
itself, server nonces, hostile keys, and a property that nothing but the two DPoP errors escapes.

Proofs are built with PyJWT and real keys; crafted tokens (alg none, HS256, bad JSON) are
assembled by hand so that exactly one thing is wrong with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import os
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustanchor.config.settings import DpopSettings
from trustanchor.digests import b64url_encode
from trustanchor.jose.jwk import PrivateKey, public_jwk, thumbprint
from trustanchor.oauth.dpop import DpopProof, DpopVerifier
from trustanchor.oauth.errors import InvalidDpopProof, UseDpopNonce

AT = 1_700_000_000
METHOD = "POST"
URL = "https://as.example.com/token"
NONCE_KEY = b"k" * 32
MAX_BYTES = 16384
SETTINGS = DpopSettings(
    iat_leeway=60, require_nonce=False, nonce_lifetime=300, allowed_algs=("ES256", "EdDSA", "PS256")
)

EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
_jti_counter = itertools.count()


class MemoryJtiRegistry:
    """The JtiRegistry port on a dict (the database implementation is tested in tests/storage)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    def first_use(self, namespace: str, jti: str, expires_at: int) -> bool:
        if (namespace, jti) in self.seen:
            return False
        self.seen[(namespace, jti)] = expires_at
        return True


def make_verifier(settings: DpopSettings = SETTINGS) -> tuple[DpopVerifier, MemoryJtiRegistry]:
    registry = MemoryJtiRegistry()
    return DpopVerifier(settings, registry, NONCE_KEY, max_bytes=MAX_BYTES), registry


@pytest.fixture
def verifier() -> DpopVerifier:
    return make_verifier()[0]


def proof(
    key: PrivateKey = EC_KEY,
    *,
    alg: str = "ES256",
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    header: dict[str, Any] | None = None,
) -> str:
    """A DPoP proof signed with ``key``; ``claims``/``header`` override, ``drop`` removes."""
    body: dict[str, Any] = {
        "jti": f"jti-{next(_jti_counter)}",
        "htm": METHOD,
        "htu": URL,
        "iat": AT,
    }
    body.update(claims or {})
    hdr: dict[str, Any] = {"typ": "dpop+jwt", "jwk": public_jwk(key)}
    hdr.update(header or {})
    for name in drop:
        body.pop(name, None)
        hdr.pop(name, None)
    if "typ" in drop:
        hdr["typ"] = None  # PyJWT leaves typ out when it is falsy
    return jwt.encode(body, key, algorithm=alg, headers=hdr)


def crafted(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"\x01" * 64) -> str:
    """A compact JWS assembled by hand (for algorithms PyJWT would not let us misuse)."""
    return f"{_b64json(header)}.{_b64json(claims)}.{b64url_encode(signature)}"


def _b64json(value: object) -> str:
    return b64url_encode(json.dumps(value).encode())


def base_claims() -> dict[str, Any]:
    return {"jti": f"jti-{next(_jti_counter)}", "htm": METHOD, "htu": URL, "iat": AT}


def check(v: DpopVerifier, token: str, **kwargs: Any) -> DpopProof:
    options: dict[str, Any] = {"method": METHOD, "url": URL, "at": AT}
    options.update(kwargs)
    return v.verify([token], **options)


def ath_for(token: str) -> str:
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


# -- accepted proofs ---------------------------------------------------------------------------


def test_valid_ec_proof_is_accepted(verifier: DpopVerifier) -> None:
    token = proof()
    result = check(verifier, token)
    assert result.jkt == thumbprint(public_jwk(EC_KEY))
    assert (result.htm, result.htu, result.iat) == (METHOD, URL, AT)
    assert result.jwk == public_jwk(EC_KEY)


def test_valid_ed25519_proof_is_accepted(verifier: DpopVerifier) -> None:
    result = check(verifier, proof(ED_KEY, alg="EdDSA"))
    assert result.jkt == thumbprint(public_jwk(ED_KEY))


def test_valid_rsa_pss_proof_is_accepted(verifier: DpopVerifier) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    result = check(verifier, proof(key, alg="PS256"))
    assert result.jkt == thumbprint(public_jwk(key))


def test_typ_with_application_prefix_is_accepted(verifier: DpopVerifier) -> None:
    check(verifier, proof(header={"typ": "application/dpop+jwt"}))


# -- DPoP header count -------------------------------------------------------------------------


def test_no_dpop_header_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="DPoP proof missing"):
        verifier.verify([], method=METHOD, url=URL, at=AT)


def test_two_dpop_headers_are_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="more than one DPoP header"):
        verifier.verify([proof(), proof()], method=METHOD, url=URL, at=AT)


def test_two_proofs_folded_into_one_header_are_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="JWS"):
        check(verifier, f"{proof()}, {proof()}")


# -- replay ------------------------------------------------------------------------------------


def test_jti_reused_is_rejected() -> None:
    verifier, registry = make_verifier()
    token = proof()
    check(verifier, token)
    with pytest.raises(InvalidDpopProof, match="jti reused"):
        check(verifier, token)
    ((namespace, key), expires_at) = next(iter(registry.seen.items()))
    assert namespace == "dpop"
    assert key.startswith(thumbprint(public_jwk(EC_KEY)) + ":")
    assert expires_at == AT + 2 * SETTINGS.iat_leeway


def test_jti_reused_in_a_new_proof_is_rejected(verifier: DpopVerifier) -> None:
    check(verifier, proof(claims={"jti": "same"}))
    with pytest.raises(InvalidDpopProof, match="jti reused"):
        check(verifier, proof(claims={"jti": "same", "iat": AT + 1}), at=AT + 1)


def test_refused_proof_does_not_burn_its_jti(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="htm"):
        check(verifier, proof(claims={"jti": "once", "htm": "GET"}))
    check(verifier, proof(claims={"jti": "once"}))


def test_jti_too_long_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="jti is too long"):
        check(verifier, proof(claims={"jti": "j" * 257}))


# -- typ and missing members -------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", "dpop+jwt+x", 1])
def test_typ_wrong_is_rejected(verifier: DpopVerifier, typ: object) -> None:
    with pytest.raises(InvalidDpopProof, match="typ must be dpop\\+jwt"):
        check(verifier, proof(header={"typ": typ}))


def test_typ_missing_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="typ must be dpop\\+jwt"):
        check(verifier, proof(drop=("typ",)))


def test_jwk_missing_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="header has no jwk"):
        check(verifier, proof(drop=("jwk",)))


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_claim_missing_is_rejected(verifier: DpopVerifier, claim: str) -> None:
    with pytest.raises(InvalidDpopProof, match=f"has no {claim}"):
        check(verifier, proof(drop=(claim,)))


@pytest.mark.parametrize(
    ("claim", "value"),
    [("jti", 7), ("jti", ""), ("htm", ["POST"]), ("htu", 3), ("iat", "1700000000")],
)
def test_claim_of_wrong_type_is_rejected(verifier: DpopVerifier, claim: str, value: object) -> None:
    with pytest.raises(InvalidDpopProof, match=claim):
        check(verifier, proof(claims={claim: value}))


@pytest.mark.parametrize("iat", [AT + 0.5, True])
def test_iat_not_an_integer_is_rejected(verifier: DpopVerifier, iat: object) -> None:
    with pytest.raises(InvalidDpopProof, match="iat must be an integer"):
        check(verifier, proof(claims={"iat": iat}))


# -- hostile keys and algorithms ---------------------------------------------------------------


def test_jwk_with_private_material_is_rejected(verifier: DpopVerifier) -> None:
    private = dict(public_jwk(EC_KEY))
    private["d"] = b64url_encode(EC_KEY.private_numbers().private_value.to_bytes(32, "big"))
    with pytest.raises(InvalidDpopProof, match="jwk is not an acceptable public key"):
        check(verifier, proof(header={"jwk": private}))


@pytest.mark.parametrize(
    "jwk", [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}, {"kty": "oct"}], ids=["k", "no-k"]
)
def test_jwk_kty_oct_is_rejected(verifier: DpopVerifier, jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidDpopProof, match="jwk is not an acceptable public key"):
        check(verifier, proof(header={"jwk": jwk}))


def test_alg_none_is_rejected(verifier: DpopVerifier) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(EC_KEY)}
    with pytest.raises(InvalidDpopProof, match="alg is not accepted"):
        check(verifier, crafted(header, base_claims()))


def test_alg_none_with_empty_signature_is_rejected(verifier: DpopVerifier) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk(EC_KEY)}
    token = crafted(header, base_claims()).rsplit(".", 1)[0] + "."
    with pytest.raises(InvalidDpopProof):
        check(verifier, token)


def test_alg_hs256_is_rejected(verifier: DpopVerifier) -> None:
    secret = b"s" * 32
    jwk = {"kty": "oct", "k": b64url_encode(secret)}
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
    unsigned = crafted(header, base_claims()).rsplit(".", 1)[0]
    mac = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidDpopProof, match="alg is not accepted"):
        check(verifier, f"{unsigned}.{b64url_encode(mac)}")


def test_alg_hs256_keyed_with_the_public_jwk_is_rejected(verifier: DpopVerifier) -> None:
    jwk = public_jwk(EC_KEY)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
    unsigned = crafted(header, base_claims()).rsplit(".", 1)[0]
    mac = hmac.new(json.dumps(jwk).encode(), unsigned.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidDpopProof, match="alg is not accepted"):
        check(verifier, f"{unsigned}.{b64url_encode(mac)}")


def test_alg_outside_the_allow_list_is_rejected(verifier: DpopVerifier) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidDpopProof, match="alg is not accepted"):
        check(verifier, proof(key, alg="ES384"))


def test_key_type_not_matching_alg_is_rejected(verifier: DpopVerifier) -> None:
    # An Ed25519 public key announced with ES256.
    with pytest.raises(InvalidDpopProof, match="jwk does not fit its alg"):
        check(verifier, proof(header={"jwk": public_jwk(ED_KEY)}))


def test_signature_by_another_key_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="signature is invalid"):
        check(verifier, proof(OTHER_EC_KEY, header={"jwk": public_jwk(EC_KEY)}))


def test_off_curve_ec_point_is_rejected(verifier: DpopVerifier) -> None:
    jwk = dict(public_jwk(EC_KEY))
    y = EC_KEY.public_key().public_numbers().y
    jwk["y"] = b64url_encode(((y + 1) % 2**256).to_bytes(32, "big"))
    start = time.perf_counter()
    with pytest.raises(InvalidDpopProof, match="jwk is not an acceptable public key"):
        check(verifier, proof(header={"jwk": jwk}))
    assert time.perf_counter() - start < 1.0


def test_16k_bit_rsa_key_is_rejected_quickly(verifier: DpopVerifier) -> None:
    # Generating a real 16384-bit key takes minutes; the import must refuse on size alone.
    n = int.from_bytes(os.urandom(2048), "big") | (1 << 16383) | 1
    jwk = {"kty": "RSA", "n": b64url_encode(n.to_bytes(2048, "big")), "e": "AQAB"}
    header = {"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk}
    token = crafted(header, base_claims(), signature=os.urandom(2048))
    assert len(token) < MAX_BYTES  # the key check, not the size limit, must refuse it
    start = time.perf_counter()
    with pytest.raises(InvalidDpopProof, match="jwk is not an acceptable public key"):
        check(verifier, token)
    assert time.perf_counter() - start < 0.5


def test_proof_over_the_size_limit_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="too large"):
        check(verifier, proof(claims={"pad": "x" * MAX_BYTES}))


def test_unknown_critical_header_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="unsupported JWS feature"):
        check(verifier, proof(header={"crit": ["exp"], "exp": 1}))


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d.e", "!!!.e30.AAAA", "e30.e30.AAAA", "W10.e30.AAAA"],
)
def test_malformed_jws_is_rejected(verifier: DpopVerifier, token: str) -> None:
    with pytest.raises(InvalidDpopProof):
        check(verifier, token)


def test_duplicate_claim_is_rejected(verifier: DpopVerifier) -> None:
    payload = b'{"jti":"a","jti":"b","htm":"POST","htu":"https://as.example.com/token","iat":1}'
    token = jwt.api_jws.encode(
        payload, EC_KEY, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public_jwk(EC_KEY)}
    )
    with pytest.raises(InvalidDpopProof, match="claims"):
        check(verifier, token)


# -- htm / htu ---------------------------------------------------------------------------------


@pytest.mark.parametrize("htm", ["GET", "post", "PUT"])
def test_htm_differs_is_rejected(verifier: DpopVerifier, htm: str) -> None:
    with pytest.raises(InvalidDpopProof, match="htm does not match"):
        check(verifier, proof(claims={"htm": htm}))


@pytest.mark.parametrize(
    "htu",
    [
        "https://evil.example.com/token",
        "https://as.example.com.evil.example/token",
        "https://as.example.com/other",
        "https://as.example.com/token/",
        "https://as.example.com/Token",
        "http://as.example.com/token",
        "https://as.example.com:8443/token",
        "https://user@as.example.com/token",
        "//as.example.com/token",
        "/token",
        "https://as.example.com:99999/token",
    ],
)
def test_htu_other_host_or_path_is_rejected(verifier: DpopVerifier, htu: str) -> None:
    with pytest.raises(InvalidDpopProof, match="htu does not match"):
        check(verifier, proof(claims={"htu": htu}))


@pytest.mark.parametrize(
    "htu",
    [
        "https://as.example.com/token?foo=bar",
        "https://as.example.com/token#frag",
        "HTTPS://AS.Example.COM/token",
        "https://as.example.com:443/token",
    ],
)
def test_htu_equivalent_uri_is_accepted(verifier: DpopVerifier, htu: str) -> None:
    check(verifier, proof(claims={"htu": htu}))


def test_htu_default_http_port_and_empty_path_are_normalised(verifier: DpopVerifier) -> None:
    check(verifier, proof(claims={"htu": "http://rs.example:80"}), url="http://RS.example/")


def test_htu_percent_escape_case_is_normalised(verifier: DpopVerifier) -> None:
    token = proof(claims={"htu": "https://as.example.com/a%2fb"})
    check(verifier, token, url="https://as.example.com/a%2Fb")


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        ("https://as.example.com/accounts/%c3%a9", "https://as.example.com/accounts/%C3%A9"),
        ("https://as.example.com/accounts/a,b", "https://as.example.com/accounts/a%2Cb"),
        # RFC 3986 §6.2.2.2 (RFC 9449 §4.3 names it): an escaped unreserved character is the
        # character itself; /%74oken is the path the router sees as /token.
        ("https://as.example.com/%74oken", "https://as.example.com/token"),
        ("https://as.example.com/accounts/%FF", "https://as.example.com/accounts/%ff"),
    ],
)
def test_htu_path_is_compared_as_the_octets_it_names(
    verifier: DpopVerifier, htu: str, url: str
) -> None:
    """The APIs' URL is built from the decoded path (PATH_INFO, percent-encoded one way): an
    escaped and a plain character are the same octets (issue 14, found by the API fuzzer)."""
    check(verifier, proof(claims={"htu": htu}), url=url)


@pytest.mark.parametrize(
    "htu",
    ["https://as.example.com/accounts/%C3%A8", "https://as.example.com/accounts/a%2Cc"],
)
def test_htu_naming_other_octets_is_rejected(verifier: DpopVerifier, htu: str) -> None:
    with pytest.raises(InvalidDpopProof, match="htu"):
        check(verifier, proof(claims={"htu": htu}), url="https://as.example.com/accounts/a%2Cb")


# -- iat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-3600, 3600, -61, 61])
def test_iat_an_hour_off_is_rejected(verifier: DpopVerifier, offset: int) -> None:
    with pytest.raises(InvalidDpopProof, match="iat is outside"):
        check(verifier, proof(claims={"iat": AT + offset}))


@pytest.mark.parametrize("offset", [-5, 5, -60, 60])
def test_iat_a_few_seconds_off_is_accepted(verifier: DpopVerifier, offset: int) -> None:
    check(verifier, proof(claims={"iat": AT + offset}))


# -- ath and key binding -----------------------------------------------------------------------

ACCESS_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


def test_ath_matching_the_access_token_is_accepted(verifier: DpopVerifier) -> None:
    check(verifier, proof(claims={"ath": ath_for(ACCESS_TOKEN)}), access_token=ACCESS_TOKEN)


def test_ath_missing_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="no ath"):
        check(verifier, proof(), access_token=ACCESS_TOKEN)


@pytest.mark.parametrize("ath", [ath_for("another-token"), "", 1, ath_for(ACCESS_TOKEN).upper()])
def test_ath_wrong_is_rejected(verifier: DpopVerifier, ath: object) -> None:
    with pytest.raises(InvalidDpopProof, match="ath"):
        check(verifier, proof(claims={"ath": ath}), access_token=ACCESS_TOKEN)


def test_ath_with_non_ascii_access_token_is_rejected_cleanly(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="ath does not match"):
        check(verifier, proof(claims={"ath": ath_for(ACCESS_TOKEN)}), access_token="tökén")


def test_thumbprint_equal_to_expected_jkt_is_accepted(verifier: DpopVerifier) -> None:
    check(verifier, proof(), expected_jkt=thumbprint(public_jwk(EC_KEY)))


def test_thumbprint_not_expected_jkt_is_rejected(verifier: DpopVerifier) -> None:
    with pytest.raises(InvalidDpopProof, match="not the key the token is bound to"):
        check(verifier, proof(), expected_jkt=thumbprint(public_jwk(OTHER_EC_KEY)))


# -- server-provided nonces --------------------------------------------------------------------

NONCE_SETTINGS = DpopSettings(
    iat_leeway=60, require_nonce=True, nonce_lifetime=300, allowed_algs=("ES256",)
)


def test_nonce_required_and_missing_gives_a_nonce_that_then_works() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    with pytest.raises(UseDpopNonce) as refused:
        check(verifier, proof())
    assert refused.value.error == "use_dpop_nonce"
    nonce = refused.value.nonce
    result = check(verifier, proof(claims={"nonce": nonce, "iat": AT + 1}), at=AT + 1)
    assert result.jkt == thumbprint(public_jwk(EC_KEY))


def test_nonce_required_by_argument_overrides_settings(verifier: DpopVerifier) -> None:
    with pytest.raises(UseDpopNonce):
        check(verifier, proof(), nonce_required=True)


def test_nonce_not_required_by_argument_overrides_settings() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    check(verifier, proof(), nonce_required=False)


def test_nonce_forged_is_refused_with_a_fresh_nonce() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    issued_at, mac = verifier.issue_nonce(AT).split(".")
    forged = [
        f"{int(issued_at) + 1000}.{mac}",
        f"{issued_at}.{'A' * len(mac)}",
        "not-a-nonce",
        DpopVerifier(
            NONCE_SETTINGS, MemoryJtiRegistry(), b"o" * 32, max_bytes=MAX_BYTES
        ).issue_nonce(AT),
    ]
    for nonce in forged:
        with pytest.raises(UseDpopNonce, match="invalid or expired") as refused:
            check(verifier, proof(claims={"nonce": nonce}))
        check(verifier, proof(claims={"nonce": refused.value.nonce}))


@pytest.mark.parametrize("nonce", [1, ["x"], {"n": 1}, "", "x" * 1000])
def test_nonce_of_wrong_shape_is_refused_with_a_fresh_nonce(nonce: object) -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    with pytest.raises(UseDpopNonce):
        check(verifier, proof(claims={"nonce": nonce}))


def test_nonce_expired_is_refused_and_accepted_up_to_its_lifetime() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    nonce = verifier.issue_nonce(AT)
    late = AT + NONCE_SETTINGS.nonce_lifetime
    check(verifier, proof(claims={"nonce": nonce, "iat": late}), at=late)
    with pytest.raises(UseDpopNonce, match="invalid or expired") as refused:
        check(verifier, proof(claims={"nonce": nonce, "iat": late + 1}), at=late + 1)
    assert refused.value.nonce != nonce


def test_nonce_far_in_the_future_is_refused() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    nonce = verifier.issue_nonce(AT + 3600)
    with pytest.raises(UseDpopNonce):
        check(verifier, proof(claims={"nonce": nonce}))


def test_proof_errors_take_precedence_over_the_nonce() -> None:
    # A client must not be able to fish for nonces with garbage: a bad proof is just bad.
    verifier, _ = make_verifier(NONCE_SETTINGS)
    with pytest.raises(InvalidDpopProof):
        check(verifier, proof(claims={"htm": "GET"}))


# -- construction ------------------------------------------------------------------------------


def test_short_nonce_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="nonce key"):
        DpopVerifier(SETTINGS, MemoryJtiRegistry(), b"short", max_bytes=MAX_BYTES)


def test_symmetric_only_allow_list_is_a_configuration_error() -> None:
    bad = DpopSettings(
        iat_leeway=60, require_nonce=False, nonce_lifetime=300, allowed_algs=("HS256",)
    )
    with pytest.raises(ValueError, match="asymmetric"):
        DpopVerifier(bad, MemoryJtiRegistry(), NONCE_KEY, max_bytes=MAX_BYTES)


# -- properties --------------------------------------------------------------------------------

_EXPECTED = (InvalidDpopProof, UseDpopNonce)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Public-looking JWKs with odd member values (private members are covered by named tests).
jwk_like = st.fixed_dictionaries(
    {"kty": st.sampled_from(["EC", "OKP", "RSA"])},
    optional={
        name: st.sampled_from([*public_jwk(EC_KEY).values(), "Ed25519", "AQAB"]) | json_values
        for name in ("crv", "x", "y", "n", "e", "use")
    },
)
b64_segment = st.one_of(
    json_values.map(lambda v: b64url_encode(json.dumps(v).encode())),
    st.binary(max_size=80).map(b64url_encode),
    st.text(max_size=20),
)


def _assert_only_dpop_errors(verifier: DpopVerifier, headers: list[str]) -> None:
    with contextlib.suppress(*_EXPECTED):
        verifier.verify(headers, method=METHOD, url=URL, at=AT, nonce_required=True)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=300), max_size=3))
def test_arbitrary_header_strings_raise_only_dpop_errors(headers: list[str]) -> None:
    _assert_only_dpop_errors(make_verifier()[0], headers)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(b64_segment, min_size=1, max_size=5).map(".".join))
def test_arbitrary_compact_segments_raise_only_dpop_errors(token: str) -> None:
    _assert_only_dpop_errors(make_verifier()[0], [token])


def _signed(header: dict[str, Any], claims: dict[str, Any]) -> str:
    body = base_claims()
    body.update(claims)
    payload = json.dumps(body).encode()
    return jwt.api_jws.encode(payload, EC_KEY, algorithm="ES256", headers=header)


_FUZZ = settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)


@_FUZZ
@given(jwk=st.one_of(jwk_like, jwk_like, json_values))
def test_arbitrary_header_jwk_raises_only_dpop_errors(jwk: object) -> None:
    _assert_only_dpop_errors(make_verifier()[0], [_signed({"typ": "dpop+jwt", "jwk": jwk}, {})])


@_FUZZ
@given(
    typ=st.one_of(st.just("dpop+jwt"), json_values),
    extra_header=st.dictionaries(st.sampled_from(["crit", "zip", "x5c", "x5u"]), json_values),
)
def test_arbitrary_header_members_raise_only_dpop_errors(
    typ: object, extra_header: dict[str, Any]
) -> None:
    header = {"typ": typ or "x", "jwk": public_jwk(EC_KEY), **extra_header}
    _assert_only_dpop_errors(make_verifier()[0], [_signed(header, {})])


@_FUZZ
@given(
    claims=st.dictionaries(
        st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce", "exp"]), json_values
    )
)
def test_arbitrary_claims_raise_only_dpop_errors(claims: dict[str, Any]) -> None:
    token = _signed({"typ": "dpop+jwt", "jwk": public_jwk(EC_KEY)}, claims)
    with contextlib.suppress(*_EXPECTED):
        make_verifier()[0].verify(
            [token], method=METHOD, url=URL, at=AT, access_token="t", nonce_required=True
        )


# -- descriptions that say what to change (issue 14) -------------------------------------------


def test_descriptions_name_what_the_proof_must_carry(verifier: DpopVerifier) -> None:
    def said(token: str, **kwargs: Any) -> str:
        with pytest.raises(InvalidDpopProof) as refused:
            check(verifier, token, **kwargs)
        return refused.value.description

    assert said(proof(claims={"htm": "GET"})).endswith("it must be POST")
    assert f"it must be {URL} (without query and fragment)" in said(
        proof(claims={"htu": "https://as.example.com/par"})
    )
    assert "within 60 s of the server's time" in said(proof(claims={"iat": AT - 600}))
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert said(proof(p384, alg="ES384")).endswith("use one of ES256 EdDSA PS256")
    token = "x.y.z"
    assert "ath, the base64url SHA-256 hash of the access token" in said(
        proof(), access_token=token
    )
    assert "cnf.jkt" in said(proof(), expected_jkt="A" * 43)
    replayed = proof()
    check(verifier, replayed)
    assert "fresh jti for every request" in said(replayed)


def test_nonce_refusals_say_where_the_nonce_is() -> None:
    verifier, _ = make_verifier(NONCE_SETTINGS)
    for claims in ({}, {"nonce": "not-a-nonce"}):
        with pytest.raises(UseDpopNonce) as refused:
            check(verifier, proof(claims=claims))
        assert refused.value.description.endswith(
            "sign a new proof whose nonce claim is the DPoP-Nonce header of this answer"
        )
