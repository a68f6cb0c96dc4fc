"""The demo phone's My Number Card app (trustanchor.demo.card_app): what it refuses to sign and
exactly what it signs. The service is played by a recording HTTP stub serving a request signed
with a real P-256 key published in its JWKS; the card is a real demo card (jpki_ca)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.clock import FixedClock
from trustanchor.demo import jpki_ca
from trustanchor.demo.card_app import (
    CHALLENGE_TYP,
    PURPOSE,
    REQUEST_TYP,
    CardApp,
    CardError,
    Pins,
)
from trustanchor.demo.holder import TrustedVerifier
from trustanchor.demo.people import person
from trustanchor.jose import jws
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.randomness import SequenceRandomness

NOW = 1_790_000_000
SERVICE = "https://as.example"
REQUEST_URI = f"{SERVICE}/certificate/request/txn-1"
LINK = "https://phone.example/card/authorize?" + urlencode(
    {"client_id": SERVICE, "request_uri": REQUEST_URI}
)
KEY = ec.generate_private_key(ec.SECP256R1())
KID = thumbprint(public_jwk(KEY))


@dataclass
class Answer:
    status_code: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        pass


@dataclass
class Service:
    """The service as the app sees it over HTTP; records every request."""

    claims: dict[str, Any]
    header: dict[str, Any] = field(default_factory=lambda: {"typ": REQUEST_TYP, "kid": KID})
    answer: dict[str, Any] = field(
        default_factory=lambda: {
            "redirect_uri": f"{SERVICE}/certificate/done/txn-1?response_code=c"
        }
    )
    fetched: list[str] = field(default_factory=list)
    posted: list[dict[str, str]] = field(default_factory=list)

    def get(self, url: str, **_: Any) -> Answer:
        self.fetched.append(url)
        if url == f"{SERVICE}/jwks":
            jwks = {"keys": [{**public_jwk(KEY), "kid": KID}]}
            return Answer(200, json.dumps(jwks).encode(), {"Content-Type": "application/json"})
        token = jws.sign(self.claims, KEY, alg="ES256", headers=self.header)
        return Answer(200, token.encode(), {"Content-Type": "application/oauth-authz-req+jwt"})

    def post(self, url: str, *, data: Mapping[str, str], **_: Any) -> Answer:
        self.posted.append({"url": url, **data})
        return Answer(200, json.dumps(self.answer).encode(), {"Content-Type": "application/json"})


def request_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": SERVICE,
        "client_id": SERVICE,
        "response_uri": f"{SERVICE}/certificate/response",
        "response_mode": "direct_post",
        "nonce": "n" * 43,
        "state": "txn-1",
        "iat": NOW,
        "exp": NOW + 300,
        "certificates": ["authentication", "signature"],
        "algs": ["RS256"],
        "purpose": PURPOSE,
        "client_name": "Demo Bank",
        "anchor": {"id": "jp-jpki", "display_name": {"en": "My Number Card"}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def app_for(service: Service) -> CardApp:
    verifier = TrustedVerifier(SERVICE, {"en": "AS"}, SERVICE, f"{SERVICE}/jwks")
    return CardApp(
        http=service,  # type: ignore[arg-type]
        clock=FixedClock(NOW + 5),
        randomness=SequenceRandomness(),
        verifiers=[verifier],
    )


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> jpki_ca.Card:
    keys: Path = tmp_path_factory.mktemp("keys")
    hanako = person("hanako")
    jpki_ca.prepare_jpki(keys, FixedClock(NOW), [hanako])
    return jpki_ca.load_card(keys, hanako)


def refused(service: Service, link: str = LINK) -> str:
    with pytest.raises(CardError) as caught:
        app_for(service).fetch_certificate_request(link)
    return caught.value.reason


def test_a_certificate_request_is_read_with_who_asks_and_which_certificates() -> None:
    request = app_for(Service(request_claims())).fetch_certificate_request(LINK)
    assert request.certificates == ("authentication", "signature")
    assert request.client_name == {"en": "Demo Bank"}
    assert request.anchor_name == {"en": "My Number Card"}
    assert request.state == "txn-1"


def test_a_request_of_another_typ_is_refused() -> None:
    wallet_typ = Service(request_claims(), header={"typ": "oauth-authz-req+jwt", "kid": KID})
    assert refused(wallet_typ) == "not_a_certificate_request"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"purpose": "sign-this-contract"}, "wrong_purpose"),
        ({"purpose": None}, "wrong_purpose"),
        ({"algs": ["PS256"]}, "unsupported_alg"),
        ({"certificates": ["signature"]}, "unsupported_certificates"),
        ({"certificates": ["authentication", "authentication"]}, "unsupported_certificates"),
        ({"certificates": ["authentication", "encryption"]}, "unsupported_certificates"),
        ({"response_uri": "https://elsewhere.example/collect"}, "response_uri_not_registered"),
        ({"response_mode": "fragment"}, "unsupported_response_mode"),
        ({"client_id": "https://other.example"}, "client_id_mismatch"),
        ({"iss": None}, "client_id_mismatch"),
        ({"exp": NOW - 60}, "request_expired"),
        ({"iat": NOW + 3600}, "request_not_yet_valid"),
        ({"nonce": "short"}, "invalid_request"),
    ],
)
def test_a_request_that_does_not_say_exactly_what_is_expected_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    service = Service(request_claims(**changes))
    assert refused(service) == reason
    assert service.posted == []


def test_a_request_signed_with_a_key_the_service_does_not_publish_is_refused() -> None:
    service = Service(request_claims(), header={"typ": REQUEST_TYP, "kid": "someone-else"})
    assert refused(service) == "unknown_verifier_key"


def test_a_link_to_a_request_elsewhere_is_never_fetched() -> None:
    service = Service(request_claims())
    elsewhere = "https://phone.example/card/authorize?" + urlencode(
        {"client_id": SERVICE, "request_uri": "https://evil.example/request"}
    )
    assert refused(service, elsewhere) == "request_uri_not_registered"
    assert service.fetched == []


def test_the_card_signs_only_after_its_pins(card: jpki_ca.Card) -> None:
    service = Service(request_claims())
    app = app_for(service)
    request = app.fetch_certificate_request(LINK)
    with pytest.raises(CardError) as caught:
        app.answer(request, card, Pins("0000", "DEMO2027"))
    assert caught.value.reason == "pin_wrong"
    assert service.posted == []


def test_the_answer_is_exactly_the_protocols(card: jpki_ca.Card) -> None:
    service = Service(request_claims())
    app = app_for(service)
    request = app.fetch_certificate_request(LINK)
    redirect_uri = app.answer(request, card, Pins("1234", "DEMO2027"))
    assert redirect_uri == f"{SERVICE}/certificate/done/txn-1?response_code=c"
    [posted] = service.posted
    assert set(posted) == {"url", "state", "authentication", "signature"}
    assert posted["url"] == f"{SERVICE}/certificate/response"
    for profile in ("authentication", "signature"):
        header_b64, payload_b64, _ = posted[profile].split(".")
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
        assert set(header) == {"alg", "typ", "x5c"}
        assert header["alg"] == "RS256" and header["typ"] == CHALLENGE_TYP
        leaf = card.certificates[profile].leaf
        assert base64.b64decode(header["x5c"][0]) == leaf.public_bytes(serialization.Encoding.DER)
        assert payload == {
            "aud": SERVICE,
            "nonce": "n" * 43,
            "txn": "txn-1",
            "iat": NOW + 5,
            "exp": NOW + 300,
            "purpose": PURPOSE,
            "cert": profile,
        }


def test_a_redirect_off_the_services_origin_is_not_followed(card: jpki_ca.Card) -> None:
    service = Service(request_claims(), answer={"redirect_uri": "https://evil.example/"})
    app = app_for(service)
    request = app.fetch_certificate_request(LINK)
    with pytest.raises(CardError) as caught:
        app.answer(request, card, Pins("1234", "DEMO2027"))
    assert caught.value.reason == "invalid_redirect_uri"
