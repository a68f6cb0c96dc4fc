"""OAuth clients: intermediaries (confidential), wallet apps (public), resource servers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ClientType = Literal["confidential", "public"]
AuthMethod = Literal["private_key_jwt", "none", "client_secret_basic"]
AUTH_METHODS: tuple[AuthMethod, ...] = ("private_key_jwt", "none", "client_secret_basic")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


@dataclass(frozen=True, slots=True)
class BranchRole:
    """A bank branch's counter terminal (docs/CERTIFICATE-LOGIN.md, "At a bank branch"): the
    client may submit a certificate login on the person's behalf, recorded as in person at
    ``branch_id``. Declared by the operator (``trustanchor_branch``), never by the client."""

    branch_id: str
    display_name: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_type: ClientType
    auth_method: AuthMethod
    display_name: Mapping[str, str]
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scopes: frozenset[str]
    jwks: Mapping[str, Any] | None
    require_dpop: bool
    authorization_details_types: tuple[str, ...]
    sector_identifier: str
    audiences: tuple[str, ...]
    can_introspect: bool = False
    # RP-Initiated Logout 1.0 §3.1: where the client may ask to be sent after a logout.
    post_logout_redirect_uris: tuple[str, ...] = ()
    # A counter terminal's branch role (confidential private_key_jwt clients only), else None.
    branch: BranchRole | None = None
    updated_at: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        return self.client_type == "public"

    def name(self, language: str) -> str:
        return self.display_name.get(language) or self.display_name.get("en") or self.client_id
