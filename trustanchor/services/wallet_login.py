"""Login with a smartphone credential (OpenID for Verifiable Presentations 1.0, direct_post).

The interaction page lists the anchors able to satisfy the request; choosing one opens a wallet
transaction (fresh nonce and state), shown as a QR code and a same-device link that carry a signed
request object by reference. The wallet POSTs the SD-JWT VC presentation to our response_uri; it
is verified against *that anchor's* keys only, the identity is recorded, and the parked request
moves on to consent. The browser notices through a status poll (or a Continue link).

Every response the wallet posts consumes its transaction, whatever the outcome (a malformed one
too, once its ``state`` names a transaction): a presentation can never be replayed, and a failure
is shown on the login page, which stays at ``login`` so the person can try again. The outcome of
every consumed transaction is audited (``login`` ok with the holder's pseudonym, or failed with a
reason code) in the transaction that records it; if that append fails, the outcome is not
recorded either and the wallet gets a 503.

Same-device return (OpenID4VP 1.0, "Session Fixation"): after a successful presentation the
wallet gets a ``redirect_uri`` carrying a fresh ``response_code`` (stored as a digest in the
transaction's outcome). :func:`same_device_return` honours it once, and only in the browser bound
to the interaction; opened in any other browser it is used up all the same. The status poll
remains the cross-device path, so a browser holding the interaction does not *need* the code:
with one transaction behind both the QR code and the link, the protocol cannot tell the two
flows apart. What the code decides is where the login's answer arrived: only a login returned to
the interaction's own browser starts an SSO session at consent (``services/interaction.py``,
docs/HOLDER-INTEGRITY.md "Relay"). The return URL is single-use and useless without the code (a
guessed or leaked transaction id gets nothing).

Dynamic linking (docs/DYNAMIC-LINKING.md): when the request holds a ``value_transfer``,
``funding`` or ``standing_funding`` entry and an anchor set the chosen anchor belongs to lists
that operation in its policy's ``dynamic_linking`` (a standing authorization is a funding
operation here: ``funding`` links it), :func:`begin` builds the OpenID4VP ``transaction_data``
element of the operation (``openid4vp/transaction_data.py``; the payee in the words of
``services/payee.py``) and stores the exact base64url string with the operation's digest in the
transaction's data; the request object carries it. Only then: a wallet that does not know one of
our types must refuse the whole request, so it is never sent needlessly. At the response the Key
Binding JWT must hold exactly one matching hash per element sent (``transaction_data.verify``),
else the login fails with that reason; a presentation that passes records the digests in
``Authentication.signed_operations``. A wallet that answers ``invalid_transaction_data`` (it
refuses our type) fails the login as ``wallet_refused_transaction_data``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.domain.anchors import Anchor
from trustanchor.oauth import funding, value_transfer
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.claims_release import requested_claim_names
from trustanchor.oauth.funding import FundingDetail
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.oauth.value_transfer import ValueTransferDetail
from trustanchor.openid4vp import dcql, transaction_data
from trustanchor.openid4vp.links import wallet_request_url
from trustanchor.openid4vp.request_object import VerifierIdentity, build_request_object
from trustanchor.openid4vp.response import (
    WalletResponseError,
    parse_direct_post,
    response_endpoint_reply,
    same_device_redirect_uri,
)
from trustanchor.services import (
    account_kyc,
    decisions,
    identity_joining,
    interaction,
    login_choice,
    login_completion,
    payee,
)
from trustanchor.services.container import Services
from trustanchor.services.interaction import AnchorUnavailable, Interaction, InteractionGone
from trustanchor.storage import interactions_repo, wallet_repo

log = logging.getLogger("trustanchor.login")

CREDENTIAL_ID = "identity_credential"
# Every login asks for the names the consent page leads with ("Logged in as Yamada H."): the
# person must see whose login it is, whatever an earlier login of theirs disclosed.
WHO_CLAIMS = ("family_name", "given_name")
well_formed_id = interaction.well_formed_id
# The operations whose transaction data a wallet can sign (an anchor set's dynamic_linking).
LINKED_OPERATIONS = (value_transfer.TYPE, funding.TYPE)
# The language of the payee's intermediary name in the transaction data: the request's first
# ui_locales tag we have texts for, else English (the wallet shows the element as it is signed).
_ELEMENT_LANGUAGES = ("ja", "en")

__all__ = ["AnchorUnavailable", "InteractionGone"]  # raised here, defined by the seam


class ReturnRefused(interaction.InteractionRefused):
    """The same-device return URL is unknown, lacks a valid response code, or was used."""

    reason = "wallet_return"


class WalletRequestRefused(Exception):
    """The wallet asked for a request object or posted a response we cannot accept."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(error)


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


