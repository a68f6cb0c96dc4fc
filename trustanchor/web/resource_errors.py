"""OAuth errors of our own protected JSON APIs (``/audit/…``, ``/accounts``, ``/links``), as
RFC 6750 §3 / RFC 9449 §7.1 answers: JSON body, 401 with ``WWW-Authenticate`` for a missing or
bad token (no error code when no credentials were sent at all), 403 with ``insufficient_scope``
and the scope needed, ``DPoP-Nonce`` when a nonce is required."""

from __future__ import annotations

from flask import Response, jsonify, request

from trustanchor.oauth.errors import (
    InsufficientScope,
    InvalidDpopProof,
    InvalidToken,
    OAuthError,
    UseDpopNonce,
)


def oauth_error_response(exc: OAuthError, *, scope: str) -> Response:
    response = jsonify(exc.body())
    status = exc.status
    dpop = request.headers.get("Authorization", "").lower().startswith("dpop")
    scheme = "DPoP" if dpop else "Bearer"
    if isinstance(exc, UseDpopNonce):
        status = 401
        response.headers["DPoP-Nonce"] = exc.nonce
        response.headers["WWW-Authenticate"] = 'DPoP error="use_dpop_nonce"'
    elif isinstance(exc, InvalidToken | InvalidDpopProof):
        status = 401
        if not request.headers.get("Authorization"):  # RFC 6750 §3.1: no error code then
            response.headers["WWW-Authenticate"] = f'Bearer scope="{scope}", DPoP scope="{scope}"'
        else:
            response.headers["WWW-Authenticate"] = f'{scheme} error="{exc.error}"'
    elif isinstance(exc, InsufficientScope):
        response.headers["WWW-Authenticate"] = (
            f'{scheme} error="insufficient_scope", scope="{scope}"'
        )
    response.status_code = status
    return response
