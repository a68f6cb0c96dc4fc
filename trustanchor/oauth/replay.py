"""The replay-protection port: a jti (DPoP proof, client assertion, key-binding JWT) may be used
once. Implementations record it with one atomic unique insert."""

from __future__ import annotations

from typing import Protocol


class JtiRegistry(Protocol):
    def first_use(self, namespace: str, jti: str, expires_at: int) -> bool:
        """Record ``jti`` in ``namespace``; True only for the first caller, ever, until expiry."""
        ...
