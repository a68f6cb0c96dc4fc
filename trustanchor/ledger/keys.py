"""Where the ledger gets the issuer's public keys: a static JWKS, or the issuer's ``jwks_uri``
fetched through a callable the ledger provides and cached here.

The fetch is injected (no HTTP client in this package): the ledger decides how it reaches the
issuer (proxy, TLS pinning, timeouts). The cache refetches when its copy is older than
``max_age`` or when a token names a kid it does not know (the issuer rotated its key), but never
more often than every ``refresh_interval`` seconds, so tokens with invented kids cannot turn the
ledger into a load generator against the issuer. When a refresh fails the last good keys stay in
use for at most ``max_stale`` seconds after they were fetched; after that the ledger refuses
tokens (``keys_unavailable``) rather than trusting keys the issuer may have withdrawn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from trustanchor import strict_json
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, keys_from_jwks
from trustanchor.ledger.errors import LedgerRefusal

JwksDocument = Mapping[str, Any] | bytes | str
"""A JWKS as parsed JSON, or its raw bytes / text (parsed strictly here)."""

_MAX_JWKS_BYTES = 65536

JWKS_MAX_AGE = 300
"""How long :class:`JwksCache` keeps a fetched JWKS by default (seconds). The issuer publishes a
new signing key at least this long before it signs with it (``tokens.key_activation_delay`` is
validated against it), so a cache filled just before a rotation already holds the new key."""


class KeySource(Protocol):
    def key(self, kid: str, at: int) -> PublicKey | None:
        """The issuer's public key named ``kid``, or None when the issuer has no such key.

        Raises :class:`LedgerRefusal` ``keys_unavailable`` when the keys cannot be obtained."""
        ...


def _parse_jwks(document: JwksDocument) -> dict[str, PublicKey]:
    if isinstance(document, bytes | str):
        document = strict_json.loads(document, max_depth=6, max_bytes=_MAX_JWKS_BYTES)
    return keys_from_jwks(dict(document) if isinstance(document, Mapping) else document)


class StaticJwks:
    """A JWKS configured into the ledger. Rotation at the issuer needs a redeploy."""

    def __init__(self, jwks: JwksDocument) -> None:
        self._keys = _parse_jwks(jwks)  # a broken document is a configuration error: raise now

    def key(self, kid: str, at: int) -> PublicKey | None:
        return self._keys.get(kid)


class JwksCache:
    """The issuer's JWKS fetched on demand through ``fetch`` (see the module docstring)."""

    def __init__(
        self,
        fetch: Callable[[], JwksDocument],
        *,
        max_age: int = JWKS_MAX_AGE,
        refresh_interval: int = 30,
        max_stale: int = 3600,
    ) -> None:
        if not 0 < refresh_interval <= max_age <= max_stale:
            raise ValueError("need 0 < refresh_interval <= max_age <= max_stale")
        self._fetch = fetch
        self._max_age = max_age
        self._refresh_interval = refresh_interval
        self._max_stale = max_stale
        self._lock = threading.Lock()
        self._keys: dict[str, PublicKey] | None = None
        self._fetched_at = 0  # when self._keys were obtained
        self._attempted_at: int | None = None  # last fetch attempt, successful or not
        self.last_failure: str | None = None  # why the last refresh failed, for the ledger's log

    def key(self, kid: str, at: int) -> PublicKey | None:
        with self._lock:
            keys = self._keys
            wanted = keys is None or at - self._fetched_at >= self._max_age or kid not in keys
            if wanted and self._may_attempt(at):
                self._refresh(at)
                keys = self._keys
            if keys is None or at - self._fetched_at >= self._max_stale:
                detail = self.last_failure or "no usable JWKS"
                raise LedgerRefusal("keys_unavailable", log_detail=detail)
            return keys.get(kid)

    def _may_attempt(self, at: int) -> bool:
        return self._attempted_at is None or at - self._attempted_at >= self._refresh_interval

    def _refresh(self, at: int) -> None:
        self._attempted_at = at
        try:
            keys = _parse_jwks(self._fetch())
        except (JoseError, strict_json.StrictJSONError) as exc:
            # A document we cannot use is treated like a failed fetch: keep the last good keys.
            self.last_failure = f"unusable JWKS: {exc}"
            return
        except Exception as exc:  # the ledger's fetch failed (network, HTTP status, timeout)
            self.last_failure = f"JWKS fetch failed: {exc.__class__.__name__}"
            return
        self._keys = keys
        self._fetched_at = at
        self.last_failure = None


__all__ = ["JWKS_MAX_AGE", "JwksCache", "JwksDocument", "KeySource", "StaticJwks"]
