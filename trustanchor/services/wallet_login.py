"""Login with a smartphone credential (OpenID for Verifiable Presentations 1.0, direct_post).

The interaction page lists the anchors able to satisfy the request; choosing one opens a wallet
transaction (fresh nonce and state), shown as a QR code and a same-device link that carry a signed
request object by reference. The wallet POSTs the SD-JWT VC presentation to our response_uri; it
is verified against *that anchor's* keys only, the identity is recorded, and the parked request
moves on to consent. The browser notices through a status poll (or a Continue link).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import acr_for
from trustanchor.domain.clients import Client
from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.claims_release import requested_claim_names
from trustanchor.openid4vp import dcql
from trustanchor.openid4vp.links import wallet_request_url
from trustanchor.openid4vp.request_object import VerifierIdentity, build_request_object
from trustanchor.openid4vp.response import WalletResponseError, parse_direct_post
from trustanchor.services.container import Services
from trustanchor.storage import identities_repo, interactions_repo, wallet_repo

log = logging.getLogger("trustanchor.login")

CREDENTIAL_ID = "identity_credential"
SUPPORTED_KINDS = ("sd_jwt_vc",)


class InteractionGone(Exception):
    pass


class WalletRequestRefused(Exception):
    """The wallet asked for a request object or posted a response we cannot accept."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(error)


@dataclass(frozen=True, slots=True)
class LoginView:
    state: str
    client: Client
    request: AuthorizationRequest
    anchors: list[Anchor]
    failure: str | None


@dataclass(frozen=True, slots=True)
class WalletStarted:
    transaction_id: str


@dataclass(frozen=True, slots=True)
class TransactionView:
    request: AuthorizationRequest
    anchor: Anchor
    wallet_url: str


def verifier_client_id(services: Services) -> str:
    return services.settings.interaction.verifier_client_id or services.settings.issuer


def _allow_http(services: Services) -> bool:
    return not services.settings.is_production


def eligible_anchors(services: Services, request: AuthorizationRequest) -> list[Anchor]:
    """Active anchors of a supported kind whose assurance meets the request's acr_values."""
    result = []
    for anchor in services.anchors.active():
        if anchor.kind not in SUPPORTED_KINDS:
            continue
        if request.acr_values and acr_for(anchor.assurance_level) not in request.acr_values:
            continue
        result.append(anchor)
    return result


def _load(
    services: Services, interaction_id: str
) -> tuple[interactions_repo.InteractionRow, Client]:
    at = services.clock.now()
    with services.db.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=at)
    if row is None:
        raise InteractionGone(interaction_id)
    client = services.clients.get(row.client_id)
    if client is None:
        raise InteractionGone(interaction_id)
    return row, client


def login_view(services: Services, interaction_id: str) -> LoginView:
    row, client = _load(services, interaction_id)
    request = AuthorizationRequest.from_json(row.request)
    failure = None
    if row.state == "login":
        with services.db.reader() as conn:
            latest = wallet_repo.latest_for_interaction(conn, interaction_id)
        if latest is not None and latest.outcome and latest.outcome.get("status") == "failed":
            failure = str(latest.outcome.get("reason", "generic"))
    return LoginView(row.state, client, request, eligible_anchors(services, request), failure)


def begin(services: Services, interaction_id: str, anchor_id: str) -> WalletStarted:
    row, _client = _load(services, interaction_id)
    if row.state != "login":
        raise InteractionGone(interaction_id)
    request = AuthorizationRequest.from_json(row.request)
    if anchor_id not in {a.id for a in eligible_anchors(services, request)}:
        raise InteractionGone(interaction_id)
    at = services.clock.now()
    transaction_id = services.randomness.token(24)
    with services.db.transaction() as conn:
        wallet_repo.create(
            conn,
            transaction_id,
            interaction_id,
            anchor_id,
            services.randomness.token(24),
            now=at,
            expires_at=at + services.settings.interaction.wallet_transaction_lifetime,
        )
    return WalletStarted(transaction_id)


def transaction_view(
    services: Services, interaction_id: str, transaction_id: str
) -> TransactionView:
    row, _client = _load(services, interaction_id)
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id)
    if tx is None or tx.interaction_id != interaction_id or row.state != "login":
        raise InteractionGone(interaction_id)
    anchor = services.anchors.get(tx.anchor_id)
    if anchor is None:
        raise InteractionGone(interaction_id)
    url = wallet_request_url(
        services.settings.interaction.wallet_link_base,
        client_id=verifier_client_id(services),
        request_uri=services.endpoints.wallet_request(transaction_id),
        allow_http_loopback=_allow_http(services),
    )
    return TransactionView(AuthorizationRequest.from_json(row.request), anchor, url)


