"""The login page's choice: which anchors can log this interaction in, and by which method.

Every anchor kind has one login method behind the interaction seam (``services/interaction.py``):

=============  ================  ===================================================
anchor kind    login method      module
=============  ================  ===================================================
``sd_jwt_vc``  ``wallet``        ``services/wallet_login.py`` (OpenID4VP)
``x509``       ``certificate``   ``services/certificate_login.py`` (docs/CERTIFICATE-LOGIN.md)
``oidc``       ``upstream``      ``services/upstream_login.py`` (an upstream OpenID Provider)
=============  ================  ===================================================

One anchor set may hold anchors of every kind; the page lists them together, each with the action
of its method. Every method records its attempts as login transactions (``wallet_repo``), so the
latest failure and the status poll read the same way whatever the method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustanchor.domain.anchors import Anchor, AnchorKind
from trustanchor.domain.assurance import acr_for, at_least
from trustanchor.domain.clients import Client
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.services import identity_joining
from trustanchor.services.container import Services
from trustanchor.services.interaction import Interaction, InteractionGone, InteractionRefused
from trustanchor.storage import wallet_repo
from trustanchor.storage.wallet_repo import LoginMethod

# Login attempts (transactions) one interaction may open, whatever the method. Each attempt of an
# upstream login costs a pushed request at the provider, each certificate or wallet attempt a
# row: without a bound, one anonymous interaction amplifies into any number of them (found by
# the attack session). A person who needs more starts again from the intermediary.
MAX_ATTEMPTS = 10


class TooManyAttempts(InteractionRefused):
    """This interaction has opened :data:`MAX_ATTEMPTS` login attempts already."""

    reason = "too_many_attempts"


METHOD_OF_KIND: dict[AnchorKind, LoginMethod] = {
    "sd_jwt_vc": "wallet",
    "x509": "certificate",
    "oidc": "upstream",
}


@dataclass(frozen=True, slots=True)
class LoginView:
    state: str
    client: Client
    request: AuthorizationRequest
    anchors: list[Anchor]
    failure: str | None
    step_up: Mapping[str, Any] | None = None


def method_of(anchor: Anchor) -> LoginMethod | None:
    return METHOD_OF_KIND.get(anchor.kind)


def eligible_anchors(
    services: Services, request: AuthorizationRequest, step_up: Mapping[str, Any] | None = None
) -> list[Anchor]:
    """Active anchors of a kind with a login method whose assurance meets the request's
    acr_values and, during a step-up, belong to the anchor set the decision named at the level it
    demands (a wallet, when it asks for the payment to be signed) — or are one the step-up lets
    the person present again to prove an identity join (``identity_joining.present_again``). An
    anchor's declared level is the most it can give (an upstream provider's returned ``acr`` may
    give less; the policy then asks again)."""
    again = identity_joining.present_again(step_up)
    result = []
    for anchor in services.anchors.active():
        if method_of(anchor) is None:
            continue
        if request.acr_values and acr_for(anchor.assurance_level) not in request.acr_values:
            continue
        if (
            step_up is not None
            and anchor.id not in again
            and (
                step_up.get("anchor_set_id") not in anchor.anchor_sets
                or not at_least(anchor.assurance_level, str(step_up.get("assurance")))
                # Dynamic linking: only a wallet presentation signs the payment
                # (docs/DYNAMIC-LINKING.md); a card or an upstream login never can.
                or (step_up.get("dynamic_linking") is True and method_of(anchor) != "wallet")
            )
        ):
            continue
        result.append(anchor)
    return result


def eligible_for_method(
    services: Services, current: Interaction, anchor_id: str, method: LoginMethod
) -> Anchor | None:
    """The anchor ``anchor_id`` when it is eligible for ``current`` and logs in by ``method``;
    every method's ``begin`` asks here before it opens a login transaction, so this is also
    where the attempts of one interaction are bounded (:class:`TooManyAttempts`)."""
    with services.db.reader() as conn:
        attempts = wallet_repo.count_for_interaction(conn, current.id)
    if attempts >= MAX_ATTEMPTS:
        raise TooManyAttempts(current.id)
    for anchor in eligible_anchors(services, current.request, current.step_up):
        if anchor.id == anchor_id and method_of(anchor) == method:
            return anchor
    return None


def client_of(services: Services, current: Interaction) -> Client:
    client = services.clients.get(current.client_id)
    if client is None:
        raise InteractionGone(current.id)
    return client


def login_view(services: Services, current: Interaction) -> LoginView:
    client = client_of(services, current)
    failure = None
    if current.state == "login":
        with services.db.reader() as conn:
            latest = wallet_repo.latest_for_interaction(conn, current.id)
        if latest is not None and latest.outcome and latest.outcome.get("status") == "failed":
            failure = str(latest.outcome.get("reason", "generic"))
    return LoginView(
        current.state,
        client,
        current.request,
        eligible_anchors(services, current.request, current.step_up),
        failure,
        current.step_up,
    )


def status(services: Services, current: Interaction) -> dict[str, Any]:
    """The status poll of the login page (any method): done when the interaction left
    ``login`` or the latest attempt failed."""
    with services.db.reader() as conn:
        latest = wallet_repo.latest_for_interaction(conn, current.id)
    if current.state != "login":
        return {"done": True, "state": current.state}
    if latest is not None and latest.outcome and latest.outcome.get("status") == "failed":
        return {"done": True, "state": "failed"}
    return {"done": False, "state": "login"}
