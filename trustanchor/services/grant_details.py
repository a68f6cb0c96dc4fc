"""What a grant remembers between consent and token issuance/refresh/userinfo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_details import is_one_time
from trustanchor.oauth.claims_request import ClaimsRequest


@dataclass(frozen=True, slots=True)
class GrantDetails:
    scope: tuple[str, ...]
    claims: ClaimsRequest
    authorization_details: tuple[dict[str, Any], ...]
    authentication: Authentication | None
    subject: str
    nonce: str | None
    anchor_set_id: str | None = None  # the anchor set a link/transfer decision relied on
    sid: str | None = None  # the browser's SSO session at consent (OpenID Connect ``sid``)

    @property
    def is_one_time(self) -> bool:
        """A one-time movement (a value transfer, a funding): short-lived access token, no
        refresh token (oauth/detail_types.py says which types are)."""
        return is_one_time(self.authorization_details)

    @property
    def is_standing(self) -> bool:
        """A standing authorization: each token request names one movement within it, with a
        DPoP-bound rotating refresh token (services/standing_movements.py)."""
        return any(e.get("type") == "standing_funding" for e in self.authorization_details)

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": list(self.scope),
            "claims": self.claims.to_json(),
            "authorization_details": list(self.authorization_details),
            "authentication": self.authentication.to_json() if self.authentication else None,
            "subject": self.subject,
            "nonce": self.nonce,
            "anchor_set_id": self.anchor_set_id,
            "sid": self.sid,
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
            anchor_set_id=data.get("anchor_set_id"),
            sid=data.get("sid"),
        )