def dcql_for(anchor: Anchor, request: AuthorizationRequest) -> dict[str, Any]:
    """Ask for the anchor's credential types and exactly the claims this request needs."""
    settings = anchor.settings
    mapping: dict[str, str] = dict(settings.get("claims", {}))
    paths: list[list[str]] = [[str(settings["subject_claim"])]]
    for name in requested_claim_names(request.scope, request.claims):
        source = mapping.get(name)
        if source is not None and [source] not in paths:
            paths.append([source])
    return dcql.build_query(CREDENTIAL_ID, list(settings["vct"]), paths)


def request_object(
    services: Services, transaction_id: str, *, wallet_nonce: str | None = None
) -> str:
    at = services.clock.now()
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx else None
    if tx is None or row is None or tx.consumed_at is not None or tx.expires_at <= at:
        raise WalletRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    anchor = services.anchors.get(tx.anchor_id)
    if anchor is None or not anchor.is_active:
        raise WalletRequestRefused(404, "invalid_request_uri", "the anchor is not available")
    request = AuthorizationRequest.from_json(row.request)
    verifier = VerifierIdentity(
        client_id=verifier_client_id(services), signing_key=services.keys.current()
    )
    with services.db.transaction() as conn:
        wallet_repo.mark_request_fetched(conn, transaction_id, now=at)
    return build_request_object(
        verifier,
        nonce=tx.nonce,
        state=transaction_id,
        response_uri=services.endpoints.wallet_response,
        dcql_query=dcql_for(anchor, request),
        at=at,
        lifetime=max(1, tx.expires_at - at),
        wallet_nonce=wallet_nonce,
        allow_http_loopback=_allow_http(services),
    )


def receive(services: Services, form: dict[str, list[str]]) -> dict[str, str]:
    """Process the wallet's direct_post; returns the JSON body for the wallet."""
    at = services.clock.now()
    try:
        response = parse_direct_post(
            form, credential_id=CREDENTIAL_ID, max_bytes=services.settings.limits.max_body_bytes
        )
    except WalletResponseError as exc:
        log.info("wallet response refused: %s", exc.reason)
        raise WalletRequestRefused(400, "invalid_request", exc.reason) from exc
    with services.db.transaction() as conn:
        tx = wallet_repo.consume(conn, response.state, now=at)
    if tx is None:
        raise WalletRequestRefused(400, "invalid_request", "unknown, expired or already used state")
    if response.is_error:
        _fail(services, tx.id, "wallet_error", response.error or "")
        return {}
    assert response.presentation is not None
    anchor = services.anchors.get(tx.anchor_id)
    try:
        if anchor is None:
            raise AnchorFailure("anchor_unknown", tx.anchor_id)
        verifier = services.verifiers.for_anchor(anchor)
        verified = verifier.verify(
            response.presentation,
            expected=Expectation(nonce=tx.nonce, audience=verifier_client_id(services)),
            at=at,
        )
    except AnchorFailure as failure:
        _fail(services, tx.id, failure.reason, failure.detail)
        raise WalletRequestRefused(400, "invalid_request", failure.reason) from failure
    assert anchor is not None
    with services.db.transaction() as conn:
        identity = identities_repo.record(
            conn,
            verified,
            new_holder_id=services.randomness.token(16),
            new_identity_id=services.randomness.token(16),
            now=at,
        )
        authentication = Authentication(
            holder_id=identity.holder_id,
            identity_id=identity.id,
            anchor_id=anchor.id,
            acr=acr_for(verified.assurance_level),
            amr=verified.amr,
            auth_time=at,
            trust_framework=verified.trust_framework,
            evidence=verified.evidence,
        )
        moved = interactions_repo.authenticated(
            conn, tx.interaction_id, authentication.to_json(), now=at
        )
        wallet_repo.set_outcome(
            conn,
            tx.id,
            {"status": "ok"} if moved else {"status": "failed", "reason": "interaction_gone"},
        )
    log.info("login through anchor %s: %s", anchor.id, "ok" if moved else "interaction gone")
    if not moved:
        raise WalletRequestRefused(400, "invalid_request", "the login has expired")
    return {"redirect_uri": services.endpoints.url(f"/wallet/done/{tx.id}")}


def _fail(services: Services, transaction_id: str, reason: str, detail: str) -> None:
    log.info("login failed at wallet transaction: reason=%s detail=%s", reason, detail)
    with services.db.transaction() as conn:
        wallet_repo.set_outcome(conn, transaction_id, {"status": "failed", "reason": reason})


def status(services: Services, interaction_id: str) -> dict[str, Any]:
    at = services.clock.now()
    with services.db.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=at)
        latest = wallet_repo.latest_for_interaction(conn, interaction_id) if row else None
    if row is None:
        return {"done": True, "state": "gone"}
    if row.state != "login":
        return {"done": True, "state": row.state}
    if latest is not None and latest.outcome and latest.outcome.get("status") == "failed":
        return {"done": True, "state": "failed"}
    return {"done": False, "state": "login"}


def interaction_of_transaction(services: Services, transaction_id: str) -> str | None:
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id)
    return tx.interaction_id if tx else None
