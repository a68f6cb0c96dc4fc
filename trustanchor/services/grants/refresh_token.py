"""``refresh_token``: rotation (the presented token is consumed by one conditional UPDATE; a
rotated one presented again revokes the whole family, unless the grant had already been
revoked), narrowing of scope and authorization_details, and a standing authorization's
movements (services/standing_movements.py): one concrete funding entry per request."""

from __future__ import annotations

from trustanchor.digests import equal
from trustanchor.domain.clients import Client
from trustanchor.oauth.authorization_details import is_subset, parse_authorization_details
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import InvalidAuthorizationDetails, InvalidGrant, InvalidScope
from trustanchor.oauth.params import FormData, single
from trustanchor.oauth.scopes import parse_scope
from trustanchor.services import audit_trail, standing_movements
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.grants.issuing import TokenResponse, person_tokens
from trustanchor.storage import grants_repo


def grant(
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
                return person_tokens(
                    services,
                    conn,
                    client,
                    grant.id,
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
            return person_tokens(
                services,
                conn,
                client,
                grant.id,
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
