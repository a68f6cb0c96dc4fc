"""Generic SD-JWT processing (RFC 9901, Selective Disclosure for JWTs): split a presentation,
decode Disclosures, and rebuild the processed payload from the Issuer-signed payload.

This module knows nothing about trust: it never verifies a signature. The caller verifies the
Issuer-signed JWT first and hands its *verified* payload to :func:`reconstruct`. Keeping the
structural rules here (and only here) means the credential verifier reads as a list of trust
checks, and any other SD-JWT consumer (an offline audit tool, say) applies identical rules.

The rules enforced are the verifier rules of RFC 9901 section 7.1:
- every Disclosure's digest (base64url SHA-256 over the Disclosure *as presented*) must be
  referenced exactly once, either in an object's ``_sd`` array (3-element Disclosure) or as an
  array element ``{"...": digest}`` (2-element Disclosure);
- a digest that appears more than once anywhere (payload or Disclosures) is refused;
- a disclosed claim name may not be ``_sd`` or ``...`` nor collide with a claim already present;
- digests that match no Disclosure are decoys and are silently dropped.

Every refusal is an :class:`SdJwtError` whose ``reason`` is one of :data:`REASONS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustanchor import strict_json
from trustanchor.digests import b64url_decode, b64url_encode

SEPARATOR = "~"
SD_KEY = "_sd"
SD_ALG_KEY = "_sd_alg"
ARRAY_KEY = "..."
SUPPORTED_SD_ALG = "sha-256"
# Nesting of the rebuilt payload (Disclosures inside Disclosures add up); bounds recursion.
MAX_TOTAL_DEPTH = 32

REASONS: dict[str, str] = {
    "presentation_too_large": "The presented credential is larger than we accept.",
    "too_many_disclosures": "The presented credential reveals more items than we accept.",
    "malformed_presentation": "The presented credential is not in the expected format.",
    "malformed_disclosure": "One of the revealed items of the credential is not readable.",
    "malformed_sd_claims": "The credential's list of hidden items is malformed.",
    "unsupported_sd_alg": "The credential uses a hashing method we do not accept.",
    "disclosure_not_referenced": "A revealed item does not belong to this credential.",
    "duplicate_digest": "The credential refers to the same item more than once.",
    "invalid_disclosed_claim": "A revealed item has a name that is not allowed or already used.",
    "nesting_too_deep": "The credential is nested too deeply.",
}


class SdJwtError(Exception):
    """A structural SD-JWT rule was broken. ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class SdJwtParts:
    """A compact SD-JWT (+KB) split at its ``~`` separators, every part kept as presented."""

    issuer_jwt: str
    disclosures: tuple[str, ...]
    kb_jwt: str | None  # None when the presentation ends with "~" (no key binding)

    @property
    def sd_jwt(self) -> str:
        """The SD-JWT without the KB-JWT: ``<issuer JWT>~<D1>~...~<Dn>~``. This exact string is
        what the KB-JWT's ``sd_hash`` covers (RFC 9901 section 4.3.1)."""
        return SEPARATOR.join((self.issuer_jwt, *self.disclosures)) + SEPARATOR


@dataclass(frozen=True, slots=True)
class Disclosure:
    encoded: str  # as presented; the digest is computed over these ASCII bytes
    digest: str
    salt: str
    name: str | None  # None for an array-element Disclosure
    value: Any


def split(presentation: Any, *, max_bytes: int, max_disclosures: int) -> SdJwtParts:
    """Split a compact SD-JWT or SD-JWT+KB, refusing oversize input before doing any work."""
    if not isinstance(presentation, str) or not presentation.isascii():
        raise SdJwtError("malformed_presentation", "not an ASCII string")
    if len(presentation) > max_bytes:
        raise SdJwtError("presentation_too_large", f"{len(presentation)} > {max_bytes} bytes")
    # Counting separators is linear and allocation-free: refuse floods before splitting.
    separators = presentation.count(SEPARATOR)
    if separators == 0:
        raise SdJwtError("malformed_presentation", "no '~' separator")
    if separators - 1 > max_disclosures:
        raise SdJwtError("too_many_disclosures", f"more than {max_disclosures} disclosures")
    parts = presentation.split(SEPARATOR)
    issuer_jwt, middle, last = parts[0], parts[1:-1], parts[-1]
    if not issuer_jwt or not all(middle):
        raise SdJwtError("malformed_presentation", "empty component")
    return SdJwtParts(issuer_jwt, tuple(middle), last or None)


def digest_of(encoded: str) -> str:
    """base64url(SHA-256(ASCII bytes of the Disclosure as presented))."""
    return b64url_encode(hashlib.sha256(encoded.encode("ascii")).digest())


def decode_disclosure(encoded: str, *, max_depth: int) -> Disclosure:
    """Decode one Disclosure: ``[salt, name, value]`` or ``[salt, value]`` (strict JSON)."""
    try:
        raw = b64url_decode(encoded)
        decoded = strict_json.loads(raw, max_depth=max_depth + 1)
    except (ValueError, strict_json.StrictJSONError) as exc:
        raise SdJwtError("malformed_disclosure", str(exc)) from exc
    if not isinstance(decoded, list) or len(decoded) not in (2, 3):
        raise SdJwtError("malformed_disclosure", "not an array of 2 or 3 elements")
    salt = decoded[0]
    if not isinstance(salt, str):
        raise SdJwtError("malformed_disclosure", "salt is not a string")
    digest = digest_of(encoded)
    if len(decoded) == 2:
        return Disclosure(encoded, digest, salt, None, decoded[1])
    name = decoded[1]
    if not isinstance(name, str):
        raise SdJwtError("malformed_disclosure", "claim name is not a string")
    if name in (SD_KEY, ARRAY_KEY):
        raise SdJwtError("invalid_disclosed_claim", f"claim name {name!r} is reserved")
    return Disclosure(encoded, digest, salt, name, decoded[2])


