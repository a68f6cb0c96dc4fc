"""From a validated ID token (and UserInfo) to a :class:`VerifiedIdentity`.

- Subject: identities are keyed by (issuer, sub), never by ``sub`` alone: two providers may well
  hand out the same ``sub`` to different people, and a ``sub`` is only unique at its issuer
  (OpenID Connect Core 1.0, 2). The identity's ``subject`` is :func:`issuer_qualified_subject`:
  ``"oidc:"`` and the SHA-256 (hex) of the JSON array ``[issuer, sub]``. A digest rather than the
  array itself because the column holds 255 characters and an issuer URL plus a ``sub`` of up to
  255 does not fit; the JSON array makes the input unambiguous (no separator to forge), and the
  digest keeps the provider's identifier (often a pairwise pseudonym, but not always) out of
  audit entries and logs that name the subject. Should an anchor's issuer ever change, its
  people get new subjects: the old identities reach them only through the joining rules.
- Claims: plain claims (the Digital Agency style: ``name``, ``address``, ``birthdate``,
  ``gender``, ``family_name``/``given_name`` when given) from the ID token, then UserInfo for
  those the ID token lacks, mapped by the anchor's ``claims`` setting (our OIDC name → the
  provider's name); and OpenID Connect for Identity Assurance ``verified_claims``, of which only
  the elements whose ``verification.trust_framework`` is the anchor's are read. A claim the
  anchor requests as a verified claim is taken *only* from an accepted ``verified_claims``
  element, never from a plain claim of the same name.
- Level: the *returned* ``acr`` mapped through ``acr_levels``; missing → the anchor's floor
  level; unknown → the floor level, logged (the value we did not recognise, never personal
  data); never above the anchor's declared level.
- Evidence: the first ``evidence`` element of the accepted ``verified_claims`` (what the
  provider says it checked), else none; ``expires_at`` is None (the provider's proofing has no
  expiry we know of; the ID token's ``exp`` is the token's, not the identity's).
- UserInfo: its ``sub`` must equal the ID token's (Core 1.0, 5.3.2: token substitution).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from trustanchor import digests, strict_json
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.id_token import IdTokenClaims
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import AssuranceLevel, rank
from trustanchor.domain.identity import VerifiedIdentity

SUBJECT_PREFIX = "oidc:"
MAX_VERIFIED_CLAIMS = 8
MAX_USERINFO_DEPTH = 12

_log = logging.getLogger(__name__)

REASONS: dict[str, str] = {
    "userinfo_malformed": "Your identity provider's details about you could not be read.",
    "userinfo_subject_mismatch": "Your identity provider's details are about someone else.",
    "verified_claims_malformed": "Your identity provider's verified details could not be read.",
    "missing_claims": "Your identity provider did not share all the information this service "
    "needs.",
}


def issuer_qualified_subject(issuer: str, sub: str) -> str:
    """The identity subject for ``sub`` at ``issuer`` (see the module docstring)."""
    canonical = json.dumps([issuer, sub], ensure_ascii=True, separators=(",", ":"))
    return SUBJECT_PREFIX + digests.sha256_hex(canonical)


def level_for_acr(settings: OidcSettings, anchor: Anchor, acr: str | None) -> AssuranceLevel:
    """Our assurance level for the provider's returned ``acr`` (see the module docstring)."""
    level: AssuranceLevel = settings.floor_assurance_level
    if acr is not None:
        mapped = settings.acr_levels.get(acr)
        if mapped is None:
            _log.warning(
                "anchor %s: unknown acr %r from the provider; using the floor level %s",
                anchor.id,
                acr[:100],
                level,
            )
        else:
            level = mapped
    if rank(level) > rank(anchor.assurance_level):
        return anchor.assurance_level
    return level


