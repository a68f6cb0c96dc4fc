"""Trust anchors: the organisations whose identity proofing the service accepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from trustanchor.domain.assurance import AssuranceLevel

AnchorKind = Literal["sd_jwt_vc", "x509", "oidc", "federation"]
AnchorStatus = Literal["active", "suspended", "retired"]
ANCHOR_KINDS: tuple[AnchorKind, ...] = ("sd_jwt_vc", "x509", "oidc", "federation")
ANCHOR_STATUSES: tuple[AnchorStatus, ...] = ("active", "suspended", "retired")


@dataclass(frozen=True, slots=True)
class Anchor:
    id: str
    kind: AnchorKind
    display_name: Mapping[str, str]
    assurance_level: AssuranceLevel
    status: AnchorStatus
    settings: Mapping[str, Any]
    anchor_sets: tuple[str, ...] = field(default=())
    updated_at: int = 0

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def name(self, language: str) -> str:
        return self.display_name.get(language) or self.display_name.get("en") or self.id
