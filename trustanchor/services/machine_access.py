"""Machine clients calling our own APIs (the audit log, the accounts API) with an access token.

Such a token must carry the API's scope, come from client_credentials (no grant behind it,
``sub`` = ``client_id``: it never stands for a person, so a token from a login cannot open a
machine API even if a misconfigured client could obtain the scope there), and belong to a
confidential client that authenticates with private_key_jwt. Bearer, or DPoP when bound.
"""

from __future__ import annotations

from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import InsufficientScope
from trustanchor.oauth.jwt_tokens import AccessTokenClaims
from trustanchor.services import bearer
from trustanchor.services.container import Services
from trustanchor.storage import grants_repo


def authenticate_machine_client(
    services: Services,
    *,
    scope: str,
    authorization: list[str],
    dpop_headers: list[str],
    method: str,
    url: str,
) -> tuple[AccessTokenClaims, Client]:
    """The verified token claims and the client, or ``InvalidToken`` (401) /
    ``InsufficientScope`` (403)."""
    _, claims = bearer.authenticate(
        services,
        authorization=authorization,
        dpop_headers=dpop_headers,
        method=method,
        url=url,
        token_in_request=False,
        audiences=(services.default_audience,),
    )
    if scope not in claims.scope.split():
        raise InsufficientScope(f"the {scope} scope is required")
    with services.db.reader() as conn:
        grant_id = grants_repo.grant_of_access_token(conn, claims.jti)
    if grant_id is not None or claims.sub != claims.client_id:
        raise InsufficientScope(f"{scope} access needs a client_credentials token")
    client = services.clients.get(claims.client_id)
    if client is None or client.is_public or client.auth_method != "private_key_jwt":
        raise InsufficientScope(f"{scope} access is for confidential private_key_jwt clients")
    return claims, client
