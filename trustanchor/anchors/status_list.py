"""IETF Token Status List (draft-ietf-oauth-status-list): read a credential's status reference,
verify the Status List Token, and look up one status.

A Referenced Token carries ``"status": {"status_list": {"idx": N, "uri": "https://..."}}``. The
Status List Token at ``uri`` is a JWT with ``typ`` ``statuslist+jwt``, ``sub`` equal to that
``uri``, and ``"status_list": {"bits": 1|2|4|8, "lst": base64url(zlib(DEFLATE(bytes)))}``.
Status ``idx`` occupies bits ``idx*bits .. idx*bits+bits-1`` counted from the least significant
bit of byte 0. Values: 0 VALID, 1 INVALID (revoked), 2 SUSPENDED, anything else is not a state
we can act on and is treated as "not valid" by the caller.

Decompression is bounded (a few hundred compressed bytes can inflate to gigabytes), and the token
is verified only with keys the caller provides (the anchor's configured keys), never with keys
found in the token. Refusals are :class:`StatusListError` with a ``reason`` from :data:`REASONS`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from trustanchor.anchors.fetcher import Fetcher, FetchError
from trustanchor.digests import b64url_decode
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey

STATUS_LIST_TYP = "statuslist+jwt"
STATUS_LIST_MEDIA_TYPE = "application/statuslist+jwt"
VALID, INVALID, SUSPENDED = 0, 1, 2
ALLOWED_BITS = (1, 2, 4, 8)
DEFAULT_MAX_DECOMPRESSED = 4 * 1024 * 1024  # 32 Mi one-bit statuses
MAX_INDEX = 2**40

REASONS: dict[str, str] = {
    "malformed_status_reference": "The credential's revocation-check information is malformed.",
    "status_unavailable": "We could not check whether the credential is still valid.",
    "status_list_invalid": "The issuer's revocation list could not be verified.",
}

KeyCandidates = Callable[[Mapping[str, Any]], Sequence[PublicKey]]


class StatusListError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class StatusReference:
    uri: str
    idx: int

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "idx": self.idx}


@dataclass(frozen=True, slots=True)
class StatusList:
    bits: int
    data: bytes

    def status(self, idx: int) -> int:
        """The status at ``idx``; an index beyond the list is a broken list, not "valid"."""
        bit = idx * self.bits
        byte, shift = divmod(bit, 8)
        if idx < 0 or byte >= len(self.data):
            raise StatusListError("status_list_invalid", "index beyond the end of the list")
        return (self.data[byte] >> shift) & ((1 << self.bits) - 1)


def status_reference(payload: Mapping[str, Any]) -> StatusReference | None:
    """The ``status.status_list`` reference of a verified payload, or None when it has none.
    A ``status`` claim using only other mechanisms also yields None."""
    status = payload.get("status")
    if status is None:
        return None
    if not isinstance(status, dict):
        raise StatusListError("malformed_status_reference", "status is not an object")
    ref = status.get("status_list")
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise StatusListError("malformed_status_reference", "status_list is not an object")
    idx, uri = ref.get("idx"), ref.get("uri")
    if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < MAX_INDEX:
        raise StatusListError("malformed_status_reference", "idx is not a non-negative integer")
    if not isinstance(uri, str) or not uri or len(uri) > 2048:
        raise StatusListError("malformed_status_reference", "uri is not a string")
    return StatusReference(uri, idx)


def decode_status_list(
    value: Any, *, max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
) -> StatusList:
    """Decode the ``status_list`` claim, inflating at most ``max_decompressed`` bytes."""
    if not isinstance(value, dict):
        raise StatusListError("status_list_invalid", "status_list is not an object")
    bits, lst = value.get("bits"), value.get("lst")
    if isinstance(bits, bool) or bits not in ALLOWED_BITS:
        raise StatusListError("status_list_invalid", "bits must be 1, 2, 4 or 8")
    if not isinstance(lst, str):
        raise StatusListError("status_list_invalid", "lst is not a string")
    try:
        compressed = b64url_decode(lst)
    except ValueError as exc:
        raise StatusListError("status_list_invalid", "lst is not base64url") from exc
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS)  # ZLIB format, as the draft requires
    try:
        data = inflater.decompress(compressed, max_decompressed + 1)
    except zlib.error as exc:
        raise StatusListError("status_list_invalid", "lst is not ZLIB data") from exc
    if len(data) > max_decompressed or inflater.unconsumed_tail:
        raise StatusListError("status_list_invalid", "decompressed list exceeds the limit")
    if not inflater.eof:
        raise StatusListError("status_list_invalid", "lst is truncated")
    return StatusList(int(bits), data)


def verify_status_list_token(
    token: str,
    *,
    expected_uri: str,
    keys: KeyCandidates,
    allowed_algs: Sequence[str],
    max_bytes: int,
    at: int,
    clock_skew: int,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
) -> StatusList:
    """Verify a Status List Token (typ, signature with the caller's keys, ``sub``, ``iat``,
    ``exp``) and return its decoded list."""
    try:
        parsed = jws.parse(token.strip(), max_bytes=max_bytes, allowed_algs=tuple(allowed_algs))
        jws.check_typ(parsed.header, STATUS_LIST_TYP)
        _verify_with_any(parsed, keys(parsed.header))
        claims = parsed.claims()
    except JoseError as exc:
        raise StatusListError("status_list_invalid", f"{exc.reason}: {exc.detail}") from exc
    if claims.get("sub") != expected_uri:
        raise StatusListError("status_list_invalid", "sub does not match the referenced uri")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _is_int(iat) or iat > at + clock_skew:
        raise StatusListError("status_list_invalid", "iat missing or in the future")
    if exp is not None and (not _is_int(exp) or exp <= at - clock_skew):
        raise StatusListError("status_list_invalid", "status list token expired")
    return decode_status_list(claims.get("status_list"), max_decompressed=max_decompressed)


def fetch_status(
    reference: StatusReference,
    *,
    fetcher: Fetcher,
    keys: KeyCandidates,
    allowed_algs: Sequence[str],
    max_bytes: int,
    at: int,
    clock_skew: int,
) -> int:
    """Fetch, verify and read the status of ``reference``. Any failure to obtain a verified
    answer raises (fail closed): the caller never sees "unknown" as "valid"."""
    token = fetch_status_list_token(reference.uri, fetcher=fetcher, max_bytes=max_bytes)
    status_list = verify_status_list_token(
        token,
        expected_uri=reference.uri,
        keys=keys,
        allowed_algs=allowed_algs,
        max_bytes=max_bytes,
        at=at,
        clock_skew=clock_skew,
    )
    return status_list.status(reference.idx)


def fetch_status_list_token(uri: str, *, fetcher: Fetcher, max_bytes: int) -> str:
    """The Status List Token served at ``uri``, unverified: callers pass it to
    :func:`verify_status_list_token` (a periodic re-check fetches each list once and verifies
    it for every anchor that relies on it)."""
    try:
        body = fetcher.get(uri, accept=STATUS_LIST_MEDIA_TYPE, max_bytes=max_bytes)
    except FetchError as exc:
        raise StatusListError("status_unavailable", f"{exc.reason}") from exc
    try:
        return body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise StatusListError("status_list_invalid", "response is not a compact JWT") from exc


def _verify_with_any(parsed: jws.ParsedJWS, candidates: Sequence[PublicKey]) -> None:
    for key in candidates:
        try:
            jws.verify_signature(parsed, key)
            return
        except JoseError:
            continue
    raise JoseError("bad_signature", "no configured key verifies the status list token")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
