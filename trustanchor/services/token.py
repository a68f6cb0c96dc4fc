"""The token endpoint: authorization_code, refresh_token (rotation, reuse revokes the family) and
client_credentials. Every one-time artefact is consumed by one conditional UPDATE inside the same
transaction that records what is issued; tokens leave only after that transaction commits.

A refused request is recorded as an audit ``refusal`` entry once its work has rolled back
(services/refusals.py); every raise site names its check with a stable ``reason`` code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trustanchor.digests import equal
from trustanchor.domain.clients import Client
from trustanchor.oauth import pkce
from trustanchor.oauth.authorization_details import (
    is_one_time,
    is_subset,
    parse_authorization_details,
)
from trustanchor.oauth.claims_release import release
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import (
    InvalidAuthorizationDetails,
    InvalidDpopProof,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from trustanchor.oauth.params import FormData, single
from trustanchor.oauth.scopes import OPENID, check_allowed, parse_scope
from trustanchor.services import audit_trail, refusals, standing_movements
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.identity_claims import verification_element
from trustanchor.storage import grants_repo, identities_repo

SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")


@dataclass(frozen=True, slots=True)
class TokenResponse:
    body: dict[str, Any]


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
    client = services.client_auth.authenticate(form, authorization, at=at)
    attempt.client = client
    grant_type = single(form, "grant_type", required=True, max_len=64)
    if grant_type not in SUPPORTED_GRANTS:
        raise UnsupportedGrantType(f"grant_type {grant_type} is not supported")
    if grant_type not in client.grant_types:
        raise UnauthorizedClient(
            f"client is not registered for {grant_type}", reason="grant_type_not_registered"
        )
    proof = None
    if dpop_headers:
        proof = services.dpop.verify(
            dpop_headers, method="POST", url=services.endpoints.token, at=at
        )
    elif client.require_dpop:
        raise InvalidDpopProof("this client must present a DPoP proof", reason="dpop_required")
    if grant_type == "authorization_code":
        return _authorization_code(services, client, form, proof, at)
    if grant_type == "refresh_token":
        return _refresh(services, client, form, proof, at)
    return _client_credentials(services, client, form, proof, at)


def _authorization_code(
    services: Services, client: Client, form: FormData, proof: DpopProof | None, at: int
) -> TokenResponse:
    code = single(form, "code", required=True, max_len=256)
    redirect_uri = single(form, "redirect_uri", max_len=2048)
    verifier = single(form, "code_verifier", max_len=256)
    assert code is not None
    failure: InvalidGrant | None = None
    with services.db.transaction() as conn:
        try:
            consumed = grants_repo.consume_code(conn, code, client.client_id, now=at)
        except grants_repo.IssuedToAnotherClient:
            # RFC 6749 section 4.1.3: the code was not issued to this (authenticated) client.
            # Nothing is consumed or revoked: a stranger holding a leaked code must not be able
            # to revoke the owner's grant by presenting it.
            consumed = None
            failure = InvalidGrant(
                "the authorization code was issued to another client", reason="code_wrong_client"
            )
        except grants_repo.Reused as reused:
            grants_repo.revoke_grant(conn, reused.grant_id, now=at, reason="code_reuse")
            # Committed on purpose although the request is refused: the revocation and its
            # audit leaf stand together.
            audit_trail.record(
                conn, audit_trail.reuse_detected(at=at, what="code", grant_id=reused.grant_id)
            )
            consumed = None
            failure = InvalidGrant(
                "the authorization code was already used; tokens issued for it are revoked",
                reason="code_reused",
            )
        if consumed is not None:
            try:
                grant_id = _check_code(consumed, client, redirect_uri, verifier, proof, at)
                grant = grants_repo.get_grant(conn, grant_id)
                if grant is None or grant.revoked_at is not None:
                    raise InvalidGrant("the grant has been revoked", reason="grant_revoked")
            except InvalidGrant as exc:
                # Leave the block normally: the code stays consumed whatever went wrong.
                failure = exc
            else:
                details = GrantDetails.from_json(grant.details)
                return _issue(
                    services,
                    conn,
                    client,
                    grant.id,
                    grant.holder_id,
                    details,
                    proof,
                    at,
                    scope=details.scope,
                    authorization_details=details.authorization_details,
                    with_id_token=True,
                )
    raise failure or InvalidGrant("the authorization code is invalid", reason="code_unknown")


def _check_code(
    consumed: grants_repo.ConsumedCode,
    client: Client,
    redirect_uri: str | None,
    verifier: str | None,
    proof: DpopProof | None,
    at: int,
) -> str:
    if not equal(consumed.client_id, client.client_id):
        raise InvalidGrant(
            "the authorization code was issued to another client", reason="code_wrong_client"
        )
    if consumed.expires_at <= at:
        raise InvalidGrant("the authorization code has expired", reason="code_expired")
    binding = consumed.binding
    if redirect_uri != binding["redirect_uri"]:
        raise InvalidGrant(
            "redirect_uri does not match the authorization request",
            reason="redirect_uri_mismatch",
        )
    pkce.verify(verifier, binding.get("code_challenge"))
    bound = binding.get("dpop_jkt")
    if bound is not None and (proof is None or not equal(proof.jkt, bound)):
        raise InvalidGrant(
            "the DPoP key differs from the one bound at the PAR endpoint",
            reason="dpop_jkt_mismatch",
        )
    return consumed.grant_id


def _refresh(
    services: Services, client: Client, form: FormData, proof: DpopProof | None, at: int
) -> TokenResponse:
    token_value = single(form, "refresh_token", required=True, max_len=256)
    assert token_value is not None
    requested_scope = parse_scope(single(form, "scope"))
    requested_details_raw = single(form, "authorization_details", max_len=16384)
    reused = False
    with services.db.transaction() as conn:
        try:
            rotated = grants_repo.rotate_refresh_token(conn, token_value, client.client_id, now=at)
        except grants_repo.Reused as exc:
            ended = grants_repo.get_grant(conn, exc.grant_id)
            if ended is not None and ended.revoked_at is not None:
                # Revoking a grant consumes its refresh tokens: presenting one afterwards is a
                # client that has not learnt of the revocation yet (a link removed, a standing
                # authorization stopped), not a stolen token to sound the alarm for.
                raise InvalidGrant("the grant has been revoked", reason="grant_revoked") from None
            grants_repo.revoke_grant(conn, exc.grant_id, now=at, reason="refresh_token_reuse")
            audit_trail.record(
                conn,
                audit_trail.reuse_detected(at=at, what="refresh_token", grant_id=exc.grant_id),
            )
            rotated = None
            reused = True
        if not reused:
            if rotated is None:
                raise InvalidGrant(
                    "the refresh token is invalid or expired", reason="refresh_token_unknown"
                )
            if rotated.expires_at <= at:
                raise InvalidGrant(
                    "the refresh token is invalid or expired", reason="refresh_token_expired"
                )
            if rotated.bound_jkt is not None and (
                proof is None or not equal(proof.jkt, rotated.bound_jkt)
            ):
                raise InvalidGrant(
                    "the refresh token is bound to another DPoP key", reason="dpop_jkt_mismatch"
                )
            grant = grants_repo.get_grant(conn, rotated.grant_id)
            if grant is None or grant.revoked_at is not None or grant.expires_at <= at:
                raise InvalidGrant(
                    "the grant has been revoked or has expired",
                    reason=(
                        "grant_expired"
                        if grant is not None and grant.revoked_at is None
                        else "grant_revoked"
                    ),
                )
            details = GrantDetails.from_json(grant.details)
            scope = details.scope
            if details.is_standing:
                if rotated.bound_jkt is None:  # pragma: no cover - bound at issuance
                    raise InvalidGrant(
                        "a standing authorization's refresh token must be DPoP-bound",
                        reason="dpop_jkt_mismatch",
                    )
                minted = standing_movements.movement(
                    services,
                    conn,
                    client,
                    grant,
                    details.authorization_details,
                    details.anchor_set_id,
                    requested_details_raw,
                    at=at,
                )
                return _issue(
                    services,
                    conn,
                    client,
                    grant.id,
                    grant.holder_id,
                    details,
                    proof,
                    at,
                    scope=scope,
                    authorization_details=(minted.entry,),
                    with_id_token=False,
                    refresh_bound_jkt=rotated.bound_jkt,
                    minted=minted,
                )
            if requested_scope:
                if not set(requested_scope) <= set(details.scope):
                    raise InvalidScope("a refresh cannot add scope", reason="scope_widened")
                scope = requested_scope
            authorization_details = details.authorization_details
            if requested_details_raw is not None:
                requested = parse_authorization_details(
                    requested_details_raw,
                    allowed_types=client.authorization_details_types,
                    max_entries=services.settings.limits.max_authorization_details,
                    max_depth=services.settings.limits.max_json_depth,
                )
                if not is_subset(requested, details.authorization_details):
                    raise InvalidAuthorizationDetails(
                        "a refresh cannot add authorization_details",
                        reason="authorization_details_widened",
                    )
                authorization_details = requested
            return _issue(
                services,
                conn,
                client,
                grant.id,
                grant.holder_id,
                details,
                proof,
                at,
                scope=scope,
                authorization_details=authorization_details,
                with_id_token=False,
                refresh_bound_jkt=rotated.bound_jkt,
            )
    raise InvalidGrant(
        "the refresh token was already used; the token family is revoked",
        reason="refresh_token_reused",
    )


def _client_credentials(
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
    lifetime = services.settings.tokens.access_token_lifetime
    jti = services.randomness.token(16)
    claims: dict[str, Any] = {
        "sub": client.client_id,
        "client_id": client.client_id,
        "aud": _audience(services, client),
        "iat": at,
        "exp": at + lifetime,
        "jti": jti,
        "scope": " ".join(scope),
    }
    if proof is not None:
        claims["cnf"] = {"jkt": proof.jkt}
    with services.db.transaction() as conn:
        grants_repo.record_access_token(
            conn, jti, None, client.client_id, now=at, expires_at=at + lifetime
        )
        audit_trail.record(
            conn,
            audit_trail.token_issued(
                at=at,
                kind="access_token",
                jti=jti,
                client_id=client.client_id,
                sub=None,
                scope=scope,
                exp=at + lifetime,
            ),
        )
    body: dict[str, Any] = {
        "access_token": services.signer.access_token(claims),
        "token_type": "DPoP" if proof is not None else "Bearer",
        "expires_in": lifetime,
    }
    if scope:
        body["scope"] = " ".join(scope)
    return TokenResponse(body)


def _audience(services: Services, client: Client) -> str | list[str]:
    if not client.audiences:
        return services.default_audience
    return client.audiences[0] if len(client.audiences) == 1 else list(client.audiences)


def _issue(
    services: Services,
    conn: Connection,
    client: Client,
    grant_id: str,
    holder_id: str | None,
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
    """Record and sign tokens for a user grant (inside the caller's transaction). ``minted``:
    the movement a standing authorization's token request named, recorded with its token."""
    tokens = services.settings.tokens
    if details.is_standing and proof is None:
        # Its refresh token is bound to the client's DPoP key (docs/AUTHORIZATION-DETAILS.md).
        raise InvalidDpopProof(
            "a standing authorization needs a DPoP proof to bind its refresh token",
            reason="dpop_required",
        )
    jti = services.randomness.token(16)
    auth = details.authentication
    # A movement token (a transfer, a funding) authorises one movement, now: short-lived and
    # never refreshed.
    one_time = details.is_one_time or is_one_time(authorization_details)
    lifetime = tokens.transfer_token_lifetime if one_time else tokens.access_token_lifetime
    claims: dict[str, Any] = {
        "sub": details.subject,
        "client_id": client.client_id,
        "aud": _audience(services, client),
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
    if details.anchor_set_id is not None:
        claims["anchor_set"] = details.anchor_set_id  # the set the policy decision relied on
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
            sub=details.subject,
            scope=scope,
            authorization_details=authorization_details,
            authentication=auth,
            anchor_set_id=details.anchor_set_id,
            exp=at + lifetime,
        ),
    )
    body: dict[str, Any] = {
        "access_token": services.signer.access_token(claims),
        "token_type": "DPoP" if proof is not None else "Bearer",
        "expires_in": lifetime,
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
        id_claims = _id_token_claims(services, conn, client, details, auth_holder=holder_id, at=at)
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
    services: Services,
    conn: Connection,
    client: Client,
    details: GrantDetails,
    *,
    auth_holder: str | None,
    at: int,
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
    del auth_holder
    return claims
