"""Login with the electronic certificates of a card (anchor kind ``x509``, the JPKI model).

The protocol is docs/CERTIFICATE-LOGIN.md; this module is its service side, the sibling of
``wallet_login`` behind the interaction seam. Choosing an ``x509`` anchor opens a login
transaction (method ``certificate``: a fresh 256-bit nonce, the transaction id as ``state``, and
which certificates are asked for), shown as a QR code and a same-device link that carry a signed
request by reference. The card app signs a challenge JWS with each certificate asked for and
POSTs them to our response endpoint (``direct_post``); the anchor's verifier
(``anchors/x509_verifier.py``) checks chain, profile, revocation and the challenge against *that
anchor's* configuration and *that transaction's* nonce, and :mod:`login_completion` turns the
verified identity into the interaction's login.

Which certificates are asked for. The authentication certificate always (it keys the identity:
JPKI has no stable subject identifier). The signature certificate too — an *enrolment*, whose
signature is legally the person's electronic signature, so it is asked for only when needed —
when the request needs verified claims (requested claims, a join rule's claims in a step-up,
the KYC attributes registered for the accounts a link binds), or after this interaction learnt
that the service does not know the person's authentication certificate
(``certificate_enrolment_required``: such an answer is refused, and the next attempt in the
interaction asks for both). A signature certificate that was not asked for is refused unread.

Every response that names a transaction consumes it first, whatever the outcome (one
conditional UPDATE), so an answer can never be replayed; failures are recorded and audited
through ``login_completion.fail`` and shown on the login page, which stays at ``login``.

The face-to-face channel (``services/counter_login.py``) authenticates the bank's counter
terminal and its branch role itself, then calls :func:`receive` with the terminal's client id as
``on_behalf_of`` and the in-person ``presence``: here the client must be the interaction's own.

Same-device return as for the wallet: a one-time ``response_code`` (digest stored with the
transaction's outcome) honoured once, and only in the browser bound to the interaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.x509_verifier import CertificateAnswer, ChallengeExpectation
from trustanchor.domain.anchors import Anchor
from trustanchor.jose import jws
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.claims_release import PROTOCOL_CLAIMS, requested_claim_names
from trustanchor.openid4vp.links import LinkError, wallet_request_url
from trustanchor.openid4vp.response import same_device_redirect_uri
from trustanchor.services import (
    account_kyc,
    identity_joining,
    interaction,
    login_choice,
    login_completion,
)
from trustanchor.services.container import Services
from trustanchor.services.interaction import AnchorUnavailable, Interaction, InteractionGone
from trustanchor.services.wallet_login import verifier_client_id
from trustanchor.storage import identities_repo, interactions_repo, wallet_repo

log = logging.getLogger("trustanchor.login")

METHOD: wallet_repo.LoginMethod = "certificate"
REQUEST_TYP = "trustanchor-x509-request+jwt"
REQUEST_MEDIA_TYPE = "application/oauth-authz-req+jwt"
PURPOSE = "trustanchor-login-challenge-v1"
AUTHENTICATION = "authentication"
SIGNATURE = "signature"
NONCE_BYTES = 32  # 256 bits
ENROLMENT_REQUIRED = "certificate_enrolment_required"
DEFAULT_ALGS = ("RS256",)
well_formed_id = interaction.well_formed_id

# Reason codes of this module (login failures, audited; the person's words are in the web
# catalogs' [reasons] table).
REASONS: dict[str, str] = {
    ENROLMENT_REQUIRED: "the authentication certificate is not known: enrol with both",
    "certificate_declined": "the person declined in the card app",
    "certificate_app_error": "the card app reported an error",
    "certificate_response_invalid": "the card app's answer is malformed",
    "signature_not_requested": "a signature certificate was sent that was not asked for",
    "counter_client_mismatch": "the counter terminal is not the client of this interaction",
}

# The response form: names read, each at most once (others are ignored, as a counter
# terminal's post carries its own client authentication and staff operator).
_READ = ("state", AUTHENTICATION, SIGNATURE, "error", "error_description")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
_ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{0,1024}")


class ReturnRefused(interaction.InteractionRefused):
    """The same-device return URL is unknown, lacks a valid response code, or was used."""

    reason = "certificate_return"


class CertificateRequestRefused(Exception):
    """The card app asked for a request we cannot give, or posted an answer we cannot accept."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(error)


