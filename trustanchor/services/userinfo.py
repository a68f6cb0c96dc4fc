"""The UserInfo endpoint (OIDC Core §5.3): claims for the holder behind a valid access token."""

from __future__ import annotations

from typing import Any

from trustanchor.oauth.claims_release import release
from trustanchor.oauth.errors import InsufficientScope, InvalidToken
from trustanchor.oauth.scopes import OPENID
from trustanchor.services import bearer
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.identity_claims import verification_element
from trustanchor.storage import grants_repo, identities_repo


def userinfo(
    services: Services,
    *,
    authorization: list[str],
    dpop_headers: list[str],
    method: str,
    token_in_request: bool,
) -> dict[str, Any]:
    _, claims = bearer.authenticate(
        services,
        authorization=authorization,
        dpop_headers=dpop_headers,
        method=method,
        url=services.endpoints.userinfo,
        token_in_request=token_in_request,
        audiences=(services.default_audience,),
    )
    if OPENID not in claims.scope.split():
        raise InsufficientScope("the openid scope is required")
    with services.db.reader() as conn:
        grant_id = grants_repo.grant_of_access_token(conn, claims.jti)
        grant = grants_repo.get_grant(conn, grant_id) if grant_id else None
        if grant is None:
            raise InvalidToken("the access token is not valid")
        details = GrantDetails.from_json(grant.details)
        auth = details.authentication
        identity = identities_repo.get(conn, auth.identity_id) if auth else None
    result: dict[str, Any] = {"sub": details.subject}
    if identity is not None and auth is not None:
        result.update(
            release(
                target="userinfo",
                scope=tuple(claims.scope.split()),
                claims_request=details.claims,
                available=identity.claims,
                verification=verification_element(identity, auth),
            )
        )
    return result
