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

Caching (:class:`StatusListCache`: :func:`fetch_status` caches only when given one; every
``sd_jwt_vc`` anchor's verifier has one, for its ``status_cache`` seconds, unless that is 0).
A *verified* list is kept for at most ``max_age`` seconds after it was fetched, never past the
token's ``ttl`` (the draft's "maximum amount of time ... that the Status List Token can be
cached by a consumer before a fresh copy SHOULD be retrieved") nor past its ``exp``; a token
whose ``ttl`` is present but not a positive number is not cached. Time is the ``at`` each
check is given (no clock of its own). Entries are keyed by a *scope* and the URI: the scope
names everything the verification depended on (the exact keys with their kids, the algorithm
allow-list, the size limit; :func:`verification_scope`), so a list verified with one anchor's
keys never answers for another anchor, and a key rotation (new keys, new scope) starts cold.
Bounded in entries and in decoded bytes (oldest first out). Fail closed: a miss fetches and
verifies as without a cache, and any failure raises; nothing stale is ever served.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from trustanchor.anchors.fetcher import Fetcher, FetchError
from trustanchor.digests import b64url_decode
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, public_jwk, thumbprint

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


@dataclass(frozen=True, slots=True)
class VerifiedStatusList:
    """A verified Status List Token's list and what says how long it may be kept: ``exp``
    (None: absent) and ``ttl`` in whole seconds (None: absent; 0: present but not a positive
    number, so not to be cached)."""

    status_list: StatusList
    exp: int | None
    ttl: int | None


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
    return read_status_list_token(
        token,
        expected_uri=expected_uri,
        keys=keys,
        allowed_algs=allowed_algs,
        max_bytes=max_bytes,
        at=at,
        clock_skew=clock_skew,
        max_decompressed=max_decompressed,
    ).status_list


def read_status_list_token(
    token: str,
    *,
    expected_uri: str,
    keys: KeyCandidates,
    allowed_algs: Sequence[str],
    max_bytes: int,
    at: int,
    clock_skew: int,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
) -> VerifiedStatusList:
    """:func:`verify_status_list_token` (every check, the same refusals), also returning the
    token's ``exp`` and ``ttl`` for a cache."""
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
    decoded = decode_status_list(claims.get("status_list"), max_decompressed=max_decompressed)
    return VerifiedStatusList(decoded, exp, _ttl(claims))


def _ttl(claims: Mapping[str, Any]) -> int | None:
    """``ttl`` in whole seconds: None when absent, 0 when not a positive finite number."""
    if "ttl" not in claims:
        return None
    ttl = claims["ttl"]
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl):
        return 0
    return max(int(ttl), 0)


@dataclass(frozen=True, slots=True)
class _Cached:
    status_list: StatusList
    stored_at: int
    fresh_until: int  # exclusive


class StatusListCache:
    """Verified Status Lists by (scope, URI), each until the earliest of ``max_age`` seconds
    after it was fetched, its ``ttl`` and its ``exp``; at most ``max_entries`` lists and
    ``max_bytes`` decoded bytes (the oldest go first). Thread-safe. See the module docstring."""

    def __init__(
        self, *, max_age: int = 300, max_entries: int = 64, max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        if max_age <= 0 or max_entries <= 0 or max_bytes <= 0:
            raise ValueError("max_age, max_entries and max_bytes must be positive")
        self.max_age, self.max_entries, self.max_bytes = max_age, max_entries, max_bytes
        self._entries: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, scope: str, uri: str, at: int) -> StatusList | None:
        """The list stored for ``uri`` in ``scope`` if it is fresh at ``at``, else None. An
        instant before the list was fetched is a miss too (the list may not exist yet then)."""
        with self._lock:
            entry = self._entries.get((scope, uri))
            if entry is None:
                return None
            if at >= entry.fresh_until:
                self._remove((scope, uri))
                return None
            return entry.status_list if at >= entry.stored_at else None

    def put(self, scope: str, uri: str, verified: VerifiedStatusList, *, at: int) -> None:
        """Keep a list verified at ``at`` (not at all when it may not be kept, or is larger
        than the whole budget)."""
        fresh_until = at + self.max_age
        if verified.ttl is not None:
            fresh_until = min(fresh_until, at + verified.ttl)
        if verified.exp is not None:
            fresh_until = min(fresh_until, verified.exp)
        size = len(verified.status_list.data)
        key = (scope, uri)
        with self._lock:
            self._remove(key)
            if fresh_until <= at or size > self.max_bytes:
                return
            while self._entries and (
                len(self._entries) >= self.max_entries or self._bytes + size > self.max_bytes
            ):
                self._remove(next(iter(self._entries)))
            self._entries[key] = _Cached(verified.status_list, at, fresh_until)
            self._bytes += size

    def _remove(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.status_list.data)


def verification_scope(
    keys: Mapping[str, PublicKey], allowed_algs: Sequence[str], max_bytes: int
) -> str:
    """What a Status List Token's verification depends on besides the token and the instant:
    every configured key by its kid and RFC 7638 thumbprint (the exact key material), the
    algorithm allow-list and the size limit. Cache entries are kept per scope."""
    named = sorted(f"{kid}={thumbprint(public_jwk(key))}" for kid, key in keys.items())
    return " ".join(named) + "|" + ",".join(allowed_algs) + f"|{max_bytes}"


def fetch_status(
    reference: StatusReference,
    *,
    fetcher: Fetcher,
    keys: KeyCandidates,
    allowed_algs: Sequence[str],
    max_bytes: int,
    at: int,
    clock_skew: int,
    cache: StatusListCache | None = None,
    scope: str = "",
) -> int:
    """Fetch, verify and read the status of ``reference``. Any failure to obtain a verified
    answer raises (fail closed): the caller never sees "unknown" as "valid".

    With a ``cache``, a list verified within ``scope`` (:func:`verification_scope` of the same
    ``keys``, ``allowed_algs`` and ``max_bytes``) and still fresh at ``at`` is read instead of
    fetched again; a list fetched here is kept in it."""
    if cache is not None:
        if not scope:
            raise ValueError("a status list cache needs the verification scope")
        cached = cache.get(scope, reference.uri, at)
        if cached is not None:
            return cached.status(reference.idx)
    token = fetch_status_list_token(reference.uri, fetcher=fetcher, max_bytes=max_bytes)
    verified = read_status_list_token(
        token,
        expected_uri=reference.uri,
        keys=keys,
        allowed_algs=allowed_algs,
        max_bytes=max_bytes,
        at=at,
        clock_skew=clock_skew,
    )
    if cache is not None:
        cache.put(scope, reference.uri, verified, at=at)
    return verified.status_list.status(reference.idx)


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
