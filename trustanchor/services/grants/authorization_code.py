"""``authorization_code`` (RFC 6749 §4.1.3 with PKCE and DPoP binding): the code is consumed by
one conditional UPDATE whatever follows; a reused code revokes what was issued for it."""

from __future__ import annotations

from trustanchor.digests import equal
from trustanchor.domain.clients import Client
from trustanchor.oauth import pkce
from trustanchor.oauth.dpop import DpopProof
from trustanchor.oauth.errors import InvalidGrant
from trustanchor.oauth.params import FormData, single
from trustanchor.services import audit_trail
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.grants.issuing import TokenResponse, person_tokens
from trustanchor.storage import grants_repo

UNKNOWN_CODE = "the authorization code is invalid"


def grant(
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
            # to revoke the owner's grant by presenting it, nor learn that the code exists: the
            # answer is the unknown code's (the reason, for the audit and metrics, is not).
            consumed = None
            failure = InvalidGrant(UNKNOWN_CODE, reason="code_wrong_client")
        except grants_repo.Reused as reused:
            grants_repo.revoke_grant(conn, reused.grant_id, now=at, reason="code_reuse")
            # Committed on purpose although the request is refused: the revocation and its
            # audit leaf stand together.
            audit_trail.record(
                conn, audit_trail.reuse_detected(at=at, what="code", grant_id=reused.grant_id)
            )
            consumed = None
            failure = InvalidGrant(
                # an earlier redemption may have failed (a wrong code_verifier): then no tokens
                # were issued, and the grant is revoked all the same
                "the authorization code was already used; its grant is revoked",
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
                return person_tokens(
                    services,
                    conn,
                    client,
                    grant.id,
                    details,
                    proof,
                    at,
                    scope=details.scope,
                    authorization_details=details.authorization_details,
                    with_id_token=True,
                )
    raise failure or InvalidGrant(UNKNOWN_CODE, reason="code_unknown")


def _check_code(
    consumed: grants_repo.ConsumedCode,
    client: Client,
    redirect_uri: str | None,
    verifier: str | None,
    proof: DpopProof | None,
    at: int,
) -> str:
    if not equal(consumed.client_id, client.client_id):
        raise InvalidGrant(UNKNOWN_CODE, reason="code_wrong_client")
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
