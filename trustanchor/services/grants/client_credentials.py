"""``client_credentials``: a confidential client's own token (never a person's, never openid,
never authorization_details)."""

from __future__ import annotations

from typing import Any

from trustanchor.domain.clients import Client
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import InvalidRequest, InvalidScope, UnauthorizedClient
from trustanchor.oauth.params import FormData, single
from trustanchor.oauth.scopes import OPENID, check_allowed, parse_scope
from trustanchor.services.container import Services
from trustanchor.services.grants.issuing import TokenResponse, access_token


def grant(
    services: Services, client: Client, form: FormData, proof: DpopProof | None, at: int
) -> TokenResponse:
    if client.is_public:
        raise UnauthorizedClient(
            "public clients cannot use client_credentials", reason="public_client_credentials"
        )
    scope = parse_scope(single(form, "scope"))
    if OPENID in scope:
        raise InvalidScope(
            "openid is not available with client_credentials", reason="scope_not_grantable"
        )
    check_allowed(scope, client.scopes)
    if "authorization_details" in form:
        raise InvalidRequest(
            "authorization_details is not available with client_credentials",
            reason="authorization_details_not_grantable",
        )
    with services.db.transaction() as conn:
        issued = access_token(
            services,
            conn,
            client,
            proof,
            at,
            lifetime=services.settings.tokens.access_token_lifetime,
            scope=scope,
        )
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": issued.token_type,
        "expires_in": issued.lifetime,
    }
    if scope:
        body["scope"] = " ".join(scope)
    return TokenResponse(body)
