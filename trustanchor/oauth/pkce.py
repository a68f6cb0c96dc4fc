"""Proof Key for Code Exchange (RFC 7636), S256 only.

PKCE binds an authorization code to the client instance that started the flow: the PAR request
carries ``code_challenge = BASE64URL(SHA256(code_verifier))`` and only the holder of the verifier
can redeem the code. ``plain`` is refused because it sends the verifier itself through the
front channel, which defeats the purpose (RFC 9700 §2.1.1).

This service requires PKCE for every authorization request (PAR refuses a request without a
challenge), so a code without a stored challenge can never be redeemed: :func:`verify` fails
closed instead of treating "no challenge" as "PKCE not in use". That also blocks the PKCE
downgrade where an attacker strips the challenge and later sends a verifier.
"""

from __future__ import annotations

import hashlib
import re

from trustanchor.digests import b64url_encode, equal
from trustanchor.oauth.errors import InvalidGrant, InvalidRequest

S256 = "S256"
MIN_LENGTH = 43
MAX_LENGTH = 128
# RFC 7636 §4.1/§4.2: unreserved characters [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
# ``[0-9]`` in a str pattern is ASCII only; fullmatch leaves no room for a trailing newline.
_SYNTAX = re.compile(rf"[A-Za-z0-9\-._~]{{{MIN_LENGTH},{MAX_LENGTH}}}")


def _well_formed(value: object) -> bool:
    return isinstance(value, str) and _SYNTAX.fullmatch(value) is not None


def challenge_for(verifier: str) -> str:
    """The S256 transform: ``BASE64URL(SHA256(ASCII(verifier)))`` (always 43 characters)."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def validate_challenge(challenge: object, method: object) -> str:
    """Check the ``code_challenge`` / ``code_challenge_method`` pair of an authorization request.

    The method must be given explicitly as ``S256`` (RFC 7636 defaults a missing method to
    ``plain``, which we refuse). The challenge is checked against the RFC's syntax, 43 to 128
    unreserved characters; a genuine S256 challenge is always exactly 43 characters, and a
    longer one simply never matches a verifier, so accepting the full syntactic range costs
    nothing and keeps us interoperable with clients that validate by the RFC's grammar.
    """
    if method is None:
        raise InvalidRequest("code_challenge_method S256 is required", reason="pkce_method_missing")
    if method != S256:
        raise InvalidRequest(
            "only code_challenge_method S256 is supported", reason="pkce_method_unsupported"
        )
    if challenge is None:
        raise InvalidRequest("code_challenge is required", reason="pkce_challenge_missing")
    if not isinstance(challenge, str) or not _well_formed(challenge):
        raise InvalidRequest(
            "code_challenge must be 43 to 128 unreserved characters",
            reason="pkce_challenge_malformed",
        )
    return challenge


def verify(verifier: object, challenge: str | None) -> None:
    """Check the token request's ``code_verifier`` against the challenge stored with the code.

    Every failure is ``invalid_grant`` (RFC 7636 §4.6). The comparison of the derived challenge
    is constant-time.
    """
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant(
                "code_verifier sent but no code_challenge was registered",
                reason="pkce_no_challenge",
            )
        raise InvalidGrant(
            "no code_challenge was registered for this code", reason="pkce_no_challenge"
        )
    if verifier is None:
        raise InvalidGrant("code_verifier is required", reason="pkce_verifier_missing")
    if not isinstance(verifier, str) or not _well_formed(verifier):
        raise InvalidGrant(
            "code_verifier must be 43 to 128 unreserved characters",
            reason="pkce_verifier_malformed",
        )
    if not equal(challenge_for(verifier), challenge):
        raise InvalidGrant(
            "code_verifier does not match the code_challenge", reason="pkce_mismatch"
        )
