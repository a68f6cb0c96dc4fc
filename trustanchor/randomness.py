"""Injected randomness for identifiers, nonces and secrets."""

from __future__ import annotations

import secrets
from typing import Protocol


class Randomness(Protocol):
    def token(self, nbytes: int = 32) -> str:
        """A URL-safe random string carrying ``nbytes`` bytes of entropy."""
        ...


class SystemRandomness:
    def token(self, nbytes: int = 32) -> str:
        return secrets.token_urlsafe(nbytes)


class SequenceRandomness:
    """Deterministic tokens for tests: ``prefix-1``, ``prefix-2``, ... padded to look random."""

    def __init__(self, prefix: str = "t") -> None:
        self._prefix = prefix
        self._n = 0

    def token(self, nbytes: int = 32) -> str:
        self._n += 1
        base = f"{self._prefix}{self._n}"
        return base + "x" * max(0, 43 - len(base))
