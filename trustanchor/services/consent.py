"""Consent: the person approves or denies what the client asked for; the parked request resumes
with the finished authentication and becomes an authorization code (or ``access_denied``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trustanchor.domain.anchors import Anchor
from trustanchor.domain.clients import Client
from trustanchor.domain.identity import Authentication
from trustanchor.oauth import authorization_response
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.claims_release import requested_claim_names
from trustanchor.oauth.pairwise import pairwise_subject
from trustanchor.services import decisions
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.storage import grants_repo, interactions_repo, sessions_repo


class InteractionGone(Exception):
    """The interaction is unknown, expired, or already finished."""


@dataclass(frozen=True, slots=True)
class ConsentView:
    interaction_id: str
    client: Client
    request: AuthorizationRequest
    authentication: Authentication
    anchor: Anchor | None
    claim_names: tuple[str, ...]
    outcome: decisions.Outcome | None = None  # policy decisions on links and transfers


@dataclass(frozen=True, slots=True)
class Decision:
    redirect_url: str
    new_session: str | None


def view(services: Services, interaction_id: str) -> ConsentView:
    at = services.clock.now()
    with services.db.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=at)
    if row is None or row.state != "consent" or row.authentication is None:
        raise InteractionGone(interaction_id)
    client = services.clients.get(row.client_id)
    if client is None:
        raise InteractionGone(interaction_id)
    request = AuthorizationRequest.from_json(row.request)
    authentication = Authentication.from_json(row.authentication)
    outcome = None
    if decisions.needs_decision(request.authorization_details):
        with services.db.reader() as conn:
            outcome = decisions.decide(
                services, conn, request.authorization_details, authentication, at=at
            )
    return ConsentView(
        interaction_id=interaction_id,
        client=client,
        request=request,
        authentication=authentication,
        anchor=services.anchors.get(authentication.anchor_id),
        claim_names=requested_claim_names(request.scope, request.claims),
        outcome=outcome,
    )


def step_up(services: Services, interaction_id: str) -> None:
    """The person chose to log in again because the decision asked for a stronger login: the
    interaction goes back to login, limited to anchors of the named set at the named level."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        row = interactions_repo.get(conn, interaction_id, now=at)
        if row is None or row.state != "consent" or row.authentication is None:
            raise InteractionGone(interaction_id)
        request = AuthorizationRequest.from_json(row.request)
        authentication = Authentication.from_json(row.authentication)
        outcome = decisions.decide(
            services, conn, request.authorization_details, authentication, at=at
        )
        needed = outcome.step_up
        if needed is None:
            raise InteractionGone(interaction_id)  # nothing to step up to (any more)
        requirement = {
            "anchor_set_id": needed.anchor_set_id,
            "assurance": needed.assurance,
            "max_age": needed.max_age,
        }
        if not interactions_repo.require_step_up(conn, interaction_id, requirement, now=at):
            raise InteractionGone(interaction_id)


def decide(
    services: Services, interaction_id: str, *, approve: bool, session_id: str | None
) -> Decision:
    at = services.clock.now()
    settings = services.settings
    with services.db.transaction() as conn:
        current_row = interactions_repo.get(conn, interaction_id, now=at)
        outcome = None
        if current_row is not None and current_row.authentication is not None:
            pending = AuthorizationRequest.from_json(current_row.request)
            if decisions.needs_decision(pending.authorization_details):
                outcome = decisions.decide(
                    services,
                    conn,
                    pending.authorization_details,
                    Authentication.from_json(current_row.authentication),
                    at=at,
                )
        policy_denial = outcome.denial if outcome is not None else None
        if policy_denial is not None:
            approve = False  # the policy said no: nothing the person clicked changes that
        row = interactions_repo.finish(
            conn, interaction_id, "done" if approve else "denied", now=at
        )
        if row is None or row.authentication is None:
            raise InteractionGone(interaction_id)
        request = AuthorizationRequest.from_json(row.request)
        authentication = Authentication.from_json(row.authentication)
        client = services.clients.get(row.client_id)
        if client is None:
            raise InteractionGone(interaction_id)
        if outcome is not None and (approve or policy_denial is not None):
            decisions.record(conn, outcome, at=at)  # the decision that took effect, audited
        new_session = None
        current = sessions_repo.get(conn, session_id, now=at) if session_id else None
        if current is None or Authentication.from_json(current.authentication) != authentication:
            # A fresh login (perhaps of someone else, after prompt=login, or a step-up): the
            # browser's session must carry it, never the earlier person or auth_time.
            if session_id and current is not None:
                sessions_repo.end(conn, session_id, now=at)
            new_session = services.randomness.token(32)
            sessions_repo.create(
                conn,
                new_session,
                sid=services.randomness.token(16),
                holder_id=authentication.holder_id,
                authentication=authentication.to_json(),
                now=at,
                expires_at=at + settings.interaction.session_lifetime,
            )
        if not approve:
            return Decision(
                authorization_response.error(
                    request.redirect_uri,
                    error="access_denied",
                    description=f"denied by policy: {policy_denial.decision.reason}"
                    if policy_denial is not None
                    else "the person declined the request",
                    state=request.state,
                    issuer=settings.issuer,
                ),
                new_session,
            )
        grant_id = services.randomness.token(16)
        details = GrantDetails(
            scope=request.scope,
            claims=request.claims,
            authorization_details=request.authorization_details,
            authentication=authentication,
            subject=pairwise_subject(
                services.secrets.pairwise, client.sector_identifier, authentication.holder_id
            ),
            nonce=request.nonce,
            anchor_set_id=outcome.anchor_set_id if outcome is not None else None,
        )
        grants_repo.create_grant(
            conn,
            grant_id,
            client.client_id,
            authentication.holder_id,
            details.to_json(),
            now=at,
            expires_at=at + settings.tokens.refresh_token_lifetime,
        )
        if outcome is not None:
            decisions.carry_out(conn, outcome, authentication, grant_id=grant_id, at=at)
        code = services.randomness.token(32)
        binding: dict[str, Any] = {
            "redirect_uri": request.redirect_uri,
            "code_challenge": request.code_challenge,
            "dpop_jkt": request.dpop_jkt,
        }
        grants_repo.store_code(
            conn,
            code,
            grant_id,
            client.client_id,
            binding,
            now=at,
            expires_at=at + settings.tokens.authorization_code_lifetime,
        )
    return Decision(
        authorization_response.success(
            request.redirect_uri, code=code, state=request.state, issuer=settings.issuer
        ),
        new_session,
    )


def cancel(services: Services, interaction_id: str) -> str:
    """The person gave up before logging in: access_denied to the client."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        row = interactions_repo.abandon(conn, interaction_id, now=at)
    if row is None:
        raise InteractionGone(interaction_id)
    request = AuthorizationRequest.from_json(row.request)
    return authorization_response.error(
        request.redirect_uri,
        error="access_denied",
        description="the person cancelled the login",
        state=request.state,
        issuer=services.settings.issuer,
    )