class ResponseMalformed(ValueError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class CertificateStarted:
    transaction_id: str


@dataclass(frozen=True, slots=True)
class TransactionView:
    request: AuthorizationRequest
    anchor: Anchor
    link: str  # the same-device link, also the QR code's content
    certificates: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CertificateResponse:
    """The card app's direct_post: the challenge JWS per certificate, or an error."""

    state: str
    authentication: str | None = None
    signature: str | None = None
    error: str | None = None


# -- starting ---------------------------------------------------------------------------------


def _allow_http(services: Services) -> bool:
    return not services.settings.is_production


def begin(services: Services, current: Interaction, anchor_id: str) -> CertificateStarted:
    """The certificate login method starts: a transaction for one ``x509`` anchor, with a fresh
    256-bit nonce and the certificates this attempt asks for."""
    login_choice.client_of(services, current)
    if current.state != "login":
        raise InteractionGone(current.id)
    anchor = login_choice.eligible_for_method(services, current, anchor_id, METHOD)
    if anchor is None:
        raise AnchorUnavailable(anchor_id)
    at = services.clock.now()
    transaction_id = services.randomness.token(24)
    with services.db.transaction() as conn:
        enrol = _signature_needed(services, conn, current, anchor)
        wallet_repo.create(
            conn,
            transaction_id,
            current.id,
            anchor.id,
            services.randomness.token(NONCE_BYTES),
            now=at,
            expires_at=at + services.settings.interaction.wallet_transaction_lifetime,
            method=METHOD,
            data={"certificates": [AUTHENTICATION, SIGNATURE] if enrol else [AUTHENTICATION]},
        )
    return CertificateStarted(transaction_id)


def enrols(anchor: Anchor) -> bool:
    """Whether the anchor declares a signature profile. Without one it offers login only: the
    authentication certificate alone, never verified claims, and no enrolment to ask for."""
    return isinstance(anchor.settings.get(SIGNATURE), Mapping)


def _signature_needed(
    services: Services, conn: Connection, current: Interaction, anchor: Anchor
) -> bool:
    """Whether this attempt must enrol the signature certificate (its verified claims)."""
    if not enrols(anchor):
        return False
    request = current.request
    if any(
        name not in PROTOCOL_CLAIMS for name in requested_claim_names(request.scope, request.claims)
    ):
        return True
    if identity_joining.claims_to_ask(services, _claims_view(anchor), current.step_up):
        return True
    if account_kyc.claims_to_ask(conn, request.authorization_details, current.client_id):
        return True
    return _enrolment_pending(wallet_repo.latest_for_interaction(conn, current.id))


def _claims_view(anchor: Anchor) -> Anchor:
    """The anchor as identity joining reads claims: an ``x509`` anchor's verified claims are
    those its signature profile maps, ``name`` also split into family and given name
    (anchors/x509_claims.py)."""
    profile = anchor.settings.get(SIGNATURE)
    mapped = profile.get("claims", {}) if isinstance(profile, Mapping) else {}
    carried = set(mapped) if isinstance(mapped, Mapping) else set()
    if "name" in carried:
        carried.update(("family_name", "given_name"))
    return replace(anchor, settings={**anchor.settings, "claims": {c: c for c in carried}})


def _enrolment_pending(latest: wallet_repo.WalletTransaction | None) -> bool:
    """The interaction's latest attempt found the authentication certificate unknown, or was
    itself an enrolment that did not succeed: the next attempt asks for both certificates."""
    if latest is None:
        return False
    outcome = latest.outcome or {}
    if outcome.get("status") == "failed" and outcome.get("reason") == ENROLMENT_REQUIRED:
        return True
    return latest.method == METHOD and SIGNATURE in _asked(latest) and outcome.get("status") != "ok"


def _asked(tx: wallet_repo.WalletTransaction) -> tuple[str, ...]:
    asked = tx.data.get("certificates")
    if not isinstance(asked, list):
        return (AUTHENTICATION,)
    return tuple(name for name in asked if name in (AUTHENTICATION, SIGNATURE))


def request_uri(services: Services, transaction_id: str) -> str:
    return services.endpoints.url(f"/certificate/request/{transaction_id}")


def response_uri(services: Services) -> str:
    return services.endpoints.url("/certificate/response")


def transaction_view(
    services: Services, current: Interaction, transaction_id: str
) -> TransactionView:
    """The QR code page of one transaction, for the browser holding the interaction."""
    login_choice.client_of(services, current)
    if not well_formed_id(transaction_id):
        raise InteractionGone(current.id)
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id, method=METHOD)
    if tx is None or tx.interaction_id != current.id or current.state != "login":
        raise InteractionGone(current.id)
    anchor = services.anchors.get(tx.anchor_id)
    if anchor is None or not anchor.is_active:
        raise AnchorUnavailable(tx.anchor_id)
    link = wallet_request_url(
        services.settings.interaction.certificate_link_base,
        client_id=verifier_client_id(services),
        request_uri=request_uri(services, transaction_id),
        allow_http_loopback=_allow_http(services),
    )
    return TransactionView(current.request, anchor, link, _asked(tx))


