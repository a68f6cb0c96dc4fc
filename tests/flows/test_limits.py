"""SECURITY-CASES.md, "Size and resource limits", over real HTTP, and a walk of the protocol
endpoints with garbage: every refusal is a clean 4xx with an OAuth error, never a 500.

"Before any crypto" is shown with the operator's log: the refusal reason recorded there comes
from the JWS parser (``unsupported``, ``too_large``), not from a signature check.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.assertions import assert_json_error
from support.rp import JWT_BEARER, DpopKey, Pkce, b64url, raw_request
from support.stage import Stage

FORM = "application/x-www-form-urlencoded"
API_ENDPOINTS = ("/par", "/token", "/introspect", "/revoke", "/userinfo")


def segment(value: object) -> str:
    return b64url(json.dumps(value).encode("utf-8"))


def unsigned_jws(header: Mapping[str, object], claims: Mapping[str, object]) -> str:
    """A JWS-shaped token whose signature is junk: it must be refused before verification."""
    return f"{segment(header)}.{segment(claims)}.{b64url(b'x' * 64)}"


def assertion_claims(stage: Stage) -> dict[str, object]:
    now = stage.clock.now()
    client_id = stage.bank.client_id
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": stage.server.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": f"jti-{time.monotonic_ns()}",
    }


def token_request_with_assertion(stage: Stage, assertion: str) -> requests.Response:
    params = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ]
    return stage.bank.post("/token", params, authenticate=False)


# -- request bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", API_ENDPOINTS)
def test_body_beyond_the_limit_is_413_json(stage: Stage, path: str) -> None:
    limit = stage.server.settings.limits.max_body_bytes
    body = urlencode({"grant_type": "client_credentials", "pad": "x" * limit}).encode("ascii")
    started = time.monotonic()
    response = raw_request("POST", stage.server.url(path), [("Content-Type", FORM)], body=body)
    assert time.monotonic() - started < 2
    assert_json_error(response, 413, "invalid_request")


def test_chunked_body_beyond_the_limit_is_413(stage: Stage) -> None:
    limit = stage.server.settings.limits.max_body_bytes

    def chunks() -> Iterator[bytes]:
        yield b"grant_type=client_credentials&pad="
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096

    response = requests.post(
        stage.server.url("/token"), data=chunks(), headers={"Content-Type": FORM}, timeout=10
    )
    assert_json_error(response, 413, "invalid_request")


def test_announced_huge_body_is_refused_without_waiting_for_it(stage: Stage) -> None:
    """A Content-Length of 1 GB with almost nothing sent: the answer comes at once."""
    parts = urlsplit(stage.server.issuer)
    request = (
        f"POST /token HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {FORM}\r\n"
        "Content-Length: 1000000000\r\nConnection: close\r\n\r\ngrant_type="
    ).encode("ascii")
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        answer = sock.recv(4096)
    assert time.monotonic() - started < 2
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_body_beyond_the_limit_on_a_page_is_413_html(stage: Stage) -> None:
    limit = stage.server.settings.limits.max_body_bytes
    response = requests.post(
        stage.server.url("/interaction/abc/consent"),
        data={"pad": "x" * limit},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")


def test_too_many_form_parameters_are_refused(stage: Stage) -> None:
    params = [(f"p{i}", "v") for i in range(1000)]
    response = stage.bank.post("/par", params)
    assert response.status_code in (400, 413), response.text
    assert response.json()["error"] == "invalid_request"


# -- JWS size limits ----------------------------------------------------------------------------


def test_client_assertion_beyond_max_jws_bytes_is_invalid_client(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    limit = stage.server.settings.limits.max_jws_bytes
    assertion = stage.bank.assertion(claims={"pad": "x" * limit})
    assert len(assertion) > limit
    with caplog.at_level(logging.INFO, logger="trustanchor.web"):
        response = token_request_with_assertion(stage, assertion)
    assert_json_error(response, 401, "invalid_client")
    assert "too_large" in caplog.text


def test_dpop_proof_beyond_max_jws_bytes_at_the_token_endpoint_is_invalid_dpop_proof(
    stage: Stage,
) -> None:
    limit = stage.server.settings.limits.max_jws_bytes
    proof = DpopKey().proof(
        "POST", stage.server.url("/token"), iat=stage.clock.now(), claims={"pad": "x" * limit}
    )
    response = stage.bank.post("/token", {"grant_type": "client_credentials"}, dpop=proof)
    assert_json_error(response, 400, "invalid_dpop_proof")


def test_dpop_proof_beyond_max_jws_bytes_at_userinfo_is_401(stage: Stage) -> None:
    key = DpopKey()
    tokens = stage.tokens(stage.bank, dpop_key=key)
    limit = stage.server.settings.limits.max_jws_bytes
    token = tokens["access_token"]
    proof = key.proof(
        "GET",
        stage.server.url("/userinfo"),
        iat=stage.clock.now(),
        access_token=token,
        claims={"pad": "x" * limit},
    )
    response = raw_request(
        "GET", stage.server.url("/userinfo"), [("Authorization", f"DPoP {token}"), ("DPoP", proof)]
    )
    assert_json_error(response, 401, "invalid_dpop_proof")


def test_oversized_access_token_at_userinfo_is_401(stage: Stage) -> None:
    token = unsigned_jws({"alg": "ES256", "typ": "at+jwt"}, {"pad": "x" * 40000})
    response = raw_request(
        "GET", stage.server.url("/userinfo"), [("Authorization", f"Bearer {token}")]
    )
    assert_json_error(response, 401, "invalid_token")


# -- JWE, compression, PBES2: refused before any crypto ----------------------------------------


def test_compressed_client_assertion_is_invalid_client_before_crypto(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    header = {"alg": "ES256", "zip": "DEF", "kid": f"{stage.bank.client_id}-key"}
    with caplog.at_level(logging.INFO, logger="trustanchor.web"):
        response = token_request_with_assertion(
            stage, unsigned_jws(header, assertion_claims(stage))
        )
    assert_json_error(response, 401, "invalid_client")
    assert "assertion refused: unsupported" in caplog.text


def test_properly_signed_compressed_client_assertion_is_invalid_client(stage: Stage) -> None:
    """Even with a valid signature: a zip header means content we will not inflate."""
    assertion = stage.bank.assertion(headers={"zip": "DEF"})
    assert_json_error(token_request_with_assertion(stage, assertion), 401, "invalid_client")


def test_jwe_client_assertion_is_invalid_client_before_crypto(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    header = segment({"alg": "RSA-OAEP-256", "enc": "A256GCM"})
    jwe = (
        f"{header}.{b64url(b'k' * 256)}.{b64url(b'i' * 12)}.{b64url(b'c' * 64)}.{b64url(b't' * 16)}"
    )
    with caplog.at_level(logging.INFO, logger="trustanchor.web"):
        response = token_request_with_assertion(stage, jwe)
    assert_json_error(response, 401, "invalid_client")
    assert "assertion refused: unsupported" in caplog.text


def test_pbes2_client_assertion_is_invalid_client_before_crypto(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    header = {"alg": "PBES2-HS512+A256KW", "p2c": 2_000_000_000, "p2s": b64url(b"salt" * 4)}
    with caplog.at_level(logging.INFO, logger="trustanchor.web"):
        response = token_request_with_assertion(
            stage, unsigned_jws(header, assertion_claims(stage))
        )
    assert_json_error(response, 401, "invalid_client")
    assert "assertion refused: alg_not_allowed" in caplog.text


def test_compressed_dpop_proof_is_invalid_dpop_proof(stage: Stage) -> None:
    proof = DpopKey().proof(
        "POST", stage.server.url("/token"), iat=stage.clock.now(), headers={"zip": "DEF"}
    )
    response = stage.bank.post("/token", {"grant_type": "client_credentials"}, dpop=proof)
    assert_json_error(response, 400, "invalid_dpop_proof")


# -- absurd keys in proofs ----------------------------------------------------------------------


def test_dpop_proof_with_a_16k_bit_rsa_key_is_refused_quickly(stage: Stage) -> None:
    modulus = (1 << 16383) | 1  # shape only: refused on size before any arithmetic on it
    jwk = {"kty": "RSA", "n": b64url(modulus.to_bytes(2048, "big")), "e": "AQAB"}
    header = {"alg": "PS256", "typ": "dpop+jwt", "jwk": jwk}
    claims = {
        "jti": "j1",
        "htm": "POST",
        "htu": stage.server.url("/token"),
        "iat": stage.clock.now(),
    }
    started = time.monotonic()
    response = stage.bank.post(
        "/token", {"grant_type": "client_credentials"}, dpop=unsigned_jws(header, claims)
    )
    assert time.monotonic() - started < 2
    assert_json_error(response, 400, "invalid_dpop_proof")


def test_dpop_proof_with_an_off_curve_point_is_refused(stage: Stage) -> None:
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(b"\x01" * 32), "y": b64url(b"\x02" * 32)}
    header = {"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}
    claims = {
        "jti": "j2",
        "htm": "POST",
        "htu": stage.server.url("/token"),
        "iat": stage.clock.now(),
    }
    response = stage.bank.post(
        "/token", {"grant_type": "client_credentials"}, dpop=unsigned_jws(header, claims)
    )
    assert_json_error(response, 400, "invalid_dpop_proof")


# -- structured parameters at PAR ---------------------------------------------------------------


def test_thousands_of_authorization_details_entries_are_invalid_authorization_details(
    stage: Stage,
) -> None:
    details = json.dumps([{}] * 5000, separators=(",", ":"))  # fits the parameter's size limit
    response = stage.bank.push(authorization_details=details)
    assert_json_error(response, 400, "invalid_authorization_details")


def test_authorization_details_beyond_the_parameter_size_is_400(stage: Stage) -> None:
    details = json.dumps([{"type": "t"}] * 2000, separators=(",", ":"))
    response = stage.bank.push(authorization_details=details)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in ("invalid_request", "invalid_authorization_details")


def test_more_authorization_details_entries_than_allowed_is_invalid_authorization_details(
    stage: Stage,
) -> None:
    count = stage.server.settings.limits.max_authorization_details + 1
    details = json.dumps([{"type": "value_transfer"}] * count)
    response = stage.bank.push(authorization_details=details)
    assert_json_error(response, 400, "invalid_authorization_details")


def test_deeply_nested_authorization_details_is_invalid_authorization_details(
    stage: Stage,
) -> None:
    details = '[{"type":"value_transfer","x":' + "[" * 2000 + "]" * 2000 + "}]"
    response = stage.bank.push(authorization_details=details)
    assert_json_error(response, 400, "invalid_authorization_details")


def test_absurdly_nested_claims_parameter_is_invalid_request(stage: Stage) -> None:
    claims = '{"userinfo":{"given_name":' + '{"value":' * 3000 + "1" + "}" * 3001 + "}"
    response = stage.bank.push(claims=claims[:60000])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_claims_parameter_nested_just_beyond_the_limit_is_invalid_request(stage: Stage) -> None:
    depth = stage.server.settings.limits.max_json_depth
    inner = "[" * depth + "]" * depth
    claims = json.dumps({"userinfo": {"given_name": {"values": "PLACEHOLDER"}}})
    response = stage.bank.push(claims=claims.replace('"PLACEHOLDER"', inner))
    assert_json_error(response, 400, "invalid_request")


def test_claims_parameter_with_hundreds_of_members_is_invalid_request(stage: Stage) -> None:
    members = {f"c{i}": None for i in range(600)}  # fits the parameter's size limit
    response = stage.bank.push(claims=json.dumps({"userinfo": members}))
    assert_json_error(response, 400, "invalid_request")


# -- never a 500 --------------------------------------------------------------------------------

GARBAGE_BODIES: list[tuple[str, bytes]] = [
    (FORM, b""),
    (FORM, b"\xff\xfe\xfd"),
    (FORM, b"grant_type=%ZZ&code=%"),
    (FORM, b"=&&=&client_id"),
    (FORM, b"client_id=%00&grant_type=authorization_code&code=%00"),
    (FORM, b"grant_type=" + b"a" * 5000),
    (FORM, ("x" * 3000 + "=1").encode()),
    (FORM, b"client_assertion_type=" + JWT_BEARER.encode() + b"&client_assertion=a.b.c"),
    (FORM, b"client_assertion_type=" + JWT_BEARER.encode() + b"&client_assertion=...."),
    (
        FORM,
        b"client_assertion_type="
        + JWT_BEARER.encode()
        + b"&client_assertion="
        + base64.urlsafe_b64encode(b'{"alg":123}').rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(b"[1,2]").rstrip(b"=")
        + b".AA",
    ),
    (
        FORM,
        b"client_assertion_type="
        + JWT_BEARER.encode()
        + b"&client_assertion="
        + base64.urlsafe_b64encode(b'{"alg":"ES256","kid":["x"]}').rstrip(b"=")
        + b"."
        + base64.urlsafe_b64encode(b'{"sub":"bank","iss":"bank","aud":["x"],"exp":1e400}').rstrip(
            b"="
        )
        + b".AA",
    ),
    (FORM, b"grant_type=authorization_code&code=x&client_id=bank&client_secret=s"),
    (FORM, b"grant_type=refresh_token&refresh_token=&client_id=\xc3\x28"),
    ("application/json", b'{"grant_type": "client_credentials"}'),
    ("application/json", b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["),
    ("text/plain", b"grant_type=client_credentials"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data\r\n\r\n"),
    ("multipart/form-data", b"garbage"),
    (f"{FORM}; charset=utf-16", b"\xff\xfeg\x00"),
]
GARBAGE_HEADERS: list[list[tuple[str, str]]] = [
    [],
    [("Authorization", "Basic !!!")],
    [("Authorization", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode())],
    [("Authorization", "Basic " + base64.b64encode(b"bank").decode())],
    [("Authorization", "Bearer")],
    [("Authorization", "DPoP a.b.c"), ("DPoP", "a.b.c")],
    [("DPoP", "e30.e30.e30")],
    [("DPoP", "x" * 20000)],
]


@pytest.mark.parametrize("path", [*API_ENDPOINTS, "/authorize", "/wallet/response"])
def test_garbage_never_causes_a_server_error(stage: Stage, path: str) -> None:
    url = stage.server.url(path)
    for content_type, body in GARBAGE_BODIES:
        for headers in GARBAGE_HEADERS:
            response = raw_request(
                "POST", url, [("Content-Type", content_type), *headers], body=body
            )
            assert response.status_code < 500, (content_type, body[:60], headers, response.text)
            if path != "/authorize":
                assert response.headers["Content-Type"].startswith("application/json")


def test_garbage_queries_at_the_authorization_endpoint_never_cause_a_server_error(
    stage: Stage,
) -> None:
    request_uri = stage.bank.request_uri(Pkce.generate())
    for query in [
        "",
        "client_id=bank&request_uri=",
        "client_id=bank&client_id=bank&request_uri=x",
        "client_id=%ff&request_uri=%00",
        "client_id=bank&request_uri=" + "u" * 5000,
        f"client_id=bank&request_uri={request_uri}&request_uri={request_uri}",
        "client_id=" + "b" * 5000,
    ]:
        response = requests.get(
            stage.server.url(f"/authorize?{query}"), allow_redirects=False, timeout=10
        )
        assert response.status_code == 400, (query, response.status_code)
        assert "Location" not in response.headers


_NAMES = st.sampled_from(
    [
        "grant_type",
        "code",
        "code_verifier",
        "redirect_uri",
        "refresh_token",
        "scope",
        "client_id",
        "client_assertion",
        "client_assertion_type",
        "response_type",
        "code_challenge",
        "code_challenge_method",
        "authorization_details",
        "claims",
        "dpop_jkt",
        "token",
        "token_type_hint",
        "prompt",
        "max_age",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            JWT_BEARER,
            "S256",
            "code",
            "openid",
            "[]",
            "{}",
            "[{}]",
            '[{"type":1}]',
            '{"userinfo":[]}',
            '{"userinfo":{"x":{"essential":"yes"}}}',
            "null",
            "1e999",
            "-1",
            "99999999999999999999",
        ]
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(["/par", "/token", "/introspect", "/revoke"]),
    params=st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
    authenticated=st.booleans(),
)
def test_random_forms_never_cause_a_server_error(
    stage: Stage, path: str, params: list[tuple[str, str]], authenticated: bool
) -> None:
    response = stage.bank.post(path, params, authenticate=authenticated)
    assert response.status_code < 500, (path, params, response.text)
    if response.status_code >= 400:
        assert response.json()["error"], response.text


# -- NUL characters: PostgreSQL cannot store or compare them; they must not reach it ------------


def _nul_assertion(stage: Stage, **claims: object) -> str:
    return stage.bank.assertion(claims=claims)


def test_nul_in_a_form_parameter_is_invalid_request(stage: Stage) -> None:
    response = stage.bank.post(
        "/token", {"grant_type": "client_credentials", "client_id": "\x00"}, authenticate=False
    )
    assert_json_error(response, 400, "invalid_request")


def test_nul_in_a_par_parameter_is_invalid_request(stage: Stage) -> None:
    assert_json_error(stage.bank.push(state="a\x00b"), 400, "invalid_request")


def test_nul_in_the_authorization_query_is_an_error_page(stage: Stage) -> None:
    response = requests.get(
        stage.server.url("/authorize?client_id=%00&request_uri=x"),
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")


def test_nul_in_a_path_is_refused(stage: Stage) -> None:
    for path in ("/interaction/%00", "/interaction/%00/status", "/wallet/request/%00"):
        response = requests.get(stage.server.url(path), allow_redirects=False, timeout=10)
        assert response.status_code == 400, (path, response.status_code)


def test_nul_in_basic_credentials_is_invalid_client(stage: Stage) -> None:
    credentials = base64.b64encode(b"%00:secret").decode("ascii")
    response = raw_request(
        "POST",
        stage.server.url("/token"),
        [("Content-Type", FORM), ("Authorization", f"Basic {credentials}")],
        body=b"grant_type=client_credentials",
    )
    assert_json_error(response, 401, "invalid_client")


def test_nul_in_a_client_assertion_subject_is_invalid_client(stage: Stage) -> None:
    assertion = _nul_assertion(stage, iss="bank\x00", sub="bank\x00")
    assert_json_error(token_request_with_assertion(stage, assertion), 401, "invalid_client")


def test_nul_in_a_client_assertion_jti_is_stored_safely(stage: Stage) -> None:
    """jti is an opaque string: a NUL in it is odd but harmless once it reaches storage."""
    assertion = _nul_assertion(stage, jti="j\x00")
    assert token_request_with_assertion(stage, assertion).status_code == 200
    again = token_request_with_assertion(stage, assertion)
    assert_json_error(again, 401, "invalid_client")  # and the replay check still holds


def test_nul_in_a_dpop_proof_jti_is_stored_safely(stage: Stage) -> None:
    proof = DpopKey().proof(
        "POST", stage.server.url("/token"), iat=stage.clock.now(), claims={"jti": "j\x00"}
    )
    response = stage.bank.post("/token", {"grant_type": "client_credentials"}, dpop=proof)
    assert response.status_code == 200, response.text
    again = stage.bank.post("/token", {"grant_type": "client_credentials"}, dpop=proof)
    assert_json_error(again, 400, "invalid_dpop_proof")


def test_nul_in_a_wallet_response_is_refused(stage: Stage) -> None:
    response = requests.post(
        stage.server.url("/wallet/response"), data={"state": "\x00", "vp_token": "{}"}, timeout=10
    )
    assert 400 <= response.status_code < 500, response.text