def begin(services: Services, current: Interaction, anchor_id: str) -> WalletStarted:
    """The wallet login method starts: a transaction (fresh nonce and state) for one anchor."""
    login_choice.client_of(services, current)
    if current.state != "login":
        raise InteractionGone(current.id)
    if login_choice.eligible_for_method(services, current, anchor_id, "wallet") is None:
        raise AnchorUnavailable(anchor_id)
    at = services.clock.now()
    transaction_id = services.randomness.token(24)
    with services.db.transaction() as conn:
        bindings = transaction_data_for(services, conn, current.request, anchor_id)
        wallet_repo.create(
            conn,
            transaction_id,
            current.id,
            anchor_id,
            services.randomness.token(24),
            now=at,
            expires_at=at + services.settings.interaction.wallet_transaction_lifetime,
            data={TRANSACTION_DATA: [b.to_json() for b in bindings]} if bindings else None,
        )
    return WalletStarted(transaction_id)


TRANSACTION_DATA = "transaction_data"


@dataclass(frozen=True, slots=True)
class Binding:
    """One transaction data element as sent (``element``, base64url) and the digest of the
    authorization_details entry it was built from (``operation``)."""

    operation: str
    element: str

    def to_json(self) -> dict[str, str]:
        return {"operation": self.operation, "element": self.element}


def bindings_of(data: Mapping[str, Any]) -> tuple[Binding, ...]:
    """The elements a wallet transaction sent (its stored data)."""
    return tuple(
        Binding(str(item["operation"]), str(item["element"]))
        for item in data.get(TRANSACTION_DATA, ())
    )


def linked_operations(services: Services, anchor_id: str) -> frozenset[str]:
    """The operations whose transaction data goes to ``anchor_id``'s wallets: those an anchor
    set holding it lists in its ``dynamic_linking`` (required there), and those the anchor
    declares its wallets sign (``transaction_data``: sent, and then checked, everywhere)."""
    snapshot = decisions.trust_snapshot(services)
    view = snapshot.anchors.get(anchor_id)
    if view is None:
        return frozenset()
    anchor = services.anchors.get(anchor_id)
    declared = anchor.settings.get("transaction_data", ()) if anchor is not None else ()
    linked: set[str] = {str(operation) for operation in declared}
    for set_id in view.set_ids:
        anchor_set = snapshot.sets.get(set_id)
        if anchor_set is not None:
            linked |= anchor_set.dynamic_linking
    return frozenset(linked)


def transaction_data_for(
    services: Services, conn: Connection, request: AuthorizationRequest, anchor_id: str
) -> tuple[Binding, ...]:
    """The transaction data to send for ``request`` through ``anchor_id``: one element per
    transfer, funding or standing funding operation (``request.operations``, parsed once) whose
    operation an anchor set of the anchor links dynamically (or the anchor declares); none
    otherwise. A standing authorization is a funding operation here: ``funding`` links it, as
    the engine applies the ``funding`` entry of ``dynamic_linking`` to it. The operation's
    digest is over ``to_entry()``, as the decision computes it. An operation that cannot be
    worded (an unknown creditor account) gets no element: nothing is signed for it, and the
    policy decides as for an unsigned operation."""
    operations = [
        op
        for op in request.operations
        if isinstance(op, ValueTransferDetail | FundingDetail | StandingFundingDetail)
    ]
    if not operations:
        return ()
    linked = linked_operations(services, anchor_id)
    language = _element_language(request)
    bindings: list[Binding] = []
    for operation in operations:
        entry = operation.to_entry()
        if _linked_as(operation) not in linked:
            continue
        try:
            element = _element(services, conn, operation, language)
            encoded = transaction_data.encode(element) if element is not None else None
        except transaction_data.TransactionDataError as exc:
            log.warning("no transaction data for a %s operation: %s", entry["type"], exc)
            continue
        if encoded is not None:
            bindings.append(Binding(transaction_data.operation_digest(entry), encoded))
    return tuple(bindings)


