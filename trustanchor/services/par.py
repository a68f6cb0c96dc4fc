"""Pushed Authorization Requests (RFC 9126): authenticate the client, validate the whole
authorization request up front, store it, hand back a short-lived one-time request_uri.

A refused push is recorded as an audit ``refusal`` entry (services/refusals.py)."""

from __future__ import annotations

from dataclasses import dataclass

from trustanchor.oauth.authorization_request import parse_authorization_request
from trustanchor.oauth.errors import OAuthError
from trustanchor.oauth.params import FormData
from trustanchor.services import refusals
from trustanchor.services.container import Services
from trustanchor.storage import par_repo

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


@dataclass(frozen=True, slots=True)
class PushedRequest:
    request_uri: str
    expires_in: int


def push(
    services: Services, form: FormData, *, authorization: str | None, dpop_headers: list[str]
) -> PushedRequest:
    attempt = refusals.Attempt("par", at=services.clock.now())
    try:
        return _push(services, form, authorization, dpop_headers, attempt)
    except OAuthError as exc:
        refusals.record(services, attempt, exc)
        raise


def _push(
    services: Services,
    form: FormData,
    authorization: str | None,
    dpop_headers: list[str],
    attempt: refusals.Attempt,
) -> PushedRequest:
    at = attempt.at
    # The DPoP proof is checked before the client and recorded after it, as at the token
    # endpoint (services/token.py).
    proof = None
    if dpop_headers:
        proof = services.dpop.check(dpop_headers, method="POST", url=services.endpoints.par, at=at)
    client = services.client_auth.authenticate(form, authorization, at=at)
    attempt.client = client
    proof_jkt = None
    if proof is not None:
        services.dpop.spend(proof, at=at)
        proof_jkt = proof.jkt
    request = parse_authorization_request(
        form, client, limits=services.settings.limits, dpop_jkt_from_proof=proof_jkt
    )
    lifetime = services.settings.tokens.request_uri_lifetime
    request_uri = REQUEST_URI_PREFIX + services.randomness.token(32)
    with services.db.transaction() as conn:
        par_repo.store(
            conn, request_uri, client.client_id, request.to_json(), now=at, expires_at=at + lifetime
        )
    return PushedRequest(request_uri=request_uri, expires_in=lifetime)
