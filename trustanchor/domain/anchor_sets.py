"""Anchor sets: named groups of anchors that relying parties treat as one trust domain.

Linking and transfers are only allowed between identities verified by anchors of a common set,
under the set's ``policy`` (minimum assurance per operation, step-up thresholds, limits). The
policy's full schema is owned by the policy engine; here it is an opaque JSON-like mapping.
``version`` goes up whenever the policy changes, so a decision can record which policy it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AnchorSet:
    id: str
    display_name: Mapping[str, str]
    policy: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    updated_at: int = 0

    def name(self, language: str) -> str:
        return self.display_name.get(language) or self.display_name.get("en") or self.id
