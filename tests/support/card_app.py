"""The person's card app for certificate login flow tests (docs/CERTIFICATE-LOGIN.md), and a
real HTTP server publishing the test JPKI's CRLs.

The app reads the link (QR code or same-device), fetches the signed request by reference and
checks it with an independent JOSE library (joserfc) against the service's published keys only,
then signs a challenge JWS per certificate asked for with support/jpki.py (hand-made RFC 7515,
pyca primitives) and POSTs the answer as a form. Nothing here asks trustanchor's own code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from support.jpki import Card, TestPKI, challenge_jws
from support.server import RunningServer, free_port, serving

REQUEST_TYP = "trustanchor-x509-request+jwt"
CHALLENGE_LIFETIME = 120


@dataclass
class CardApp:
    """A phone app holding one card's two certificates."""

    server: RunningServer
    card: Card

    def request(self, link: str) -> dict[str, Any]:
        """Follow the link: fetch the request object and verify it (signature with the
        service's JWKS, ``typ``, ``client_id`` equal to the link's)."""
        query = parse_qs(urlsplit(link).query, strict_parsing=True)
        assert sorted(query) == ["client_id", "request_uri"], link
        response = requests.get(query["request_uri"][0], timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/oauth-authz-req+jwt")
        assert response.headers["Cache-Control"] == "no-store"
        jwks = requests.get(self.server.url("/jwks"), timeout=10).json()
        token = jose_jwt.decode(response.text, KeySet.import_key_set(jwks), algorithms=["ES256"])
        assert token.header["typ"] == REQUEST_TYP
        claims = dict(token.claims)
        assert claims["client_id"] == query["client_id"][0] == claims["iss"]
        assert claims["response_mode"] == "direct_post"
        assert claims["purpose"] == "trustanchor-login-challenge-v1"
        return claims

    def challenge(
        self,
        request: Mapping[str, Any],
        profile: str,
        **overrides: Any,
    ) -> str:
        """The challenge JWS of ``profile`` for ``request`` (``overrides``: nonce, txn, aud, …
        for the cases that must fail)."""
        now = int(time.time())
        leaf = self.card.authentication if profile == "authentication" else self.card.signature
        values: dict[str, Any] = {
            "aud": request["client_id"],
            "nonce": request["nonce"],
            "txn": request["state"],
            "iat": now,
            "exp": min(int(request["exp"]), now + CHALLENGE_LIFETIME),
            "cert": profile,
        }
        values.update(overrides)
        return challenge_jws(leaf, TestPKI.chain_of(leaf), **values)

    def answer(
        self,
        request: Mapping[str, Any],
        certificates: Sequence[str] | None = None,
        *,
        state: str | None = None,
        **overrides: Any,
    ) -> requests.Response:
        """Sign the challenge with each certificate asked for (or ``certificates``) and post."""
        form = {"state": state or request["state"]}
        for profile in request["certificates"] if certificates is None else certificates:
            form[profile] = self.challenge(request, profile, **overrides)
        return post(request["response_uri"], form)

    def decline(self, request: Mapping[str, Any]) -> requests.Response:
        return post(request["response_uri"], {"state": request["state"], "error": "access_denied"})


def post(url: str, form: Mapping[str, str]) -> requests.Response:
    return requests.post(url, data=dict(form), timeout=10)


@dataclass
class CrlServer:
    """CRLs of a test PKI over real HTTP (the anchor's revocation source fetches them)."""

    pki: TestPKI
    port: int = field(default_factory=free_port)
    revoked: set[int] = field(default_factory=set)

    @property
    def urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{self.port}/authentication.crl",
            f"http://127.0.0.1:{self.port}/signature.crl",
        ]

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        issuer = {
            "/authentication.crl": self.pki.authentication_ca,
            "/signature.crl": self.pki.signature_ca,
        }.get(path)
        if issuer is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        now = int(time.time())
        body = self.pki.crl(issuer, revoked=sorted(self.revoked), now=now)
        start_response("200 OK", [("Content-Type", "application/pkix-crl")])
        return [body]

    @contextmanager
    def running(self) -> Iterator[CrlServer]:
        with serving(self._app, self.port):
            yield self


def x509_anchor_declaration(
    pki: TestPKI,
    crl_urls: Sequence[str],
    *,
    anchor_id: str = "jp-jpki",
    anchor_sets: Sequence[str] = (),
    level: str = "high",
) -> dict[str, Any]:
    """An ``x509`` anchor trusting ``pki``, revocation through its CRLs."""
    return {
        "id": anchor_id,
        "kind": "x509",
        "display_name": {"en": "My Number Card (test)", "ja": "マイナンバーカード（テスト）"},
        "assurance_level": level,
        "anchor_sets": list(anchor_sets),
        "x509": pki.anchor_settings(revocation={"source": "crl", "crl_urls": list(crl_urls)}),
    }


def fetcher_overrides() -> dict[str, dict[str, Any]]:
    """Let the service's fetcher reach the CRL server on the loopback address over http."""
    return {"fetcher": {"http_hosts": ["127.0.0.1"], "private_hosts": ["127.0.0.1"]}}
