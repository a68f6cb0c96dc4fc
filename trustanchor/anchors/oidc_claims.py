"""From a validated ID token (and UserInfo) to a :class:`VerifiedIdentity`.

- Subject: identities are keyed by (issuer, sub), never by ``sub`` alone: two providers may well
  hand out the same ``sub`` to different people. The identity's ``subject`` is
  :func:`issuer_qualified_subject`: ``"oidc:"`` and the SHA-256 (hex) of the JSON array
  ``[issuer, sub]`` — fixed length (the column holds 255 characters, an issuer URL plus a sub of
  up to 255 characters does not fit) and unambiguous (the JSON array cannot be read two ways).
- Claims: plain claims (the Digital Agency style: ``name``, ``address``, ``birthdate``,
  ``gender``, ``family_name``/``given_name`` when given), from the ID token and UserInfo, mapped
  by the anchor's ``claims`` setting; and OpenID Connect for Identity Assurance
  ``verified_claims``, accepted only when their ``verification.trust_framework`` is the anchor's.
  A claim the anchor requests as a verified claim is taken only from ``verified_claims``.
- Level: the *returned* ``acr`` mapped through ``acr_levels``; missing or unknown → the floor
  level (an unknown value is logged); never above the anchor's declared level.
- UserInfo: its ``sub`` must equal the ID token's (OpenID Connect Core 1.0, 5.3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.id_token import IdTokenClaims
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import AssuranceLevel
from trustanchor.domain.identity import VerifiedIdentity

REASONS: dict[str, str] = {}


def issuer_qualified_subject(issuer: str, sub: str) -> str:
    """The identity subject for ``sub`` at ``issuer`` (see the module docstring)."""
    raise AnchorFailure("not_implemented")


def level_for_acr(settings: OidcSettings, anchor: Anchor, acr: str | None) -> AssuranceLevel:
    """Our assurance level for the provider's returned ``acr``."""
    raise AnchorFailure("not_implemented")


def parse_userinfo(body: bytes, *, id_token: IdTokenClaims, max_bytes: int) -> Mapping[str, Any]:
    """A UserInfo response (JSON) whose ``sub`` equals the ID token's; AnchorFailure otherwise."""
    raise AnchorFailure("not_implemented")


def check_userinfo_subject(userinfo: Mapping[str, Any], id_token: IdTokenClaims) -> None:
    """UserInfo ``sub`` must equal the ID token's ``sub`` (token substitution defence)."""
    raise AnchorFailure("not_implemented")


def verified_identity(
    anchor: Anchor,
    settings: OidcSettings,
    id_token: IdTokenClaims,
    *,
    raw_id_token: str,
    userinfo: Mapping[str, Any] | None,
    required_claims: tuple[str, ...],
    at: int,
) -> VerifiedIdentity:
    """The identity the provider vouches for; AnchorFailure when a required claim is missing."""
    raise AnchorFailure("not_implemented")
