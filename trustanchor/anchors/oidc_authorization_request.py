"""The parameters of our authorization request to an upstream OpenID Provider (pushed with PAR
where the provider supports it, or sent in the redirect otherwise).

Always: ``response_type=code``, ``client_id``, the one ``redirect_uri`` registered for this
provider (one per provider: an authorization response reaching another provider's redirect URI
is a mix-up), ``scope``, ``state`` and ``nonce`` (fresh, from the caller), ``code_challenge``
with ``S256``. When the policy needs a fresh login: ``max_age`` (and ``prompt=login`` when it
asks for a login *now*, max_age 0). When the policy asks for a level: ``acr_values`` listing the
provider's ``acr`` values that ``acr_levels`` maps to that level or above (strongest first); a
level no mapping reaches is refused here (the provider cannot deliver it). With
``verified_claims``: the ``claims`` parameter (OpenID Connect for Identity Assurance) asking for
those claims inside ``verified_claims`` with the anchor's ``trust_framework``.
"""

from __future__ import annotations

from trustanchor.anchors.oidc_settings import OidcSettings


def authorization_parameters(
    settings: OidcSettings,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
    max_age: int | None = None,
    prompt_login: bool = False,
    level: str | None = None,
) -> dict[str, str]:
    """The request parameters (form/query values); AnchorFailure ``level_unavailable`` when no
    configured ``acr`` reaches ``level``."""
    raise NotImplementedError


def claims_parameter(settings: OidcSettings) -> str | None:
    """The ``claims`` request parameter (JSON) asking for the verified claims, or None."""
    raise NotImplementedError
