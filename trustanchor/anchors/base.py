"""The interface every anchor verifier implements, and its single public failure type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import VerifiedIdentity


class AnchorFailure(Exception):
    """Verification at an anchor failed. ``reason`` is a stable code from REASONS (shown to the
    person in plain words and logged for the operator); ``detail`` is for the log only."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the service expects of one presentation: the nonce it issued, the audience (our
    verifier identifier), and which claims the request needs."""

    nonce: str
    audience: str
    required_claims: tuple[str, ...] = ()


class AnchorVerifier(Protocol):
    anchor: Anchor

    def verify(self, evidence: str, *, expected: Expectation, at: int) -> VerifiedIdentity:
        """Verify ``evidence`` at instant ``at``; raise AnchorFailure on any problem."""
        ...
