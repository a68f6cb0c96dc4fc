"""The demo wallet's core (trustanchor.demo.holder) against a verifier made of the service's own
OpenID4VP parts: Request Objects built by ``build_request_object``, the response parsed by
``parse_direct_post`` and the presentation checked by the sd_jwt_vc anchor verifier. Only the
transport is in memory (``VerifierSite`` answers the holder's HTTP calls); the whole exchange
over real HTTP against the running service is tests/flows/test_demo_wallet.py.

Refusals are checked one by one: the wallet must not answer a request it cannot trust.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from support.credentials import decode_segment

from trustanchor.anchors.base import Expectation
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.clock import FixedClock
from trustanchor.config.settings import LimitSettings
from trustanchor.demo import wallet_pages
from trustanchor.demo.holder import (
    MAX_JWKS_BYTES,
    MAX_REQUEST_BYTES,
    MAX_RESPONSE_BYTES,
    HeldCredential,
    Holder,
    HolderError,
    TransactionItem,
    TrustedVerifier,
    match_query,
)
from trustanchor.demo.issuer import AnchorIssuer, issue_for_person
from trustanchor.demo.people import person
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import VerifiedIdentity
from trustanchor.jose import jws
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.keystore.signing_keys import SigningKey
from trustanchor.openid4vp import dcql, transaction_data
from trustanchor.openid4vp.links import wallet_request_url
from trustanchor.openid4vp.request_object import VerifierIdentity, build_request_object
from trustanchor.openid4vp.response import parse_direct_post
from trustanchor.randomness import SequenceRandomness
from trustanchor.web.i18n import Translator

AT = 1_760_000_000
VERIFIER = "https://verifier.example"
REQUEST_URI = f"{VERIFIER}/wallet/request/tx-0123456789"
RESPONSE_URI = f"{VERIFIER}/wallet/response"
JWKS_URI = f"{VERIFIER}/jwks"
REDIRECT_URI = f"{VERIFIER}/wallet/done/tx-0123456789?response_code=c0de"
NONCE = "nonce-abcdefghijklmnopqrstuvwxyz"
STATE = "state-abcdefghijklmnopqrstuvwxyz"
CREDENTIAL_ID = "identity_credential"
JP_VCT = "urn:trustanchor:demo:jp:national-id:1"
EU_VCT = "urn:eudi:pid:1"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)
FORM = "application/x-www-form-urlencoded"


def signing_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(
        kid=thumbprint(public_jwk(private)),
        alg="ES256",
        created_at=AT,
        retired_at=None,
        demo=True,
        private_key=private,
    )


def anchor_issuer(anchor_id: str, issuer: str, vct: str) -> AnchorIssuer:
    private = ec.generate_private_key(ec.SECP256R1())
    return AnchorIssuer(
        anchor_id=anchor_id,
        display_name={"en": f"{anchor_id} (test)", "ja": f"{anchor_id}（テスト）"},
        issuer=issuer,
        vct=vct,
        kid=thumbprint(public_jwk(private)),
        private_key=private,
    )


JP = anchor_issuer("jp-national-id", "https://demo-pid.trustanchor.invalid/jp", JP_VCT)
EU = anchor_issuer("eu-pid", "https://demo-pid.trustanchor.invalid/eu", EU_VCT)


def held_credential(person_id: str, issuer: AnchorIssuer) -> HeldCredential:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = issue_for_person(
        person(person_id), issuer, key, clock=FixedClock(AT - 3600), randomness=SequenceRandomness()
    )
    return HeldCredential.parse(
        issued.credential,
        key,
        credential_id=person_id,
        anchor_id=issued.anchor,
        issuer_name=issued.issuer_name,
    )


HANAKO = held_credential("hanako", JP)
ERIKA = held_credential("erika", EU)


def anchor_verifier(issuer: AnchorIssuer) -> SdJwtVcVerifier:
    anchor = Anchor(
        id=issuer.anchor_id,
        kind="sd_jwt_vc",
        display_name=dict(issuer.display_name),
        assurance_level="high",
        status="active",
        settings={
            "issuer": issuer.issuer,
            "jwks": issuer.public_jwks(),
            "vct": [issuer.vct],
            "subject_claim": "sub",
            "claims": {n: n for n in ("given_name", "family_name", "birthdate", "address")},
            "trust_framework": "jp_my_number_card",
            "status_check": "off",
        },
    )
    return SdJwtVcVerifier(anchor, fetcher=None, limits=LIMITS, kb_max_age=300)


def query(*paths: list[str], vct: str = JP_VCT) -> dict[str, Any]:
    return dcql.build_query(CREDENTIAL_ID, [vct], list(paths))


@dataclass
class Reply:
    """An answer whose body is handed out in chunks, as requests does with ``stream=True``;
    ``read`` counts the bytes the holder actually pulled."""

    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    read: int = 0
    closed: bool = False

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        for start in range(0, len(self.content), chunk_size):
            chunk = self.content[start : start + chunk_size]
            self.read += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True


@dataclass
class VerifierSite:
    """The verifier's side of the exchange (the service's code), answering in memory."""

    clock: FixedClock
    key: SigningKey = field(default_factory=signing_key)
    dcql_query: dict[str, Any] = field(
        default_factory=lambda: query(["sub"], ["given_name"], ["family_name"])
    )
    token: Callable[[str | None], str] | None = None  # replaces the well-formed Request Object
    answer: Reply | None = None  # replaces the response endpoint's answer
    redirect_uri: str | None = REDIRECT_URI
    calls: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)
    responses: list[dict[str, list[str]]] = field(default_factory=list)
    identities: list[VerifiedIdentity] = field(default_factory=list)

    def request_object(self, wallet_nonce: str | None = None, **changes: Any) -> str:
        """A Request Object as the service builds it, optionally re-signed with ``changes``
        to its claims (a value of None removes the claim)."""
        token = build_request_object(
            VerifierIdentity(client_id=VERIFIER, signing_key=self.key),
            nonce=NONCE,
            state=STATE,
            response_uri=RESPONSE_URI,
            dcql_query=self.dcql_query,
            at=self.clock.now(),
            lifetime=300,
            wallet_nonce=wallet_nonce,
        )
        if not changes:
            return token
        claims = {**decode_segment(token.split(".")[1]), **changes}
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.sign(claims)

    def sign(
        self,
        claims: dict[str, Any],
        *,
        header: Mapping[str, Any] | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        headers = {"typ": "oauth-authz-req+jwt", "kid": self.key.kid, **(header or {})}
        return jws.sign(claims, key or self.key.private_key, alg="ES256", headers=headers)

    # the HTTP client the holder is given

    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        allow_redirects: bool,
        stream: bool = False,  # the holder streams; the Reply counts what it reads
    ) -> Reply:
        assert allow_redirects is False
        self.calls.append(("GET", url, {}))
        if url == JWKS_URI:
            jwks = {"keys": [self.key.public_jwk()]}
            return Reply(200, json.dumps(jwks).encode(), {"Content-Type": "application/json"})
        if url == REQUEST_URI:
            return self._request_object(None)
        return Reply(404, b'{"error":"not_found"}')

    def post(
        self,
        url: str,
        *,
        data: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
        allow_redirects: bool,
        stream: bool = False,  # the holder streams; the Reply counts what it reads
    ) -> Reply:
        assert allow_redirects is False
        self.calls.append(("POST", url, dict(data)))
        if url == REQUEST_URI:
            return self._request_object(data.get("wallet_nonce"))
        if url != RESPONSE_URI:
            return Reply(404, b"")
        form = {name: [value] for name, value in data.items()}
        self.responses.append(form)
        if self.answer is not None:
            return self.answer
        response = parse_direct_post(form, credential_id=CREDENTIAL_ID, max_bytes=65536)
        assert response.state == STATE
        if response.presentation is not None:
            verifier = anchor_verifier(JP if JP_VCT in json.dumps(self.dcql_query) else EU)
            self.identities.append(
                verifier.verify(
                    response.presentation,
                    expected=Expectation(nonce=NONCE, audience=VERIFIER),
                    at=self.clock.now(),
                )
            )
        body = {} if self.redirect_uri is None else {"redirect_uri": self.redirect_uri}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _request_object(self, wallet_nonce: str | None) -> Reply:
        token = self.token(wallet_nonce) if self.token else self.request_object(wallet_nonce)
        return Reply(200, token.encode(), {"Content-Type": "application/oauth-authz-req+jwt"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(AT)


@pytest.fixture
def site(clock: FixedClock) -> VerifierSite:
    return VerifierSite(clock)


def holder_for(site: VerifierSite, clock: FixedClock, *, loopback: bool = False) -> Holder:
    registered = TrustedVerifier(
        client_id=VERIFIER,
        display_name={"en": "Test verifier", "ja": "テスト検証者"},
        origin=VERIFIER,
        jwks_uri=JWKS_URI,
    )
    return Holder(
        http=site,
        clock=clock,
        randomness=SequenceRandomness("w"),
        verifiers=[registered],
        allow_http_loopback=loopback,
    )


def invocation(client_id: str = VERIFIER, *, method: str | None = None) -> str:
    return wallet_request_url(
        "openid4vp://", client_id=client_id, request_uri=REQUEST_URI, request_uri_method=method
    )


def refusal(action: Callable[[], object]) -> HolderError:
    with pytest.raises(HolderError) as refused:
        action()
    return refused.value


# -- the whole exchange -------------------------------------------------------------------------


def test_answers_a_request_disclosing_exactly_what_it_asks(
    site: VerifierSite, clock: FixedClock
) -> None:
    holder = holder_for(site, clock)
    request = holder.fetch_request(invocation())
    assert (request.client_id, request.nonce, request.state) == (VERIFIER, NONCE, STATE)
    assert request.response_uri == RESPONSE_URI
    proposal = holder.propose(request, [ERIKA, HANAKO])
    (match,) = proposal.matches
    assert match.query_id == CREDENTIAL_ID and match.credential is HANAKO
    assert match.claim_names == ("sub", "given_name", "family_name")
    assert dict(match.disclosed)["given_name"] == "花子"

    clock.advance(5)
    assert holder.present(proposal) == REDIRECT_URI
    (form,) = site.responses
    assert sorted(form) == ["state", "vp_token"]
    vp_token = json.loads(form["vp_token"][0])
    (shown,) = vp_token[CREDENTIAL_ID]
    parts = shown.split("~")
    assert len(parts) == 5  # issuer JWT, three Disclosures, KB-JWT: birthdate, address stay hidden
    kb_header, kb_claims = (
        decode_segment(parts[-1].split(".")[0]),
        decode_segment(parts[-1].split(".")[1]),
    )
    assert kb_header["typ"] == "kb+jwt" and kb_header["alg"] == "ES256"
    assert (kb_claims["aud"], kb_claims["nonce"], kb_claims["iat"]) == (VERIFIER, NONCE, AT + 5)
    (identity,) = site.identities  # the service's own verifier accepted it
    assert identity.subject == person("hanako").sub
    assert identity.claims == {"given_name": "花子", "family_name": "山田"}


def test_request_uri_method_post_sends_a_wallet_nonce_and_checks_the_echo(
    site: VerifierSite, clock: FixedClock
) -> None:
    holder = holder_for(site, clock)
    request = holder.fetch_request(invocation(method="post"))
    method, url, data = site.calls[0]
    assert (method, url) == ("POST", REQUEST_URI)
    assert data["wallet_nonce"] and request.wallet_nonce == data["wallet_nonce"]

    site.token = lambda _nonce: site.request_object("another-wallet-nonce")
    assert refusal(lambda: holder.fetch_request(invocation(method="post"))).reason == (
        "wallet_nonce_mismatch"
    )


def test_decline_tells_the_verifier_access_denied(site: VerifierSite, clock: FixedClock) -> None:
    site.redirect_uri = None
    holder = holder_for(site, clock)
    assert holder.decline(holder.fetch_request(invocation())) is None
    (form,) = site.responses
    parsed = parse_direct_post(form, credential_id=CREDENTIAL_ID, max_bytes=65536)
    assert parsed.error == "access_denied" and parsed.state == STATE
    assert parsed.presentation is None


def test_a_refused_presentation_is_reported_with_the_verifiers_reason(
    site: VerifierSite, clock: FixedClock
) -> None:
    holder = holder_for(site, clock)
    proposal = holder.propose(holder.fetch_request(invocation()), [HANAKO])
    site.answer = Reply(400, b'{"error":"invalid_request","error_description":"kb_stale"}')
    refused = refusal(lambda: holder.present(proposal))
    assert refused.reason == "verifier_refused"
    assert "kb_stale" in refused.detail


def test_a_redirect_to_another_site_is_not_followed(site: VerifierSite, clock: FixedClock) -> None:
    site.redirect_uri = "https://elsewhere.example/phish"
    holder = holder_for(site, clock)
    proposal = holder.propose(holder.fetch_request(invocation()), [HANAKO])
    assert refusal(lambda: holder.present(proposal)).reason == "invalid_redirect_uri"


# -- Request Object refusals ------------------------------------------------------------------


def _wrong_typ(site: VerifierSite, _nonce: str | None) -> str:
    return site.sign(decode_segment(site.request_object().split(".")[1]), header={"typ": "JWT"})


def _bad_signature(site: VerifierSite, _nonce: str | None) -> str:
    claims = decode_segment(site.request_object().split(".")[1])
    return site.sign(claims, key=ec.generate_private_key(ec.SECP256R1()))


def _unknown_kid(site: VerifierSite, _nonce: str | None) -> str:
    return site.sign(decode_segment(site.request_object().split(".")[1]), header={"kid": "k9"})


def _other_client_id(site: VerifierSite, _nonce: str | None) -> str:
    return build_request_object(
        VerifierIdentity(client_id="https://impostor.example", signing_key=site.key),
        nonce=NONCE,
        state=STATE,
        response_uri=RESPONSE_URI,
        dcql_query=site.dcql_query,
        at=site.clock.now(),
        lifetime=300,
    )


def _changed(**changes: Any) -> Callable[[VerifierSite, str | None], str]:
    return lambda site, _nonce: site.request_object(**changes)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (_wrong_typ, "wrong_typ"),
        (_bad_signature, "bad_signature"),
        (_unknown_kid, "unknown_verifier_key"),
        (_other_client_id, "client_id_mismatch"),
        (_changed(iss="https://impostor.example"), "client_id_mismatch"),
        (_changed(aud="https://someone-else.example"), "wrong_audience"),
        (_changed(exp=AT - 31), "request_expired"),
        (_changed(exp=None), "invalid_request"),
        (_changed(iat=AT + 3600), "request_not_yet_valid"),
        (_changed(response_type="code"), "unsupported_response_type"),
        (_changed(response_mode="direct_post.jwt"), "unsupported_response_mode"),
        (_changed(response_uri="https://attacker.example/collect"), "response_uri_not_registered"),
        (_changed(response_uri="http://verifier.example/wallet/response"), "invalid_request"),
        (_changed(nonce=None), "invalid_request"),
        (_changed(state=None), "invalid_request"),
        (_changed(client_metadata={"vp_formats_supported": {}}), "unexpected_client_metadata"),
        (_changed(dcql_query={"credentials": []}), "invalid_dcql_query"),
    ],
)
def test_request_objects_the_wallet_refuses(
    site: VerifierSite,
    clock: FixedClock,
    make_token: Callable[[VerifierSite, str | None], str],
    reason: str,
) -> None:
    site.token = lambda nonce: make_token(site, nonce)
    refused = refusal(lambda: holder_for(site, clock).fetch_request(invocation()))
    assert refused.reason == reason
    assert not site.responses  # nothing was ever sent to the response endpoint


def test_an_expired_request_is_refused_also_at_confirmation(
    site: VerifierSite, clock: FixedClock
) -> None:
    holder = holder_for(site, clock)
    request = holder.fetch_request(invocation())
    clock.advance(300 + 30)  # lifetime plus the clock skew the wallet allows
    refused = refusal(lambda: holder.verify_request_object(request.token, client_id=VERIFIER))
    assert refused.reason == "request_expired"
    # and the token cannot be re-used for another client_id either
    clock.set(AT)
    refused = refusal(
        lambda: holder.verify_request_object(request.token, client_id="https://other.example")
    )
    assert refused.reason == "unknown_verifier"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (invocation("x509_san_dns:verifier.example"), "unknown_verifier"),
        (invocation("https://stranger.example"), "unknown_verifier"),
        ("openid4vp://?client_id=https%3A%2F%2Fverifier.example", "invalid_link"),
        (
            "openid4vp://?client_id=https%3A%2F%2Fverifier.example"
            "&request_uri=http%3A%2F%2Fverifier.example%2Fr",
            "invalid_link",
        ),
    ],
)
def test_invocations_refused_before_any_fetch(
    site: VerifierSite, clock: FixedClock, url: str, reason: str
) -> None:
    assert refusal(lambda: holder_for(site, clock).fetch_request(url)).reason == reason
    assert site.calls == []


def test_an_unreadable_or_missing_request_is_refused(site: VerifierSite, clock: FixedClock) -> None:
    holder = holder_for(site, clock)
    gone = invocation().replace("tx-0123456789", "tx-gone")
    refused = refusal(lambda: holder.fetch_request(gone))
    assert refused.reason == "request_unavailable" and "404" in refused.detail

    original = site.get

    def as_json(url: str, **kwargs: Any) -> Reply:
        reply = original(url, **kwargs)
        if url == REQUEST_URI:
            reply.headers = {"Content-Type": "application/json"}
        return reply

    site.get = as_json  # type: ignore[method-assign]
    assert refusal(lambda: holder.fetch_request(invocation())).reason == "request_malformed"


# -- what the wallet fetches (issue 10, item 8e) ------------------------------------------------
# The demo wallet runs on a server: a link or pasted QR text must not make it fetch anything but
# the registered verifier's own URLs, follow a redirect, or read an unbounded answer.


def invocation_to(request_uri: str) -> str:
    return wallet_request_url(
        "openid4vp://", client_id=VERIFIER, request_uri=request_uri, allow_http_loopback=True
    )


@pytest.mark.parametrize(
    "request_uri",
    [
        "https://attacker.example/wallet/request/tx-0123456789",
        "https://verifier.example.attacker.example/wallet/request/tx-0123456789",
        "https://verifier.example:8443/wallet/request/tx-0123456789",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/admin",
        "http://127.0.0.1:9/wallet/request/tx-0123456789",  # another scheme (and port)
    ],
)
def test_demo_wallet_fetches_no_request_uri_off_the_verifiers_origin(
    site: VerifierSite, clock: FixedClock, request_uri: str
) -> None:
    holder = holder_for(site, clock, loopback=True)
    refused = refusal(lambda: holder.fetch_request(invocation_to(request_uri)))
    assert refused.reason == "request_uri_not_registered"
    assert site.calls == []  # nothing fetched, not even the verifier's keys


def test_demo_wallet_does_not_follow_a_redirect_from_the_request_uri(
    site: VerifierSite, clock: FixedClock
) -> None:
    original = site.get

    def redirecting(url: str, **kwargs: Any) -> Reply:
        if url == REQUEST_URI:
            site.calls.append(("GET", url, {}))
            return Reply(302, b"", {"Location": "https://169.254.169.254/latest/meta-data/"})
        return original(url, **kwargs)

    site.get = redirecting  # type: ignore[method-assign]
    refused = refusal(lambda: holder_for(site, clock).fetch_request(invocation()))
    assert refused.reason == "request_unavailable" and "302" in refused.detail
    assert [url for _method, url, _data in site.calls] == [REQUEST_URI]


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
@pytest.mark.parametrize("what", ["request_object", "jwks", "response"])
def test_demo_wallet_refuses_an_oversized_answer_reading_at_most_its_limit(
    site: VerifierSite, clock: FixedClock, what: str, declared: bool
) -> None:
    limit = {
        "request_object": MAX_REQUEST_BYTES,
        "jwks": MAX_JWKS_BYTES,
        "response": MAX_RESPONSE_BYTES,
    }[what]
    size = 64 * limit
    huge = Reply(
        200,
        b"e" * size,
        {
            "Content-Type": "application/oauth-authz-req+jwt"
            if what == "request_object"
            else "application/json",
            **({"Content-Length": str(size)} if declared else {}),
        },
    )
    holder = holder_for(site, clock)
    original = site.get
    if what == "response":
        site.answer = huge
        proposal = holder.propose(holder.fetch_request(invocation()), [HANAKO])
        refused = refusal(lambda: holder.present(proposal))
    else:
        url = REQUEST_URI if what == "request_object" else JWKS_URI

        def oversized(requested: str, **kwargs: Any) -> Reply:
            return huge if requested == url else original(requested, **kwargs)

        site.get = oversized  # type: ignore[method-assign]
        refused = refusal(lambda: holder.fetch_request(invocation()))
    assert refused.reason == "answer_too_large"
    assert huge.closed
    assert huge.read == 0 if declared else limit < huge.read <= limit + 8192


class _Origin(BaseHTTPRequestHandler):
    """The verifier's origin over real HTTP: a request_uri that redirects to another origin
    (which counts its visitors), and one that streams 64 MiB without a Content-Length."""

    sent: list[int]
    finished: threading.Event
    elsewhere: str

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"{self.elsewhere}/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/steal":
            self.sent.append(-1)
            self.send_response(200)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/oauth-authz-req+jwt")
        self.send_header("Connection", "close")
        self.end_headers()
        total = 0
        try:
            for _ in range(1024):
                self.wfile.write(b"e" * 65536)
                total += 65536
        except OSError:
            pass
        finally:
            self.sent.append(total)
            self.finished.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def test_demo_wallet_over_real_http_neither_follows_redirects_nor_reads_a_huge_body(
    clock: FixedClock,
) -> None:
    sent: list[int] = []
    finished = threading.Event()
    handler = type("Handler", (_Origin,), {"sent": sent, "finished": finished})
    other, other_origin = _serve(handler)
    origin_server, origin = _serve(handler)
    handler.elsewhere = other_origin
    http = requests.Session()
    http.trust_env = False
    verifier = TrustedVerifier(
        client_id=origin, display_name={"en": "Local"}, origin=origin, jwks_uri=f"{origin}/jwks"
    )
    holder = Holder(
        http=http,
        clock=clock,
        randomness=SequenceRandomness("w"),
        verifiers=[verifier],
        allow_http_loopback=True,
        timeout=5,
    )

    def invoke(path: str) -> HolderError:
        url = wallet_request_url(
            "openid4vp://",
            client_id=origin,
            request_uri=f"{origin}{path}",
            allow_http_loopback=True,
        )
        return refusal(lambda: holder.fetch_request(url))

    try:
        redirected = invoke("/redirect")
        assert redirected.reason == "request_unavailable" and "302" in redirected.detail
        assert -1 not in sent  # the other origin was never visited

        assert invoke("/huge").reason == "answer_too_large"
        assert finished.wait(10)
        # Stopped near the limit: what was sent is bounded by the socket buffers, not 64 MiB.
        assert sent[-1] < 16 * 1024 * 1024, sent
    finally:
        http.close()
        for httpd in (other, origin_server):
            httpd.shutdown()
            httpd.server_close()


# -- DCQL matching ----------------------------------------------------------------------------


def test_a_claim_the_credential_lacks_matches_nothing() -> None:
    eu_address = query(["sub"], ["address"], vct=EU_VCT)
    refused = refusal(lambda: match_query(eu_address, [HANAKO, ERIKA]))
    assert refused.reason == "no_matching_credential"
    assert "address" in refused.detail
    # Hanako has an address, but hers is another type of credential.
    refused = refusal(lambda: match_query(query(["nationality"]), [HANAKO]))
    assert refused.reason == "no_matching_credential"
    refused = refusal(lambda: match_query(query(["sub"], vct="urn:other:1"), [HANAKO, ERIKA]))
    assert refused.reason == "no_matching_credential"


def test_nested_paths_values_and_claim_sets() -> None:
    (match,) = match_query(query(["address", "locality"]), [HANAKO])
    assert match.claim_names == ("address",)  # the whole address is one Disclosure

    birthdate = person("erika").birthdate
    asked = query(["birthdate"], vct=EU_VCT)
    asked["credentials"][0]["claims"][0]["values"] = [birthdate]
    (match,) = match_query(asked, [ERIKA])
    assert match.claim_names == ("birthdate",)
    asked["credentials"][0]["claims"][0]["values"] = ["1900-01-01"]
    assert refusal(lambda: match_query(asked, [ERIKA])).reason == "no_matching_credential"

    preferring_address: dict[str, Any] = {
        "credentials": [
            {
                "id": CREDENTIAL_ID,
                "format": "dc+sd-jwt",
                "meta": {"vct_values": [EU_VCT, JP_VCT]},
                "claims": [
                    {"id": "a", "path": ["address"]},
                    {"id": "b", "path": ["birthdate"]},
                    {"id": "n", "path": ["family_name"]},
                ],
                "claim_sets": [["a", "n"], ["b", "n"]],
            }
        ]
    }
    (match,) = match_query(preferring_address, [ERIKA])
    assert match.claim_names == ("family_name", "birthdate")
    (match,) = match_query(preferring_address, [HANAKO])
    assert match.claim_names == ("family_name", "address")


def test_without_claims_nothing_selective_is_disclosed_and_sets_are_unsupported() -> None:
    bare = dcql.build_query(CREDENTIAL_ID, [JP_VCT], [])
    (match,) = match_query(bare, [HANAKO])
    assert match.disclosures == ()
    with_sets = {**query(["sub"]), "credential_sets": [{"options": [[CREDENTIAL_ID]]}]}
    assert refusal(lambda: match_query(with_sets, [HANAKO])).reason == "unsupported_dcql_query"
    assert refusal(lambda: match_query({"credentials": "x"}, [HANAKO])).reason == (
        "invalid_dcql_query"
    )


def test_a_credential_bound_to_another_key_is_not_held() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = issue_for_person(
        person("taro"), JP, key, clock=FixedClock(AT), randomness=SequenceRandomness()
    )
    with pytest.raises(ValueError, match="not bound to this wallet's key"):
        HeldCredential.parse(
            issued.credential,
            ec.generate_private_key(ec.SECP256R1()),
            credential_id="taro",
            anchor_id="jp-national-id",
            issuer_name={"en": "x"},
        )


# -- transaction data: the payment the wallet shows and signs (docs/DYNAMIC-LINKING.md) --------


def _encoded(element: Mapping[str, Any]) -> str:
    text = json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode("ascii")


def _payment(**changes: Any) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "urn:trustanchor:transaction:value_transfer:1",
        "credential_ids": [CREDENTIAL_ID],
        "transaction_data_hashes_alg": ["sha-256"],
        "amount": "5000",
        "currency": "JPY",
        "creditor": {
            "label": "Kissa Sakura",
            "intermediary": "Test Bank",
            "account_reference": "…7U-w",
        },
    }
    element.update(changes)
    return {k: v for k, v in element.items() if v is not None}


def test_a_payment_is_read_and_its_hash_signed_in_the_key_binding_jwt(
    site: VerifierSite, clock: FixedClock
) -> None:
    item = _encoded(_payment())
    site.token = lambda _nonce: site.request_object(transaction_data=[item])
    holder = holder_for(site, clock)
    request = holder.fetch_request(invocation())
    (read,) = request.transaction_data
    assert read.encoded == item and read.element["creditor"]["label"] == "Kissa Sakura"
    holder.present(holder.propose(request, [HANAKO]))
    (form,) = site.responses
    (shown,) = json.loads(form["vp_token"][0])[CREDENTIAL_ID]
    kb_claims = decode_segment(shown.split("~")[-1].split(".")[1])
    expected = base64.urlsafe_b64encode(hashlib.sha256(item.encode("ascii")).digest())
    assert kb_claims["transaction_data_hashes"] == [expected.rstrip(b"=").decode("ascii")]
    assert kb_claims["transaction_data_hashes_alg"] == "sha-256"
    (identity,) = site.identities  # the service's verifier and its strict check accept it
    transaction_data.verify(
        [item], identity.transaction_data_hashes, identity.transaction_data_hashes_alg
    )


@pytest.mark.parametrize(
    "value",
    [
        [_encoded(_payment(type="urn:example:unknown:1"))],
        [_encoded(_payment(extra="member"))],
        [_encoded(_payment(creditor=None))],
        [_encoded(_payment(credential_ids=["another_credential"]))],
        [_encoded(_payment(transaction_data_hashes_alg=["sha-512"]))],
        [_encoded(_payment(creditor={"label": "x"}))],
        ["not base64url JSON!"],
        [],
        "a string",
    ],
)
def test_transaction_data_the_wallet_cannot_read_is_answered_invalid_transaction_data(
    site: VerifierSite, clock: FixedClock, value: Any
) -> None:
    """OpenID4VP 1.0 section 8.5: the wallet answers the error, then tells the person."""
    site.token = lambda _nonce: site.request_object(transaction_data=value)
    refused = refusal(lambda: holder_for(site, clock).fetch_request(invocation()))
    assert refused.reason == "invalid_transaction_data"
    (form,) = site.responses
    parsed = parse_direct_post(form, credential_id=CREDENTIAL_ID, max_bytes=65536)
    assert (parsed.error, parsed.state) == ("invalid_transaction_data", STATE)


# -- a standing authorization of funding: its bounds shown in words and signed -----------------


def _standing(**changes: Any) -> dict[str, Any]:
    """The element as the service builds it (openid4vp/transaction_data.py)."""
    values: dict[str, Any] = {
        "directions": ["deposit_to_wallet"],
        "max_amount": "30000",
        "daily_amount": "100000",
        "currency": "JPY",
        "valid_days": 30,
        "deposit_account_reference": "…dep1",
        "wallet_account_reference": "…wal1",
        "credential_ids": [CREDENTIAL_ID],
    }
    values.update(changes)
    return transaction_data.standing_funding_element(**values)


def test_a_standing_authorization_is_read_and_its_hash_signed(
    site: VerifierSite, clock: FixedClock
) -> None:
    item = transaction_data.encode(_standing())
    site.token = lambda _nonce: site.request_object(transaction_data=[item])
    holder = holder_for(site, clock)
    request = holder.fetch_request(invocation())
    (read,) = request.transaction_data
    assert read.encoded == item and read.type == transaction_data.STANDING_FUNDING
    assert read.element["max_amount"] == {"amount": "30000", "currency": "JPY"}
    holder.present(holder.propose(request, [HANAKO]))
    (form,) = site.responses
    (shown,) = json.loads(form["vp_token"][0])[CREDENTIAL_ID]
    kb_claims = decode_segment(shown.split("~")[-1].split(".")[1])
    expected = base64.urlsafe_b64encode(hashlib.sha256(item.encode("ascii")).digest())
    assert kb_claims["transaction_data_hashes"] == [expected.rstrip(b"=").decode("ascii")]
    (identity,) = site.identities
    transaction_data.verify(
        [item], identity.transaction_data_hashes, identity.transaction_data_hashes_alg
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"directions": ["sideways"]},
        {"directions": []},
        {"directions": ["deposit_to_wallet", "deposit_to_wallet"]},
        {"directions": "deposit_to_wallet"},
        {"max_amount": {"amount": "30000"}},
        {"daily_amount": "100000"},
        {"valid_days": True},
        {"valid_days": "30"},
        {"valid_days": 0},
        {"wallet_account_reference": {"masked": "…wal1"}},
        {"extra": "member"},
    ],
)
def test_a_standing_authorization_the_wallet_cannot_read_is_refused(
    site: VerifierSite, clock: FixedClock, changes: dict[str, Any]
) -> None:
    element = {**_standing(), **changes}
    site.token = lambda _nonce: site.request_object(transaction_data=[_encoded(element)])
    refused = refusal(lambda: holder_for(site, clock).fetch_request(invocation()))
    assert refused.reason == "invalid_transaction_data"
    (form,) = site.responses
    parsed = parse_direct_post(form, credential_id=CREDENTIAL_ID, max_bytes=65536)
    assert parsed.error == "invalid_transaction_data"


@pytest.mark.parametrize(
    ("changes", "lang", "title", "summary"),
    [
        (
            {},
            "en",
            "Automatic movements you approve once",
            "Automatic top-ups: at most JPY 30,000 each, JPY 100,000 a day, for 30 days",
        ),
        (
            {},
            "ja",
            "一度の承認で続く自動の資金移動",
            "自動入金：1回あたり最大30,000円、1日あたり最大100,000円、30日間",
        ),
        (
            {"directions": ["wallet_to_deposit"], "valid_days": 1},
            "en",
            "Automatic movements you approve once",
            "Automatic returns to your bank account: at most JPY 30,000 each, "
            "JPY 100,000 a day, for 1 day",
        ),
        (
            {"directions": ["deposit_to_wallet", "wallet_to_deposit"], "valid_days": 90},
            "en",
            "Automatic movements you approve once",
            "Automatic movements between your bank account and wallet: at most JPY 30,000 "
            "each, JPY 100,000 a day, for 90 days",
        ),
    ],
)
def test_the_confirm_page_says_a_standing_authorization_in_words(
    changes: dict[str, Any], lang: str, title: str, summary: str
) -> None:
    element = _standing(**changes)
    shown = wallet_pages._payment(TransactionItem(transaction_data.encode(element), element), lang)
    assert shown == {
        "kind": "standing",
        "which": shown["which"],
        "summary": summary,
        "deposit": "…dep1",
        "wallet": "…wal1",
    }
    assert Translator(lang, wallet_pages.CATALOGS)("wallet.payment.standing") == title


# -- a movement between the person's own accounts: not worded as a payment to someone ---------


def _funding(direction: str) -> TransactionItem:
    element = transaction_data.funding_element(
        direction=direction,
        amount="120000",
        currency="JPY",
        deposit_account_reference="…dep1",
        wallet_account_reference="…wal1",
        credential_ids=[CREDENTIAL_ID],
    )
    return TransactionItem(transaction_data.encode(element), element)


@pytest.mark.parametrize(
    ("direction", "lang", "moved_from", "moved_to"),
    [
        ("deposit_to_wallet", "en", "Your bank account …dep1", "Your wallet …wal1"),
        ("wallet_to_deposit", "en", "Your wallet …wal1", "Your bank account …dep1"),
        ("deposit_to_wallet", "ja", "ご本人の銀行口座（…dep1）", "ご本人のウォレット（…wal1）"),
    ],
)
def test_a_funding_movement_names_both_accounts_in_the_order_the_money_moves(
    direction: str, lang: str, moved_from: str, moved_to: str
) -> None:
    shown = wallet_pages._payment(_funding(direction), lang)
    assert (shown["kind"], shown["from"], shown["to"]) == ("funding", moved_from, moved_to)
    assert shown["amount"] == ("120,000円" if lang == "ja" else "JPY 120,000")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_heading_says_what_is_signed(lang: str) -> None:
    t = Translator(lang, wallet_pages.CATALOGS)
    funding = wallet_pages._payment(_funding("deposit_to_wallet"), lang)
    standing = wallet_pages._payment(
        TransactionItem(transaction_data.encode(_standing()), _standing()), lang
    )
    transfer = {"kind": "transfer"}

    def texts(*payments: dict[str, Any]) -> tuple[str, str]:
        keys = wallet_pages.payment_texts(payments)
        return t(keys["heading"]), t(keys["signing"])

    own = texts(funding)
    assert own == texts(funding, standing)
    assert (
        own[0]
        == {
            "en": "Approve this movement between your own accounts?",
            "ja": "ご本人の口座の間の資金移動を承認しますか？",
        }[lang]
    )
    # Nothing about a payee or a payment: the money stays with the person.
    assert not any(word in text for text in own for word in ("payee", "payment", "支払"))
    assert texts(standing)[0] == t("wallet.payment.heading_standing")
    assert texts(transfer) == texts(transfer, funding)
    assert texts(transfer) == (t("wallet.payment.heading"), t("wallet.payment.signing"))


def test_the_wallet_catalogs_have_the_same_texts() -> None:
    def keys(language: str) -> set[str]:
        table = tomllib.loads((wallet_pages.CATALOGS / language / "wallet.toml").read_text("utf-8"))
        return set(_flat(table))

    assert keys("en") == keys("ja")


def _flat(table: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{name}.")
        else:
            yield prefix + name
