"""The parameters of our authorization request to an upstream OpenID Provider (pushed with PAR
where the provider supports it, or sent in the redirect otherwise).

Always: ``response_type=code``, ``client_id``, the one ``redirect_uri`` registered for this
provider (one per provider: an authorization response arriving at another provider's redirect
URI is a mix-up), ``scope``, ``state`` and ``nonce`` (fresh, from the caller), ``code_challenge``
with ``S256``. When the policy needs a fresh login: ``max_age`` (the provider must then return
``auth_time``, which the ID token check requires), and ``prompt=login`` when it asks for a login
*now*. When the policy asks for a level the anchor's floor level does not already reach:
``acr_values`` listing the provider's ``acr`` values that ``acr_levels`` maps to that level or
above (strongest first); a level no mapping reaches is refused here (the provider cannot deliver
it, and the *returned* ``acr`` decides anyway). With ``verified_claims``: the ``claims``
parameter (OpenID Connect for Identity Assurance) asking for those claims inside
``verified_claims`` with the anchor's ``trust_framework``, in the ID token, or in UserInfo when
the anchor uses it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from trustanchor import digests
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.domain.assurance import LEVELS, rank

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")

REASONS: dict[str, str] = {
    "level_unavailable": "Your identity provider cannot confirm you at the level this service "
    "needs.",
}


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
    """The request parameters (form/query values); AnchorFailure ``level_unavailable`` when
    neither the floor level nor any configured ``acr`` reaches ``level``. ValueError on unusable
    arguments (they are ours, not the person's)."""
    if not redirect_uri or not state or not nonce:
        raise ValueError("redirect_uri, state and nonce are required")
    if _VERIFIER.fullmatch(code_verifier) is None:
        raise ValueError("code_verifier: 43 to 128 unreserved characters (RFC 7636)")
    params = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(settings.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": digests.sha256_b64url(code_verifier),
        "code_challenge_method": "S256",
    }
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError("max_age: a non-negative integer")
        params["max_age"] = str(max_age)
    if prompt_login:
        params["prompt"] = "login"
    if level is not None:
        if level not in LEVELS:
            raise ValueError(f"level: one of {', '.join(LEVELS)}")
        if rank(settings.floor_assurance_level) < rank(level):
            acr_values = settings.acr_for_level(level)
            if not acr_values:
                raise AnchorFailure("level_unavailable", f"no acr maps to {level}")
            params["acr_values"] = " ".join(acr_values)
    claims = claims_parameter(settings)
    if claims is not None:
        params["claims"] = claims
    return params


def claims_parameter(settings: OidcSettings) -> str | None:
    """The ``claims`` request parameter (JSON) asking for the verified claims, or None."""
    if not settings.verified_claims:
        return None
    request: dict[str, Any] = {
        "verified_claims": {
            "verification": {"trust_framework": {"value": settings.trust_framework}},
            "claims": dict.fromkeys(settings.verified_claims),
        }
    }
    target = "userinfo" if settings.userinfo else "id_token"
    return json.dumps({target: request}, separators=(",", ":"), ensure_ascii=False)
