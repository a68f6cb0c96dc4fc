"""Assurance levels and the ``acr`` values that express them."""

from __future__ import annotations

from typing import Literal

AssuranceLevel = Literal["low", "substantial", "high"]
LEVELS: tuple[AssuranceLevel, ...] = ("low", "substantial", "high")
ACR_PREFIX = "urn:trustanchor:acr:"


def rank(level: str) -> int:
    """Order of an assurance level; unknown levels rank below every known one."""
    try:
        return LEVELS.index(level)
    except ValueError:
        return -1


def at_least(level: str, minimum: str) -> bool:
    return rank(level) >= rank(minimum) >= 0


def acr_for(level: AssuranceLevel) -> str:
    return ACR_PREFIX + level


def level_from_acr(acr: str) -> AssuranceLevel | None:
    if not acr.startswith(ACR_PREFIX):
        return None
    level = acr[len(ACR_PREFIX) :]
    for known in LEVELS:
        if known == level:
            return known
    return None


ACR_VALUES_SUPPORTED = tuple(acr_for(level) for level in LEVELS)
