"""Token minting, written once for every grant: the access token (its claims, its record, its
audit entry, its signature) and, for a person's grant, the rotating refresh token and the ID
token. Everything runs in the caller's transaction; tokens leave only after it commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.clients import Client
from trustanchor.oauth.authorization_details import is_one_time
from trustanchor.oauth.claims_release import release
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import InvalidDpopProof
from trustanchor.oauth.scopes import OPENID
from trustanchor.services import audit_trail, standing_movements
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.identity_claims import verification_element
from trustanchor.storage import grants_repo, identities_repo


@dataclass(frozen=True, slots=True)
class TokenResponse:
    body: dict[str, Any]


def audience(services: Services, client: Client) -> str | list[str]:
    if not client.audiences:
        return services.default_audience
    return client.audiences[0] if len(client.audiences) == 1 else list(client.audiences)


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    token_type: str  # DPoP or Bearer
    lifetime: int


def access_token(
    services: Services,
    conn: Connection,
    client: Client,
    proof: DpopProof | None,
    at: int,
    *,
    lifetime: int,
    scope: tuple[str, ...],
    grant_id: str | None = None,
    details: GrantDetails | None = None,
    authorization_details: tuple[dict[str, Any], ...] = (),
    minted: standing_movements.Minted | None = None,
) -> AccessToken:
    """Record, audit and sign one access token (RFC 9068). ``details``: the person's grant it
    is issued from (None: the client's own, ``sub`` is the client); ``minted``: the movement a
    standing authorization's token request named, recorded with its token."""
    jti = services.randomness.token(16)
    auth = details.authentication if details is not None else None
    sub = details.subject if details is not None else client.client_id
    claims: dict[str, Any] = {
        "sub": sub,
        "client_id": client.client_id,
        "aud": audience(services, client),
        "iat": at,
        "exp": at + lifetime,
        "jti": jti,
        "scope": " ".join(scope),
    }
    if auth is not None:
        claims["auth_time"] = auth.auth_time
        claims["acr"] = auth.acr
    if proof is not None:
        claims["cnf"] = {"jkt": proof.jkt}
    if authorization_details:
        claims["authorization_details"] = list(authorization_details)
    anchor_set_id = details.anchor_set_id if details is not None else None
    if anchor_set_id is not None:
        claims["anchor_set"] = anchor_set_id  # the set the policy decision relied on
    grants_repo.record_access_token(
        conn, jti, grant_id, client.client_id, now=at, expires_at=at + lifetime
    )
    if minted is not None:
        standing_movements.record(conn, minted, jti=jti, at=at)
    audit_trail.record(
        conn,
        audit_trail.token_issued(
            at=at,
            kind="access_token",
            jti=jti,
            client_id=client.client_id,
            sub=details.subject if details is not None else None,
            scope=scope,
            authorization_details=authorization_details,
            authentication=auth,
            anchor_set_id=anchor_set_id,
            exp=at + lifetime,
        ),
    )
    return AccessToken(
        services.signer.access_token(claims), "DPoP" if proof is not None else "Bearer", lifetime
    )


def person_tokens(
    services: Services,
    conn: Connection,
    client: Client,
    grant_id: str,
    details: GrantDetails,
    proof: DpopProof | None,
    at: int,
    *,
    scope: tuple[str, ...],
    authorization_details: tuple[dict[str, Any], ...],
    with_id_token: bool,
    refresh_bound_jkt: str | None = None,
    minted: standing_movements.Minted | None = None,
) -> TokenResponse:
    """The tokens of a person's grant (inside the caller's transaction): the access token, a
    new refresh token unless the grant is one-time, and the ID token when asked."""
    tokens = services.settings.tokens
    if details.is_standing and proof is None:
        # Its refresh token is bound to the client's DPoP key (docs/AUTHORIZATION-DETAILS.md).
        raise InvalidDpopProof(
            "a standing authorization needs a DPoP proof to bind its refresh token",
            reason="dpop_required",
        )
    auth = details.authentication
    # A movement token (a transfer, a funding) authorises one movement, now: short-lived and
    # never refreshed.
    one_time = details.is_one_time or is_one_time(authorization_details)
    issued = access_token(
        services,
        conn,
        client,
        proof,
        at,
        lifetime=tokens.transfer_token_lifetime if one_time else tokens.access_token_lifetime,
        scope=scope,
        grant_id=grant_id,
        details=details,
        authorization_details=authorization_details,
        minted=minted,
    )
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": issued.token_type,
        "expires_in": issued.lifetime,
        "scope": " ".join(scope),
    }
    if authorization_details:
        body["authorization_details"] = list(authorization_details)
    if "refresh_token" in client.grant_types and not details.is_one_time:
        refresh = services.randomness.token(32)
        # Public clients' refresh tokens stay bound to the DPoP key (RFC 9449 §5), and so do a
        # standing authorization's, whoever the client.
        bound = refresh_bound_jkt or (
            proof.jkt if proof is not None and (client.is_public or details.is_standing) else None
        )
        grants_repo.store_refresh_token(
            conn,
            refresh,
            grant_id,
            client.client_id,
            bound_jkt=bound,
            now=at,
            expires_at=at + tokens.refresh_token_lifetime,
        )
        # The refresh token keeps the whole grant (a later refresh may ask for all of it).
        audit_trail.record(
            conn,
            audit_trail.refresh_token_issued(
                at=at,
                refresh_token=refresh,
                client_id=client.client_id,
                sub=details.subject,
                scope=details.scope,
                authorization_details=details.authorization_details,
                authentication=auth,
                anchor_set_id=details.anchor_set_id,
                exp=at + tokens.refresh_token_lifetime,
            ),
        )
        body["refresh_token"] = refresh
    if with_id_token and OPENID in scope and auth is not None:
        id_claims = _id_token_claims(services, conn, client, details, at=at)
        audit_trail.record(
            conn,
            audit_trail.token_issued(
                at=at,
                kind="id_token",
                jti=id_claims["jti"],
                client_id=client.client_id,
                sub=details.subject,
                scope=scope,
                authentication=auth,
                exp=id_claims["exp"],
            ),
        )
        body["id_token"] = services.signer.id_token(id_claims)
    return TokenResponse(body)


def _id_token_claims(
    services: Services, conn: Connection, client: Client, details: GrantDetails, *, at: int
) -> dict[str, Any]:
    auth = details.authentication
    assert auth is not None
    claims: dict[str, Any] = {
        "sub": details.subject,
        "aud": client.client_id,
        "iat": at,
        "exp": at + services.settings.tokens.id_token_lifetime,
        "auth_time": auth.auth_time,
        "acr": auth.acr,
        "amr": list(auth.amr),
        # Its own jti, so that auditors can find this ID token in the log.
        "jti": services.randomness.token(16),
    }
    if details.nonce is not None:
        claims["nonce"] = details.nonce
    if details.sid is not None:
        # The browser's SSO session at consent, for RP-Initiated Logout's id_token_hint.
        claims["sid"] = details.sid
    if details.claims.id_token:
        identity = identities_repo.get(conn, auth.identity_id)
        if identity is not None:
            claims.update(
                release(
                    target="id_token",
                    scope=details.scope,
                    claims_request=details.claims,
                    available=identity.claims,
                    verification=verification_element(identity, auth),
                )
            )
    return claims
