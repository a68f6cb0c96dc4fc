"""RFC 9396 ``authorization_details``: structural validation common to every type, then the
validator registered for each type. A type with no validator, or one the client is not registered
for, is refused — deny by default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trustanchor import strict_json
from trustanchor.oauth.errors import InvalidAuthorizationDetails

TypeValidator = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Validates one entry of a known type; returns its normalised form or raises
InvalidAuthorizationDetails."""

_VALIDATORS: dict[str, TypeValidator] = {}


def register_type(type_name: str, validator: TypeValidator) -> None:
    _VALIDATORS[type_name] = validator


def supported_types() -> tuple[str, ...]:
    return tuple(sorted(_VALIDATORS))


def parse_authorization_details(
    raw: str | None,
    *,
    allowed_types: tuple[str, ...],
    max_entries: int,
    max_depth: int,
    max_bytes: int = 16384,
) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    try:
        value = strict_json.loads(raw, max_depth=max_depth, max_bytes=max_bytes)
    except strict_json.StrictJSONError as exc:
        raise InvalidAuthorizationDetails(f"not valid JSON: {exc}") from exc
    return validate_authorization_details(
        value, allowed_types=allowed_types, max_entries=max_entries
    )


def validate_authorization_details(
    value: Any, *, allowed_types: tuple[str, ...], max_entries: int
) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list):
        raise InvalidAuthorizationDetails("authorization_details must be a JSON array")
    if not value:
        raise InvalidAuthorizationDetails("authorization_details must not be empty")
    if len(value) > max_entries:
        raise InvalidAuthorizationDetails("too many authorization_details entries")
    result: list[dict[str, Any]] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise InvalidAuthorizationDetails(f"entry {index} is not an object")
        type_name = entry.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise InvalidAuthorizationDetails(f"entry {index} has no type")
        if type_name not in allowed_types:
            raise InvalidAuthorizationDetails(f"type {type_name!r} is not allowed for this client")
        validator = _VALIDATORS.get(type_name)
        if validator is None:
            raise InvalidAuthorizationDetails(f"type {type_name!r} is not supported")
        result.append(validator(entry))
    return tuple(result)


def is_subset(requested: tuple[dict[str, Any], ...], granted: tuple[dict[str, Any], ...]) -> bool:
    """Whether every requested entry was granted exactly (used when refreshing)."""
    canon = {strict_json.dumps_canonical(g) for g in granted}
    return all(strict_json.dumps_canonical(r) in canon for r in requested)
