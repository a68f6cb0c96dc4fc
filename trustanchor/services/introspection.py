"""Token introspection (RFC 7662) for resource servers. Only clients registered for introspection
may call it; anything not a live access token of ours is simply ``{"active": false}``."""

from __future__ import annotations

from typing import Any

from trustanchor.oauth.errors import InvalidToken, UnauthorizedClient
from trustanchor.oauth.params import FormData, single
from trustanchor.services.container import Services
from trustanchor.storage import grants_repo

_PASSED_THROUGH = ("authorization_details", "anchor_set", "acr", "auth_time", "cnf")


def introspect(services: Services, form: FormData, *, authorization: str | None) -> dict[str, Any]:
    at = services.clock.now()
    client = services.client_auth.authenticate(form, authorization, at=at, allow_public=False)
    if not client.can_introspect:
        raise UnauthorizedClient("this client may not introspect tokens")
    token = single(form, "token", required=True, max_len=16384)
    assert token is not None
    try:
        claims = services.access_tokens.verify(token, at=at)
    except InvalidToken:
        return {"active": False}
    with services.db.reader() as conn:
        if not grants_repo.access_token_active(conn, claims.jti, now=at):
            return {"active": False}
    body: dict[str, Any] = {
        "active": True,
        "iss": services.settings.issuer,
        "sub": claims.sub,
        "client_id": claims.client_id,
        "aud": claims.aud,
        "scope": claims.scope,
        "iat": claims.iat,
        "exp": claims.exp,
        "jti": claims.jti,
        "token_type": "DPoP" if claims.jkt else "Bearer",
    }
    for name in _PASSED_THROUGH:
        if name in claims.raw:
            body[name] = claims.raw[name]
    return body
