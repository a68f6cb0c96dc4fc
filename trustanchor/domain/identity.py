"""Holders, identities and the finished authentication the protocol engine resumes with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustanchor.domain.assurance import AssuranceLevel


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """What an anchor verifier established about a person (before it is stored)."""

    anchor_id: str
    subject: str  # the stable subject at this anchor
    claims: Mapping[str, Any]  # verified claims, already mapped to OIDC claim names
    assurance_level: AssuranceLevel
    verified_at: int
    expires_at: int | None
    evidence_digest: str  # SHA-256 of the presented evidence, hex
    trust_framework: str
    evidence: Mapping[str, Any] = field(default_factory=dict)  # verified_claims evidence element
    status_reference: Mapping[str, Any] | None = None
    amr: tuple[str, ...] = ()
    # OpenID4VP transaction data (docs/DYNAMIC-LINKING.md): the Key Binding JWT's signed
    # ``transaction_data_hashes`` / ``transaction_data_hashes_alg`` claims as the verifier read
    # them (None: absent), and, once the login method has checked them against what it sent,
    # the digests of the operations they cover (``Authentication.signed_operations``).
    transaction_data_hashes: tuple[str, ...] | None = None
    transaction_data_hashes_alg: str | None = None
    signed_operations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Identity:
    id: str
    holder_id: str
    anchor_id: str
    subject: str
    claims: Mapping[str, Any]
    assurance_level: AssuranceLevel
    verified_at: int
    expires_at: int | None
    evidence_digest: str


@dataclass(frozen=True, slots=True)
class Authentication:
    """A finished login: who, through which anchor, how strongly, when."""

    holder_id: str
    identity_id: str
    anchor_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    trust_framework: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    # How the person was present: "remote" (their own device), or "in_person" at a bank
    # branch's counter terminal, with ``in_person`` naming the branch and the staff operator.
    channel: str = "remote"
    in_person: Mapping[str, str] = field(default_factory=dict)
    # Dynamic linking: ``openid4vp.transaction_data.operation_digest`` of each
    # authorization_details entry whose transaction data this login's wallet presentation
    # signed (its Key Binding JWT held exactly one matching hash per element sent, with the
    # stated algorithm). Only a wallet login made in an interaction sets it, for that
    # interaction's request (docs/DYNAMIC-LINKING.md).
    signed_operations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.channel != "remote":
            extra = {"channel": self.channel, "in_person": dict(self.in_person)}
        if self.signed_operations:
            extra["signed_operations"] = list(self.signed_operations)
        return {
            "holder_id": self.holder_id,
            "identity_id": self.identity_id,
            "anchor_id": self.anchor_id,
            "acr": self.acr,
            "amr": list(self.amr),
            "auth_time": self.auth_time,
            "trust_framework": self.trust_framework,
            "evidence": dict(self.evidence),
            **extra,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Authentication:
        return cls(
            holder_id=data["holder_id"],
            identity_id=data["identity_id"],
            anchor_id=data["anchor_id"],
            acr=data["acr"],
            amr=tuple(data["amr"]),
            auth_time=int(data["auth_time"]),
            trust_framework=data["trust_framework"],
            evidence=data.get("evidence", {}),
            channel=str(data.get("channel", "remote")),
            in_person=dict(data.get("in_person", {})),
            signed_operations=tuple(str(d) for d in data.get("signed_operations", ())),
        )
