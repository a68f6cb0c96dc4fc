"""Which claims about the person go to the client, and in which shape: plain OIDC claims for the
requested scopes and claims, and ``verified_claims`` (OpenID Connect for Identity Assurance 1.0)
built from what the anchor verified — only what was requested, consented and is available."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from trustanchor.oauth.claims_request import ClaimsRequest
from trustanchor.oauth.scopes import claims_for_scopes

# Claims the protocol sets itself (JWT registered claims, OIDC Core §2 and §5.1 "sub"). A claims
# request may name them (``"acr": {"essential": true}``, ``"sub": {"value": ...}``) but they are
# never filled from the anchor's verified claims: an anchor mapping ``sub`` would otherwise replace
# the pairwise subject with the anchor's own identifier, and ``iss``/``aud`` the token's own.
PROTOCOL_CLAIMS = frozenset(
    {
        "iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "acr", "amr",
        "azp", "at_hash", "c_hash", "sid", "cnf", "client_id", "scope",
    }
)  # fmt: skip


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def requested_claim_names(scope: tuple[str, ...], claims: ClaimsRequest) -> tuple[str, ...]:
    """Every claim name the request could release (what the consent page lists)."""
    names = list(claims_for_scopes(scope))
    for name in claims.all_names():
        if name not in names:
            names.append(name)
    return tuple(names)


def release(
    *,
    target: str,
    scope: tuple[str, ...],
    claims_request: ClaimsRequest,
    available: Mapping[str, Any],
    verification: Mapping[str, Any],
) -> dict[str, Any]:
    """Claims for ``target`` ("userinfo" or "id_token").

    ``verification`` is the verified_claims ``verification`` element for the identity used
    (trust_framework, assurance_level, time, evidence).
    """
    names: list[str] = list(claims_for_scopes(scope)) if target == "userinfo" else []
    names += [n for n in claims_request.names(target) if n not in names]
    result: dict[str, Any] = {
        n: available[n] for n in names if n in available and n not in PROTOCOL_CLAIMS
    }
    verified: list[dict[str, Any]] = []
    for request in claims_request.verified_claims(target):
        if not _framework_matches(request.get("verification", {}), verification):
            continue
        selected = {
            n: available[n]
            for n in request.get("claims", {})
            if n in available and n not in PROTOCOL_CLAIMS
        }
        if selected:
            verified.append({"verification": dict(verification), "claims": selected})
    if len(verified) == 1:
        result["verified_claims"] = verified[0]
    elif verified:
        result["verified_claims"] = verified
    return result


def _framework_matches(requested: Mapping[str, Any], verification: Mapping[str, Any]) -> bool:
    spec = requested.get("trust_framework")
    if not isinstance(spec, dict):
        return True
    actual = verification.get("trust_framework")
    if "value" in spec:
        return bool(spec["value"] == actual)
    if "values" in spec:
        return actual in spec["values"]
    return True
