"""What a grant remembers between consent and token issuance/refresh/userinfo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustanchor.domain.identity import Authentication
from trustanchor.oauth.claims_request import ClaimsRequest


@dataclass(frozen=True, slots=True)
class GrantDetails:
    scope: tuple[str, ...]
    claims: ClaimsRequest
    authorization_details: tuple[dict[str, Any], ...]
    authentication: Authentication | None
    subject: str
    nonce: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": list(self.scope),
            "claims": self.claims.to_json(),
            "authorization_details": list(self.authorization_details),
            "authentication": self.authentication.to_json() if self.authentication else None,
            "subject": self.subject,
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GrantDetails:
        auth = data.get("authentication")
        return cls(
            scope=tuple(data["scope"]),
            claims=ClaimsRequest.from_json(data.get("claims")),
            authorization_details=tuple(data.get("authorization_details", ())),
            authentication=Authentication.from_json(auth) if auth else None,
            subject=data["subject"],
            nonce=data.get("nonce"),
        )