def _linked_as(operation: ValueTransferDetail | FundingDetail | StandingFundingDetail) -> str:
    """The ``dynamic_linking`` operation that covers ``operation``: a standing authorization
    of funding is linked by ``funding``."""
    if isinstance(operation, ValueTransferDetail):
        return value_transfer.TYPE
    return funding.TYPE


def _element(
    services: Services,
    conn: Connection,
    operation: ValueTransferDetail | FundingDetail | StandingFundingDetail,
    language: str,
) -> dict[str, Any] | None:
    if isinstance(operation, StandingFundingDetail):
        return transaction_data.standing_funding_element(
            directions=operation.directions,
            max_amount=str(operation.max_amount),
            daily_amount=str(operation.daily_amount),
            currency=operation.max_amount.currency,
            valid_days=operation.valid_days,
            deposit_account_reference=payee.masked_reference(operation.deposit_account),
            wallet_account_reference=payee.masked_reference(operation.wallet_account),
            credential_ids=(CREDENTIAL_ID,),
        )
    if isinstance(operation, ValueTransferDetail):
        creditor = payee.describe(services, conn, operation.creditor_account, language=language)
        if creditor is None:
            return None
        return transaction_data.value_transfer_element(
            amount=str(operation.amount),
            currency=operation.amount.currency,
            creditor=transaction_data.Creditor(
                label=creditor.label,
                intermediary=creditor.intermediary,
                account_reference=creditor.account_reference,
            ),
            remittance_reference=operation.remittance_reference,
            credential_ids=(CREDENTIAL_ID,),
        )
    return transaction_data.funding_element(
        direction=operation.direction,
        amount=str(operation.amount),
        currency=operation.amount.currency,
        deposit_account_reference=payee.masked_reference(operation.deposit_account),
        wallet_account_reference=payee.masked_reference(operation.wallet_account),
        credential_ids=(CREDENTIAL_ID,),
    )


def _element_language(request: AuthorizationRequest) -> str:
    for tag in request.ui_locales:
        base = tag.split("-")[0].lower()
        if base in _ELEMENT_LANGUAGES:
            return base
    return "en"


def transaction_view(
    services: Services, current: Interaction, transaction_id: str
) -> TransactionView:
    login_choice.client_of(services, current)
    if not well_formed_id(transaction_id):
        raise InteractionGone(current.id)
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id)
    if tx is None or tx.interaction_id != current.id or current.state != "login":
        raise InteractionGone(current.id)
    anchor = services.anchors.get(tx.anchor_id)
    if anchor is None or not anchor.is_active:
        raise AnchorUnavailable(tx.anchor_id)
    url = wallet_request_url(
        services.settings.interaction.wallet_link_base,
        client_id=verifier_client_id(services),
        request_uri=services.endpoints.wallet_request(transaction_id),
        allow_http_loopback=_allow_http(services),
    )
    return TransactionView(current.request, anchor, url)


def dcql_for(
    anchor: Anchor, request: AuthorizationRequest, extra_claims: Sequence[str] = ()
) -> dict[str, Any]:
    """Ask for the anchor's credential types and exactly the claims this request needs: the
    names the consent page shows to say who logged in (:data:`WHO_CLAIMS`, never released to
    the client unless it asked), the request's own, and ``extra_claims``: those a join rule
    compares in a step-up (``identity_joining.claims_to_ask``) and those the KYC attributes
    registered for the accounts a link binds need (``account_kyc.claims_to_ask``)."""
    settings = anchor.settings
    mapping: dict[str, str] = dict(settings.get("claims", {}))
    paths: list[list[str]] = [[str(settings["subject_claim"])]]
    wanted = (*WHO_CLAIMS, *requested_claim_names(request.scope, request.claims), *extra_claims)
    for name in wanted:
        source = mapping.get(name)
        if source is not None and [source] not in paths:
            paths.append([source])
    return dcql.build_query(CREDENTIAL_ID, list(settings["vct"]), paths)