def decode_disclosures(encoded: Iterable[str], *, max_depth: int) -> tuple[Disclosure, ...]:
    return tuple(decode_disclosure(item, max_depth=max_depth) for item in encoded)


def check_sd_alg(payload: Mapping[str, Any]) -> None:
    """``_sd_alg`` absent (meaning sha-256) or exactly "sha-256"; anything else is refused."""
    if SD_ALG_KEY in payload and payload[SD_ALG_KEY] != SUPPORTED_SD_ALG:
        raise SdJwtError("unsupported_sd_alg", f"_sd_alg {payload[SD_ALG_KEY]!r}")


def reconstruct(payload: Mapping[str, Any], disclosures: Sequence[Disclosure]) -> dict[str, Any]:
    """The processed payload: Disclosures substituted, ``_sd``/``_sd_alg``/decoys removed.

    ``payload`` must be the verified Issuer-signed payload. Refuses unreferenced Disclosures,
    repeated digests, reserved or colliding claim names, and Disclosures of the wrong shape for
    the place they are referenced from.
    """
    check_sd_alg(payload)
    by_digest: dict[str, Disclosure] = {}
    for disclosure in disclosures:
        if disclosure.digest in by_digest:
            raise SdJwtError("duplicate_digest", "the same disclosure is presented twice")
        by_digest[disclosure.digest] = disclosure
    state = _State(by_digest)
    result = state.object(payload, depth=0, top_level=True)
    unused = by_digest.keys() - state.used
    if unused:
        raise SdJwtError("disclosure_not_referenced", f"{len(unused)} unreferenced disclosure(s)")
    return result


class _State:
    """One reconstruction: the Disclosures by digest and every digest seen so far."""

    def __init__(self, by_digest: Mapping[str, Disclosure]) -> None:
        self.by_digest = by_digest
        self.seen: set[str] = set()
        self.used: set[str] = set()

    def _see(self, digest: Any) -> Disclosure | None:
        if not isinstance(digest, str):
            raise SdJwtError("malformed_sd_claims", "digest is not a string")
        if digest in self.seen:
            raise SdJwtError("duplicate_digest", "a digest appears more than once")
        self.seen.add(digest)
        disclosure = self.by_digest.get(digest)
        if disclosure is not None:
            self.used.add(digest)
        return disclosure

    def value(self, value: Any, *, depth: int) -> Any:
        if isinstance(value, dict):
            return self.object(value, depth=depth, top_level=False)
        if isinstance(value, list):
            return self.array(value, depth=depth)
        return value

    def object(self, obj: Mapping[str, Any], *, depth: int, top_level: bool) -> dict[str, Any]:
        if depth > MAX_TOTAL_DEPTH:
            raise SdJwtError("nesting_too_deep")
        result: dict[str, Any] = {}
        for key, member in obj.items():
            if key == SD_KEY or (top_level and key == SD_ALG_KEY):
                continue
            result[key] = self.value(member, depth=depth + 1)
        digests = obj.get(SD_KEY, [])
        if not isinstance(digests, list):
            raise SdJwtError("malformed_sd_claims", "_sd is not an array")
        for digest in digests:
            disclosure = self._see(digest)
            if disclosure is None:
                continue  # decoy, or a claim the holder chose not to reveal
            if disclosure.name is None:
                raise SdJwtError("malformed_disclosure", "array-element disclosure in _sd")
            if disclosure.name in result or disclosure.name in obj:
                raise SdJwtError("invalid_disclosed_claim", f"{disclosure.name!r} already present")
            result[disclosure.name] = self.value(disclosure.value, depth=depth + 1)
        return result

    def array(self, items: Sequence[Any], *, depth: int) -> list[Any]:
        if depth > MAX_TOTAL_DEPTH:
            raise SdJwtError("nesting_too_deep")
        result: list[Any] = []
        for item in items:
            if isinstance(item, dict) and len(item) == 1 and ARRAY_KEY in item:
                disclosure = self._see(item[ARRAY_KEY])
                if disclosure is None:
                    continue  # undisclosed element or decoy: removed from the array
                if disclosure.name is not None:
                    raise SdJwtError("malformed_disclosure", "object-property disclosure in array")
                result.append(self.value(disclosure.value, depth=depth + 1))
            else:
                result.append(self.value(item, depth=depth + 1))
        return result


def top_level_disclosed_names(
    payload: Mapping[str, Any], disclosures: Sequence[Disclosure]
) -> frozenset[str]:
    """Names of claims revealed directly in the top-level object (to police claims that a
    profile says must never be selectively disclosable). Call after :func:`reconstruct`."""
    digests = payload.get(SD_KEY, [])
    if not isinstance(digests, list):
        return frozenset()
    top = {d for d in digests if isinstance(d, str)}
    return frozenset(d.name for d in disclosures if d.digest in top and d.name is not None)
