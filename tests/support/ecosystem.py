"""A small ecosystem around a running trustanchor for flow tests: one smartphone-credential
anchor with its issuer, a confidential intermediary (private_key_jwt) and a resource server
that introspects, each with its own keys — and a browser + wallet that walk the login pages."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from support.credentials import Issuer, Wallet
from support.html import parse
from support.server import RunningServer
from trustanchor.digests import b64url_encode
from trustanchor.jose.jwk import public_jwk

BANK_REDIRECT = "https://bank.example/callback"
CREDENTIAL_ID = "identity_credential"


def _private_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    d = key.private_numbers().private_value.to_bytes(32, "big")
    return {**public_jwk(key), "d": b64url_encode(d), "kid": kid, "alg": "ES256"}


@dataclass
class Party:
    """A client of the service with its own EC key."""

    client_id: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def private_jwk(self) -> dict[str, str]:
        return _private_jwk(self.key, f"{self.client_id}-key")

    @property
    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {
                    **public_jwk(self.key),
                    "kid": f"{self.client_id}-key",
                    "alg": "ES256",
                    "use": "sig",
                }
            ]
        }


@dataclass
class Ecosystem:
    issuer: Issuer = field(default_factory=lambda: Issuer.generate(issuer="https://pid.example.jp"))
    bank: Party = field(default_factory=lambda: Party("bank"))
    ledger: Party = field(default_factory=lambda: Party("ledger"))
    anchor_id: str = "jp-national-id"

    def anchor_declaration(self, **overrides: Any) -> dict[str, Any]:
        settings = {
            "issuer": self.issuer.issuer,
            "jwks": self.issuer.jwks(),
            "vct": [self.issuer.vct],
            "subject_claim": "sub",
            "claims": {
                "given_name": "given_name",
                "family_name": "family_name",
                "birthdate": "birthdate",
            },
            "trust_framework": "jp_my_number_card",
            "status_check": "off",
        }
        settings.update(overrides)
        return {
            "id": self.anchor_id,
            "kind": "sd_jwt_vc",
            "display_name": {"en": "National ID (test)", "ja": "マイナンバーカード（テスト）"},
            "assurance_level": "high",
            "sd_jwt_vc": settings,
        }

    def client_declarations(self) -> list[dict[str, Any]]:
        return [
            {
                "client_id": self.bank.client_id,
                "client_name": {"en": "Test Bank", "ja": "テスト銀行"},
                "client_type": "confidential",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": self.bank.jwks,
                "redirect_uris": [BANK_REDIRECT],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scope": "openid profile address",
            },
            {
                "client_id": self.ledger.client_id,
                "client_name": "Test Ledger",
                "client_type": "confidential",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": self.ledger.jwks,
                "grant_types": ["client_credentials"],
                "introspection": True,
            },
        ]

    def credential(
        self, wallet: Wallet, *, subject: str = "person-0001", iat: int | None = None
    ) -> str:
        return self.issuer.issue(
            wallet,
            claims={
                "sub": subject,
                "given_name": "Taro",
                "family_name": "Yamada",
                "birthdate": "1990-04-01",
            },
            disclosable={"given_name", "family_name", "birthdate"},
            iat=iat if iat is not None else int(time.time()) - 60,
        )


class Browser:
    """A person's browser: follows our pages, stops at the client's redirect URI."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.session = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=10)

    def follow(self, response: requests.Response) -> requests.Response:
        while response.status_code in (302, 303) and response.headers["Location"].startswith(
            ("/", self.server.issuer)
        ):
            location = response.headers["Location"]
            if location.startswith("/"):
                location = self.server.url(location)
            response = self.get(location)
        return response

    def submit(self, page_html: str, action_suffix: str, **extra: str) -> requests.Response:
        form = parse(page_html).form_with(action_suffix)
        data = {**form.fields, **extra}
        url = form.action if form.action.startswith("http") else self.server.url(form.action)
        return self.session.post(url, data=data, allow_redirects=False, timeout=10)


@dataclass
class WalletApp:
    """The phone: reads the request object by reference and posts an SD-JWT VC presentation."""

    server: RunningServer
    wallet: Wallet
    credential: str

    def request_object(self, wallet_link: str) -> dict[str, Any]:
        query = parse_qs(urlsplit(wallet_link).query)
        request_uri = query["request_uri"][0]
        response = requests.get(request_uri, timeout=10)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/oauth-authz-req+jwt")
        jwks = requests.get(self.server.url("/jwks"), timeout=10).json()
        # Verify with an independent JOSE implementation against the published keys only.
        token = jose_jwt.decode(response.text, KeySet.import_key_set(jwks), algorithms=["ES256"])
        assert token.header["typ"] == "oauth-authz-req+jwt"
        claims = dict(token.claims)
        assert claims["client_id"] == query["client_id"][0]
        return claims

    def respond(
        self, request: dict[str, Any], *, nonce: str | None = None, aud: str | None = None
    ) -> requests.Response:
        presentation = self.wallet.present(
            self.credential,
            nonce=nonce or request["nonce"],
            aud=aud or request["client_id"],
            iat=int(time.time()),
        )
        return requests.post(
            request["response_uri"],
            data={
                "vp_token": json.dumps({CREDENTIAL_ID: [presentation]}),
                "state": request["state"],
            },
            timeout=10,
        )
