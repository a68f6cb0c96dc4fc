"""The demo wallet's core (trustanchor.demo.holder) against a verifier made of the service's own
OpenID4VP parts: Request Objects built by ``build_request_object``, the response parsed by
``parse_direct_post`` and the presentation checked by the sd_jwt_vc anchor verifier. Only the
transport is in memory (``VerifierSite`` answers the holder's HTTP calls); the whole exchange
over real HTTP against the running service is tests/flows/test_demo_wallet.py.

Refusals are checked one by one: the wallet must not answer a request it cannot trust.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from support.credentials import decode_segment

from trustanchor.anchors.base import Expectation
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.clock import FixedClock
from trustanchor.config.settings import LimitSettings
from trustanchor.demo.holder import (
    HeldCredential,
    Holder,
    HolderError,
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
from trustanchor.openid4vp import dcql
from trustanchor.openid4vp.links import wallet_request_url
from trustanchor.openid4vp.request_object import VerifierIdentity, build_request_object
from trustanchor.openid4vp.response import parse_direct_post
from trustanchor.randomness import SequenceRandomness

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
    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


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
        self, url: str, *, headers: Mapping[str, str], timeout: float, allow_redirects: bool
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


def holder_for(site: VerifierSite, clock: FixedClock) -> Holder:
    registered = TrustedVerifier(
        client_id=VERIFIER,
        display_name={"en": "Test verifier", "ja": "テスト検証者"},
        origin=VERIFIER,
        jwks_uri=JWKS_URI,
    )
    return Holder(
        http=site, clock=clock, randomness=SequenceRandomness("w"), verifiers=[registered]
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