def algs(anchor: Anchor) -> tuple[str, ...]:
    """The challenge algorithms the anchor accepts (RS256, plus PS256/ES256 where declared)."""
    declared = anchor.settings.get("algs")
    if isinstance(declared, list | tuple) and all(isinstance(a, str) for a in declared):
        return tuple(declared) or DEFAULT_ALGS
    return DEFAULT_ALGS


def request_object(services: Services, transaction_id: str) -> str:
    """The signed request (``typ`` trustanchor-x509-request+jwt) of an open transaction.
    Fetching it notes the fetch; only the response consumes the transaction."""
    at = services.clock.now()
    if not well_formed_id(transaction_id):
        raise CertificateRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id, method=METHOD)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx else None
    if (
        tx is None
        or row is None
        or row.state != "login"
        or tx.consumed_at is not None
        or tx.expires_at <= at
    ):
        raise CertificateRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    anchor = services.anchors.get(tx.anchor_id)
    client = services.clients.get(row.client_id)
    if anchor is None or not anchor.is_active:
        # The person sees it on the login page (the latest transaction's failure); not audited:
        # anyone holding the request URI may fetch it again.
        login_completion.fail(services, tx.id, "anchor_suspended", f"anchor {tx.anchor_id}")
        raise CertificateRequestRefused(404, "invalid_request_uri", "anchor_suspended")
    if client is None:
        raise CertificateRequestRefused(404, "invalid_request_uri", "unknown or expired request")
    with services.db.transaction() as conn:
        wallet_repo.mark_request_fetched(conn, transaction_id, now=at)
    request = AuthorizationRequest.from_json(row.request)
    language = next((tag for tag in request.ui_locales if tag in ("en", "ja")), "en")
    verifier_id = verifier_client_id(services)
    claims = {
        "iss": verifier_id,
        "client_id": verifier_id,
        "response_uri": response_uri(services),
        "response_mode": "direct_post",
        "nonce": tx.nonce,
        "state": tx.id,
        "iat": at,
        "exp": tx.expires_at,
        "certificates": list(_asked(tx)),
        "algs": list(algs(anchor)),
        "purpose": PURPOSE,
        "client_name": client.name(language),
        "anchor": {"id": anchor.id, "display_name": dict(anchor.display_name)},
    }
    key = services.keys.current()
    return jws.sign(
        claims, key.private_key, alg=key.alg, headers={"typ": REQUEST_TYP, "kid": key.kid}
    )


# -- the answer -------------------------------------------------------------------------------


def parse_response(
    form: Mapping[str, Any], *, max_bytes: int, max_jws_bytes: int
) -> CertificateResponse:
    """The direct_post form (name → list of values), strictly: each name we read at most once,
    the whole form within ``max_bytes``, each challenge JWS a compact JWS within
    ``max_jws_bytes``, an error and an answer never together. Raises ResponseMalformed."""
    try:
        items = list(form.items())
    except Exception as exc:  # an arbitrary object: anything it raises means "not a form"
        raise ResponseMalformed("malformed_form") from exc
    total = 0
    single: dict[str, str] = {}
    for name, values in items:
        if not isinstance(name, str) or not isinstance(values, list | tuple):
            raise ResponseMalformed("malformed_form")
        total += len(name.encode("utf-8", "surrogatepass"))
        for value in values:
            if not isinstance(value, str):
                raise ResponseMalformed("malformed_form")
            total += len(value.encode("utf-8", "surrogatepass"))
        if total > max_bytes:
            raise ResponseMalformed("too_large")
        if name in _READ:
            if len(values) != 1:
                raise ResponseMalformed("repeated_parameter" if values else "malformed_form")
            single[name] = values[0]
    state = single.get("state")
    if state is None or not well_formed_id(state):
        raise ResponseMalformed("invalid_state")
    error = single.get("error")
    if error is not None:
        if AUTHENTICATION in single or SIGNATURE in single:
            raise ResponseMalformed("ambiguous_response")
        description = single.get("error_description")
        if not _ERROR_CODE.fullmatch(error) or (
            description is not None and not _ERROR_DESCRIPTION.fullmatch(description)
        ):
            raise ResponseMalformed("invalid_error")
        return CertificateResponse(state=state, error=error)
    if "error_description" in single:
        raise ResponseMalformed("invalid_error")
    tokens: dict[str, str] = {}
    for profile in (AUTHENTICATION, SIGNATURE):
        token = single.get(profile)
        if token is None:
            continue
        if len(token) > max_jws_bytes or not _COMPACT_JWS.fullmatch(token):
            raise ResponseMalformed(f"malformed_{profile}")
        tokens[profile] = token
    if AUTHENTICATION not in tokens:
        raise ResponseMalformed("missing_authentication")
    return CertificateResponse(
        state=state, authentication=tokens[AUTHENTICATION], signature=tokens.get(SIGNATURE)
    )


