"""Token revocation (RFC 7009). Revoking a refresh token revokes its whole grant (every token
issued under it); revoking an access token revokes that token. Unknown tokens, or tokens of
another client, are answered the same way (200) and nothing changes. What is actually revoked
gets an audit leaf (``token_revoked``, by jti or grant digest) in the same transaction; an
already revoked token changes nothing and records nothing."""

from __future__ import annotations

from trustanchor.oauth.errors import InvalidToken, UnsupportedTokenType
from trustanchor.oauth.params import FormData, single
from trustanchor.services import audit_trail
from trustanchor.services.container import Services
from trustanchor.storage import grants_repo

HINTS = (None, "access_token", "refresh_token")
REASON = "revoked_by_client"


def revoke(services: Services, form: FormData, *, authorization: str | None) -> None:
    at = services.clock.now()
    client = services.client_auth.authenticate(form, authorization, at=at)
    token = single(form, "token", required=True, max_len=16384)
    hint = single(form, "token_type_hint", max_len=32)
    assert token is not None
    if hint not in HINTS:
        raise UnsupportedTokenType("unsupported token_type_hint")
    with services.db.transaction() as conn:
        found = grants_repo.find_refresh_token(conn, token)
        if found is not None:
            grant_id, owner = found
            if owner == client.client_id and grants_repo.revoke_grant(
                conn, grant_id, now=at, reason=REASON
            ):
                audit_trail.record(
                    conn, audit_trail.grant_revoked(at=at, grant_id=grant_id, reason=REASON)
                )
            return
    try:
        claims = services.access_tokens.verify(token, at=at)
    except InvalidToken:
        return
    if claims.client_id != client.client_id:
        return
    with services.db.transaction() as conn:
        if grants_repo.revoke_access_token(conn, claims.jti, client.client_id, now=at):
            audit_trail.record(
                conn, audit_trail.token_revoked(at=at, jti=claims.jti, reason=REASON)
            )