def parse_userinfo(body: bytes, *, id_token: IdTokenClaims, max_bytes: int) -> Mapping[str, Any]:
    """A UserInfo response (JSON; a signed or encrypted one is not accepted) whose ``sub``
    equals the ID token's; AnchorFailure otherwise."""
    try:
        value = strict_json.loads(body, max_depth=MAX_USERINFO_DEPTH, max_bytes=max_bytes)
    except strict_json.StrictJSONError as exc:
        raise AnchorFailure("userinfo_malformed", str(exc)) from exc
    if not isinstance(value, dict):
        raise AnchorFailure("userinfo_malformed", "not a JSON object")
    check_userinfo_subject(value, id_token)
    return value


def check_userinfo_subject(userinfo: Mapping[str, Any], id_token: IdTokenClaims) -> None:
    """UserInfo ``sub`` must equal the ID token's ``sub`` (token substitution defence)."""
    sub = userinfo.get("sub")
    if not isinstance(sub, str) or sub != id_token.subject:
        raise AnchorFailure("userinfo_subject_mismatch")


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
    """The identity the provider vouches for; AnchorFailure when a required claim is missing.
    ``userinfo``, when given, must have passed :func:`check_userinfo_subject` (checked again)."""
    if anchor.kind != "oidc" or id_token.issuer != settings.issuer:
        raise AnchorFailure("id_token_wrong_issuer", "not this anchor's provider")
    sources: list[Mapping[str, Any]] = [id_token.claims]
    if userinfo is not None:
        check_userinfo_subject(userinfo, id_token)
        sources.append(userinfo)
    verified, evidence = _accepted_verified_claims(sources, settings.trust_framework)
    claims: dict[str, Any] = {}
    for ours, theirs in settings.claims.items():
        if theirs in settings.verified_claims:
            if theirs in verified:
                claims[ours] = verified[theirs]
            continue
        for source in sources:
            if theirs in source and source[theirs] is not None:
                claims[ours] = source[theirs]
                break
    missing = [name for name in required_claims if name not in claims]
    if missing:
        raise AnchorFailure("missing_claims", ", ".join(missing))
    return VerifiedIdentity(
        anchor_id=anchor.id,
        subject=issuer_qualified_subject(settings.issuer, id_token.subject),
        claims=claims,
        assurance_level=level_for_acr(settings, anchor, id_token.acr),
        verified_at=at,
        expires_at=None,
        evidence_digest=digests.sha256_hex(raw_id_token),
        trust_framework=settings.trust_framework,
        evidence=evidence,
        amr=id_token.amr,
    )


def _accepted_verified_claims(
    sources: list[Mapping[str, Any]], trust_framework: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The claims of every ``verified_claims`` element verified under ``trust_framework`` (the
    first value of a claim wins), and the first evidence element of those."""
    claims: dict[str, Any] = {}
    evidence: dict[str, Any] = {}
    for source in sources:
        raw = source.get("verified_claims")
        if raw is None:
            continue
        elements = raw if isinstance(raw, list) else [raw]
        if not elements or len(elements) > MAX_VERIFIED_CLAIMS:
            raise AnchorFailure("verified_claims_malformed", "empty or too many elements")
        for element in elements:
            if not isinstance(element, dict):
                raise AnchorFailure("verified_claims_malformed", "element is not an object")
            verification, element_claims = element.get("verification"), element.get("claims")
            if not isinstance(verification, dict) or not isinstance(element_claims, dict):
                raise AnchorFailure("verified_claims_malformed", "verification or claims missing")
            if verification.get("trust_framework") != trust_framework:
                continue  # verified under another framework: not what this anchor vouches for
            for name, value in element_claims.items():
                if value is not None:
                    claims.setdefault(name, value)
            found = verification.get("evidence")
            if not evidence and isinstance(found, list) and found and isinstance(found[0], dict):
                evidence = dict(found[0])
    return claims, evidence


def explain(reason: str) -> str:
    """Plain-words explanation of a reason code (for the person), with a safe fallback."""
    return REASONS.get(reason, "Your identity provider's details could not be accepted.")