def receive(
    services: Services,
    form: Mapping[str, Any],
    *,
    presence: login_completion.Presence = login_completion.REMOTE,
    on_behalf_of: str | None = None,
) -> dict[str, str]:
    """Process the card app's answer (or a counter terminal's, ``on_behalf_of`` naming the
    authenticated terminal client); returns the JSON body of a 200 answer, raises
    CertificateRequestRefused for a 400."""
    at = services.clock.now()
    limits = services.settings.limits
    try:
        response = parse_response(
            form, max_bytes=limits.max_body_bytes, max_jws_bytes=limits.max_jws_bytes
        )
    except ResponseMalformed as exc:
        log.info("certificate response refused: %s", exc.reason)
        login_completion.consume_malformed(
            services, form, at, method=METHOD, reason="certificate_response_invalid"
        )
        raise CertificateRequestRefused(400, "invalid_request", exc.reason) from exc
    with services.db.transaction() as conn:
        tx = wallet_repo.consume(conn, response.state, now=at, method=METHOD)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx else None
    if tx is None:
        raise CertificateRequestRefused(
            400, "invalid_request", "unknown, expired or already used state"
        )

    def refuse(reason: str, detail: str, description: str | None = None) -> Exception:
        """Record the failure (audited: the transaction is consumed) and the 400 to raise."""
        login_completion.fail(services, tx_id, reason, detail, anchor_id=anchor_id)
        return CertificateRequestRefused(400, "invalid_request", description or reason)

    tx_id, anchor_id = tx.id, tx.anchor_id
    if row is None or row.state != "login":
        raise refuse("interaction_gone", "no login waits", "the login has expired")
    if (on_behalf_of is not None or presence.channel != "remote") and (
        on_behalf_of != row.client_id
    ):
        raise refuse("counter_client_mismatch", "terminal is not the interaction's client")
    if response.error is not None:
        reason = (
            "certificate_declined" if response.error == "access_denied" else "certificate_app_error"
        )
        login_completion.fail(services, tx.id, reason, response.error, anchor_id=tx.anchor_id)
        return {}
    asked = _asked(tx)
    if response.signature is not None and SIGNATURE not in asked:
        raise refuse("signature_not_requested", "signature certificate not asked for")
    anchor = services.anchors.get(tx.anchor_id)
    try:
        if anchor is None:
            raise AnchorFailure("anchor_unknown", tx.anchor_id)
        if not anchor.is_active:
            raise AnchorFailure("anchor_suspended", f"anchor {anchor.id} is {anchor.status}")
        verifier = services.verifiers.certificate_verifier(anchor)
        assert response.authentication is not None
        verified = verifier.verify(
            CertificateAnswer(authentication=response.authentication, signature=response.signature),
            expected=ChallengeExpectation(
                audience=verifier_client_id(services),
                nonce=tx.nonce,
                txn=tx.id,
                not_after=tx.expires_at,
            ),
            at=at,
            require_signature=SIGNATURE in asked,
        )
    except AnchorFailure as failure:
        raise refuse(failure.reason, failure.detail) from failure
    assert anchor is not None
    if response.signature is None and enrols(anchor):
        with services.db.reader() as conn:
            known = identities_repo.find(conn, anchor.id, verified.subject)
        if known is None:
            raise refuse(ENROLMENT_REQUIRED, "unknown authentication certificate")
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
            presence=presence,
        )
    except login_completion.LoginRefused as refused:
        description = (
            "the login has expired" if refused.reason == "interaction_gone" else refused.reason
        )
        raise CertificateRequestRefused(400, "invalid_request", description) from refused
    try:
        redirect_uri = same_device_redirect_uri(
            services.endpoints.url(f"/certificate/done/{tx.id}"),
            response_code=response_code,
            allow_http_loopback=_allow_http(services),
        )
    except LinkError:  # pragma: no cover - our own issuer URL
        return {}
    return {"redirect_uri": redirect_uri}


# -- the same-device return -------------------------------------------------------------------


def same_device_return(
    services: Services,
    transaction_id: str,
    response_code: str | None,
    *,
    browser_secret: str | None,
) -> str | None:
    """The card app sent the person back with ``response_code``
    (``login_completion.same_device_return``)."""
    return login_completion.same_device_return(
        services,
        transaction_id,
        response_code,
        browser_secret=browser_secret,
        method=METHOD,
        refused=ReturnRefused,
    )


__all__ = [
    "ENROLMENT_REQUIRED",
    "REASONS",
    "CertificateRequestRefused",
    "CertificateResponse",
    "CertificateStarted",
    "ReturnRefused",
    "TransactionView",
    "begin",
    "parse_response",
    "receive",
    "request_object",
    "same_device_return",
    "transaction_view",
]
