"""The token endpoint: authenticate the client, check the grant type and the DPoP proof once,
then hand over to the grant's own module (``services/grants/``: authorization_code,
refresh_token with rotation and a standing authorization's movements, client_credentials),
whose tokens are minted in one place (``services/grants/issuing.py``). Every one-time artefact
is consumed by one conditional UPDATE inside the same transaction that records what is issued;
tokens leave only after that transaction commits.

A refused request is recorded as an audit ``refusal`` entry once its work has rolled back
(services/refusals.py); every raise site names its check with a stable ``reason`` code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from trustanchor.domain.clients import Client
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import (
    InvalidDpopProof,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from trustanchor.oauth.params import FormData, single
from trustanchor.services import refusals
from trustanchor.services.container import Services
from trustanchor.services.grants import authorization_code, client_credentials, refresh_token
from trustanchor.services.grants.issuing import TokenResponse

__all__ = ["GRANTS", "SUPPORTED_GRANTS", "TokenResponse", "token"]

Grant = Callable[[Services, Client, FormData, DpopProof | None, int], TokenResponse]

GRANTS: Mapping[str, Grant] = MappingProxyType(
    {
        "authorization_code": authorization_code.grant,
        "refresh_token": refresh_token.grant,
        "client_credentials": client_credentials.grant,
    }
)
SUPPORTED_GRANTS = tuple(GRANTS)


def token(
    services: Services, form: FormData, *, authorization: str | None, dpop_headers: list[str]
) -> TokenResponse:
    attempt = refusals.Attempt("token", at=services.clock.now())
    try:
        return _token(services, form, authorization, dpop_headers, attempt)
    except OAuthError as exc:
        grant_type = refusals.supported_value(form, "grant_type", SUPPORTED_GRANTS)
        refusals.record(services, attempt, exc, grant_type=grant_type)
        raise


def _token(
    services: Services,
    form: FormData,
    authorization: str | None,
    dpop_headers: list[str],
    attempt: refusals.Attempt,
) -> TokenResponse:
    at = attempt.at
    # The DPoP proof is checked before the client: a proof refused for its nonce
    # (use_dpop_nonce, RFC 9449 §8) must leave the client's assertion unspent, so that the client
    # can simply retry it. Its jti is recorded only once the client is authenticated, so that
    # nobody writes to the replay registry without credentials.
    proof = None
    if dpop_headers:
        proof = services.dpop.check(
            dpop_headers, method="POST", url=services.endpoints.token, at=at
        )
    client = services.client_auth.authenticate(form, authorization, at=at)
    attempt.client = client
    if proof is not None:
        services.dpop.spend(proof, at=at)
    grant_type = single(form, "grant_type", required=True, max_len=64)
    grant = GRANTS.get(grant_type or "")
    if grant is None:
        raise UnsupportedGrantType(f"grant_type {_quoted(grant_type)} is not supported")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(
            f"client is not registered for {grant_type}", reason="grant_type_not_registered"
        )
    if proof is None and client.require_dpop:
        raise InvalidDpopProof("this client must present a DPoP proof", reason="dpop_required")
    response = grant(services, client, form, proof, at)
    services.metrics.token_issued(grant_type)  # one of GRANTS: a bounded label
    return response


def _quoted(value: str | None) -> str:
    """The caller's value in an error_description only when it is of the characters RFC 6749
    §5.2 allows there (and no quote or backslash) and at most 64 of them (a grant type URN
    fits); otherwise it is not repeated."""
    if (
        value
        and len(value) <= 64
        and all(0x20 <= ord(ch) <= 0x7E and ch not in '"\\' for ch in value)
    ):
        return value
    return "(as sent)"
