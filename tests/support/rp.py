"""A small hand-rolled relying party for the security flow tests.

The independent RP library (requests-oauth2client) only sends well-formed requests; these tests
need the malformed ones too: a challenge one character short, a proof for the wrong key, a
parameter twice, an assertion with a compressed payload. So this RP builds every request itself:
``private_key_jwt`` assertions and DPoP proofs signed with PyJWT, PKCE pairs, thumbprints per
RFC 7638 — none of it through trustanchor's own code, so the server is checked against another
reading of the specifications. Time comes from the test's clock (``support.clock``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3 import HTTPHeaderDict

from support.ecosystem import Party
from support.server import RunningServer
from trustanchor.clock import Clock

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Params = Mapping[str, str] | Sequence[tuple[str, str]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ec_public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    """The required members of a P-256 public JWK (RFC 7518 §6.2.1)."""
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, lexicographic order, no whitespace."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = b64url(secrets.token_bytes(32))  # 43 unreserved characters
        return cls(verifier, b64url(hashlib.sha256(verifier.encode("ascii")).digest()))


@dataclass
class DpopKey:
    """A client's DPoP key pair; :meth:`proof` signs one proof (RFC 9449 §4.2)."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_jwk(self) -> dict[str, str]:
        return ec_public_jwk(self.key)

    @property
    def jkt(self) -> str:
        return jwk_thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        *,
        iat: int,
        access_token: str | None = None,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": iat,
        }
        if access_token is not None:
            body["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        body.update(claims or {})
        header = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(headers or {})}
        return jwt.encode(body, self.key, algorithm="ES256", headers=header)


class RelyingParty:
    """One registered client of the running server, speaking raw HTTP."""

    def __init__(
        self, server: RunningServer, party: Party, clock: Clock, *, redirect_uri: str
    ) -> None:
        self.server = server
        self.party = party
        self.clock = clock
        self.redirect_uri = redirect_uri

    @property
    def client_id(self) -> str:
        return self.party.client_id

    # -- client authentication (private_key_jwt, RFC 7523) ------------------------------------

    def assertion(
        self,
        *,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        now = self.clock.now()
        body: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.server.issuer,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
            **(claims or {}),
        }
        header = {"kid": f"{self.client_id}-key", **(headers or {})}
        return jwt.encode(body, self.party.key, algorithm="ES256", headers=header)

    def credentials(self, assertion: str | None = None) -> list[tuple[str, str]]:
        return [
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion if assertion is not None else self.assertion()),
        ]

    # -- requests -----------------------------------------------------------------------------

    def post(
        self,
        path: str,
        params: Params,
        *,
        authenticate: bool = True,
        dpop: str | Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """POST a form; ``dpop`` as a list sends that many DPoP header lines."""
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        if authenticate:
            items += self.credentials()
        header_lines: list[tuple[str, str]] = [
            ("Content-Type", "application/x-www-form-urlencoded")
        ]
        if isinstance(dpop, str):
            header_lines.append(("DPoP", dpop))
        elif dpop is not None:
            header_lines += [("DPoP", value) for value in dpop]
        header_lines += list((headers or {}).items())
        return raw_post(self.server.url(path), urlencode(items).encode("ascii"), header_lines)

    def push(self, pkce: Pkce | None = None, **params: str | None) -> requests.Response:
        """A PAR request with sensible defaults; a parameter given as None is left out."""
        pkce = pkce or Pkce.generate()
        defaults: dict[str, str | None] = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": "openid",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
        }
        defaults.update(params)
        return self.post("/par", {k: v for k, v in defaults.items() if v is not None})

    def request_uri(self, pkce: Pkce, **params: str | None) -> str:
        response = self.push(pkce, **params)
        assert response.status_code == 201, response.text
        return str(response.json()["request_uri"])

    def authorization_url(self, request_uri: str, client_id: str | None = None) -> str:
        query = urlencode({"client_id": client_id or self.client_id, "request_uri": request_uri})
        return self.server.url(f"/authorize?{query}")

    def redeem(
        self,
        code: str,
        verifier: str | None,
        *,
        dpop: str | Sequence[str] | None = None,
        redirect_uri: str | None = None,
    ) -> requests.Response:
        params = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
        }
        if verifier is not None:
            params["code_verifier"] = verifier
        return self.post("/token", params, dpop=dpop)

    def refresh(
        self, refresh_token: str, *, scope: str | None = None, dpop: str | None = None
    ) -> requests.Response:
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            params["scope"] = scope
        return self.post("/token", params, dpop=dpop)

    def introspect(self, token: str) -> dict[str, Any]:
        response = self.post("/introspect", {"token": token})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def proof(
        self, key: DpopKey, path: str, *, method: str = "POST", access_token: str | None = None
    ) -> str:
        return key.proof(
            method, self.server.url(path), iat=self.clock.now(), access_token=access_token
        )


def raw_post(url: str, body: bytes, headers: Sequence[tuple[str, str]]) -> requests.Response:
    return raw_request("POST", url, headers, body=body)


def raw_request(
    method: str, url: str, headers: Sequence[tuple[str, str]], *, body: bytes | None = None
) -> requests.Response:
    """Send with every header line kept as given: requests' own header dict cannot hold a name
    twice, urllib3's HTTPHeaderDict can, and urllib3 sends each value as its own line."""
    request = requests.Request(method, url, data=body).prepare()
    lines = HTTPHeaderDict({name: str(value) for name, value in request.headers.items()})
    for name, value in headers:
        lines.add(name, value)
    request.headers = lines  # type: ignore[assignment]
    with requests.Session() as session:
        return session.send(request, allow_redirects=False, timeout=10)