def request_object(
    services: Services, transaction_id: str, *, wallet_nonce: str | None = None
) -> str:
    at = services.clock.now()
    if not well_formed_id(transaction_id):
        raise WalletRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx else None
    if (
        tx is None
        or row is None
        or row.state != "login"
        or tx.consumed_at is not None
        or tx.expires_at <= at
    ):
        raise WalletRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    anchor = services.anchors.get(tx.anchor_id)
    if anchor is None or not anchor.is_active:
        # Tell the person (the login page shows the latest transaction's failure) as well.
        _fail(services, tx.id, "anchor_suspended", f"anchor {tx.anchor_id} is not active")
        raise WalletRequestRefused(404, "invalid_request_uri", "anchor_suspended")
    request = AuthorizationRequest.from_json(row.request)
    verifier = VerifierIdentity(
        client_id=verifier_client_id(services), signing_key=services.keys.current()
    )
    with services.db.transaction() as conn:
        wallet_repo.mark_request_fetched(conn, transaction_id, now=at)
        kyc_claims = account_kyc.claims_to_ask(conn, request.authorization_details, row.client_id)
    join_claims = identity_joining.claims_to_ask(services, anchor, row.step_up)
    return build_request_object(
        verifier,
        nonce=tx.nonce,
        state=transaction_id,
        response_uri=services.endpoints.wallet_response,
        dcql_query=dcql_for(anchor, request, (*join_claims, *kyc_claims)),
        at=at,
        lifetime=max(1, tx.expires_at - at),
        wallet_nonce=wallet_nonce,
        allow_http_loopback=_allow_http(services),
        transaction_data_items=[b.element for b in bindings_of(tx.data)],
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
        login_completion.consume_malformed(
            services, form, at, method="wallet", reason="wallet_response_invalid"
        )
        raise WalletRequestRefused(400, "invalid_request", exc.reason) from exc
    with services.db.transaction() as conn:
        tx = wallet_repo.consume(conn, response.state, now=at)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx else None
    if tx is None:
        raise WalletRequestRefused(400, "invalid_request", "unknown, expired or already used state")
    if row is None or row.state != "login":
        _fail(
            services,
            tx.id,
            "interaction_gone",
            "the interaction no longer waits for a login",
            anchor_id=tx.anchor_id,
        )
        raise WalletRequestRefused(400, "invalid_request", "the login has expired")
    if response.is_error:
        # The person said no in their wallet (OpenID4VP: access_denied), or the wallet failed.
        reason = "wallet_declined" if response.error == "access_denied" else "wallet_error"
        if response.error == "invalid_transaction_data" and bindings_of(tx.data):
            # OpenID4VP 1.0 section 8.5: the wallet does not know (or cannot read) our type.
            reason = "wallet_refused_transaction_data"
        _fail(services, tx.id, reason, response.error or "", anchor_id=tx.anchor_id)
        return response_endpoint_reply()
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
        _fail(services, tx.id, failure.reason, failure.detail, anchor_id=tx.anchor_id)
        raise WalletRequestRefused(400, "invalid_request", failure.reason) from failure
    assert anchor is not None
    bindings = bindings_of(tx.data)
    try:
        transaction_data.verify(
            [b.element for b in bindings],
            verified.transaction_data_hashes,
            verified.transaction_data_hashes_alg,
        )
    except transaction_data.TransactionDataError as refused:
        _fail(services, tx.id, refused.reason, refused.detail, anchor_id=tx.anchor_id)
        raise WalletRequestRefused(400, "invalid_request", refused.reason) from refused
    verified = replace(verified, signed_operations=tuple(b.operation for b in bindings))
    try:
        response_code = login_completion.finish(
            services,
            transaction_id=tx.id,
            interaction_id=tx.interaction_id,
            step_up=row.step_up,
            earlier_authentication=row.authentication,
            anchor=anchor,
            verified=verified,
            at=at,
        )
    except login_completion.LoginRefused as refused:
        description = (
            "the login has expired" if refused.reason == "interaction_gone" else refused.reason
        )
        raise WalletRequestRefused(400, "invalid_request", description) from refused
    return response_endpoint_reply(
        redirect_uri=same_device_redirect_uri(
            services.endpoints.url(f"/wallet/done/{tx.id}"),
            response_code=response_code,
            allow_http_loopback=_allow_http(services),
        )
    )


def _fail(
    services: Services,
    transaction_id: str,
    reason: str,
    detail: str,
    *,
    anchor_id: str | None = None,
) -> None:
    login_completion.fail(services, transaction_id, reason, detail, anchor_id=anchor_id)


def same_device_return(
    services: Services,
    transaction_id: str,
    response_code: str | None,
    *,
    browser_secret: str | None,
) -> str | None:
    """The wallet sent the person back with ``response_code``
    (``login_completion.same_device_return``)."""
    return login_completion.same_device_return(
        services,
        transaction_id,
        response_code,
        browser_secret=browser_secret,
        method="wallet",
        refused=ReturnRefused,
    )
