"""The ``verification`` element of verified_claims for an identity (OIDC4IDA §5)."""

from __future__ import annotations

from typing import Any

from trustanchor.domain.identity import Authentication, Identity
from trustanchor.oauth.claims_release import iso_time


def verification_element(identity: Identity, auth: Authentication) -> dict[str, Any]:
    element: dict[str, Any] = {
        "trust_framework": auth.trust_framework,
        "assurance_level": identity.assurance_level,
        "time": iso_time(identity.verified_at),
    }
    if auth.evidence:
        element["evidence"] = [dict(auth.evidence)]
    return element
