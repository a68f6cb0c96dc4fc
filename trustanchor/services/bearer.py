"""Presenting an access token to one of our own resources (userinfo): the Authorization header
scheme, DPoP binding (RFC 9449 §7), and revocation state. Tokens in query strings or form bodies
are refused (RFC 6750 §2.2/2.3 allow them; FAPI 2.0 does not)."""

from __future__ import annotations

from trustanchor.oauth.errors import InvalidRequest, InvalidToken
from trustanchor.oauth.jwt_tokens import AccessTokenClaims
from trustanchor.services.container import Services
from trustanchor.storage import grants_repo


def authenticate(
    services: Services,
    *,
    authorization: list[str],
    dpop_headers: list[str],
    method: str,
    url: str,
    token_in_request: bool,
    audiences: tuple[str, ...],
) -> tuple[str, AccessTokenClaims]:
    at = services.clock.now()
    if token_in_request:
        raise InvalidToken("access tokens are accepted only in the Authorization header")
    if not authorization:
        raise InvalidToken("an access token is required")
    if len(authorization) > 1:
        raise InvalidRequest("more than one Authorization header")
    scheme, _, token = authorization[0].partition(" ")
    scheme = scheme.lower()
    token = token.strip()
    if scheme not in ("dpop", "bearer") or not token:
        raise InvalidToken("unsupported authorization scheme")
    claims = services.access_tokens.verify(token, at=at, audiences=audiences)
    if claims.jkt is not None:
        if scheme != "dpop":
            raise InvalidToken("this access token is DPoP-bound and must be sent with DPoP")
        # verify() refuses a proof whose key is not the token's cnf.jkt (constant-time).
        services.dpop.verify(
            dpop_headers, method=method, url=url, at=at, access_token=token, expected_jkt=claims.jkt
        )
    elif scheme == "dpop":
        raise InvalidToken("this access token is not DPoP-bound")
    with services.db.reader() as conn:
        if not grants_repo.access_token_active(conn, claims.jti, now=at):
            raise InvalidToken("the access token has been revoked")
    return token, claims
