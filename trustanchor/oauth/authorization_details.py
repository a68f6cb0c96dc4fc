"""RFC 9396 ``authorization_details``: structural validation common to every type, then the
validator registered for each type. A type with no validator, or one the client is not registered
for, is refused — deny by default.

The registry is the table of :mod:`trustanchor.oauth.detail_types` (``account_link``,
``value_transfer``, ...), fixed at import: a type exists only with its typed operation here and
its decision in ``services/operation_kinds.py``, so none can be added at run time.
:func:`parse_operations` turns validated entries into typed operations once, for the
authorization request and the grant to carry.

"At most one entry of each type per request" is a per-type flag checked here, in the structural
validator, rather than by each caller: PAR and the refresh comparison at the token endpoint both
go through :func:`validate_authorization_details`, so neither can forget it (a refresh naming the
granted transfer twice would otherwise pass :func:`is_subset`).

Descriptions never repeat what the client sent beyond a short member name: an unknown ``type``
is "unsupported", a JSON syntax error is clipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from trustanchor import strict_json
from trustanchor.oauth.detail_types import (
    BUILTIN_TYPES,
    SCHEMA_DIALECT,
    DetailType,
    Operation,
    load_schema,
)
from trustanchor.oauth.errors import InvalidAuthorizationDetails

__all__ = [
    "Operation",
    "is_one_time",
    "is_subset",
    "parse_authorization_details",
    "parse_operations",
    "supported_types",
    "type_schema",
    "validate_authorization_details",
]

_TYPES: Mapping[str, DetailType] = MappingProxyType({t.name: t for t in BUILTIN_TYPES})
_MAX_ECHO = 80


def supported_types() -> tuple[str, ...]:
    return tuple(sorted(_TYPES))


def parse_operations(entries: Iterable[Mapping[str, Any]]) -> tuple[Operation, ...]:
    """Validated entries as typed operations, in order. An entry of a type we do not have is
    refused (InvalidAuthorizationDetails), never skipped: deny by default."""
    operations: list[Operation] = []
    for entry in entries:
        detail_type = _TYPES.get(entry.get("type"))  # type: ignore[arg-type]
        if detail_type is None:
            raise InvalidAuthorizationDetails("the type is not supported")
        operations.append(detail_type.typed(entry))
    return tuple(operations)


def is_one_time(entries: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a grant of these entries authorises a one-time movement (a transfer, a funding):
    short-lived access token, no refresh token. An unknown type counts as one-time (the stricter
    answer)."""
    for entry in entries:
        detail_type = _TYPES.get(entry.get("type"))  # type: ignore[arg-type]
        if detail_type is None or detail_type.one_time:
            return True
    return False


def type_schema(type_name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a supported type, without ``$id`` (the web layer adds
    the URL it serves it at). LookupError for an unknown type or one without a schema."""
    detail_type = _TYPES.get(type_name)
    if detail_type is None:
        raise LookupError(f"no schema for authorization_details type {type_name!r}")
    schema = load_schema(detail_type.schema_file)
    if schema.get("$schema") != SCHEMA_DIALECT:
        raise LookupError(f"the schema of {type_name!r} is not draft 2020-12")
    return schema


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
        raise InvalidAuthorizationDetails(
            f"authorization_details is not valid JSON: {_clip(str(exc))}"
        ) from exc
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
    seen: set[str] = set()
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise InvalidAuthorizationDetails(f"entry {index} is not an object")
        type_name = entry.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise InvalidAuthorizationDetails(f"entry {index} has no type")
        detail_type = _TYPES.get(type_name)
        if detail_type is None:
            raise InvalidAuthorizationDetails(f"entry {index}: the type is not supported")
        if type_name not in allowed_types:
            raise InvalidAuthorizationDetails(
                f"entry {index}: type {type_name} is not allowed for this client"
            )
        if detail_type.alone and len(value) > 1:
            raise InvalidAuthorizationDetails(
                f"entry {index}: {type_name} must be the only entry of its request"
            )
        if detail_type.at_most_one and type_name in seen:
            raise InvalidAuthorizationDetails(
                f"entry {index}: at most one {type_name} entry is allowed per request"
            )
        seen.add(type_name)
        try:
            result.append(detail_type.validator(entry))
        except InvalidAuthorizationDetails as exc:
            raise InvalidAuthorizationDetails(
                f"entry {index} ({type_name}): {exc.description}"
            ) from exc
    return tuple(result)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 1] + "…"


def is_subset(requested: tuple[dict[str, Any], ...], granted: tuple[dict[str, Any], ...]) -> bool:
    """Whether every requested entry was granted exactly (used when refreshing)."""
    canon = {strict_json.dumps_canonical(g) for g in granted}
    return all(strict_json.dumps_canonical(r) in canon for r in requested)
