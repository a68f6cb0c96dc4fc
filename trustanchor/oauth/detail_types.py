"""The authorization_details types this service understands, each with its validator and its
JSON Schema (a package data file under ``oauth/schemas/``).

:mod:`trustanchor.oauth.authorization_details` seeds its registry from :data:`BUILTIN_TYPES` when
it is imported, so every entry point that validates authorization_details (PAR, the refresh
comparison at the token endpoint, discovery, tests) sees the same types without having to call a
set-up function first — there is no order of imports in which the registry is still empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from trustanchor.oauth import account_link, value_transfer

TypeValidator = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Validates one entry of a known type; returns its normalised form or raises
InvalidAuthorizationDetails."""

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_FILE = re.compile(r"[a-z][a-z0-9_]*\.schema\.json")


@dataclass(frozen=True, slots=True)
class DetailType:
    """``at_most_one``: a request may carry at most one entry of this type (true for both of
    ours: two transfers in one request would need an order and a partial-failure story)."""

    name: str
    validator: TypeValidator
    schema_file: str | None
    at_most_one: bool = True


BUILTIN_TYPES: tuple[DetailType, ...] = (
    DetailType(account_link.TYPE, account_link.validate, "account_link.schema.json"),
    DetailType(value_transfer.TYPE, value_transfer.validate, "value_transfer.schema.json"),
)


def load_schema(file_name: str) -> dict[str, Any]:
    """A fresh copy of the packaged schema ``file_name`` (callers may add ``$id``)."""
    parsed: dict[str, Any] = json.loads(_schema_text(file_name))
    return parsed


@cache
def _schema_text(file_name: str) -> str:
    if not _SCHEMA_FILE.fullmatch(file_name):
        raise ValueError(f"not a schema file name: {file_name!r}")
    return files("trustanchor.oauth").joinpath("schemas", file_name).read_text(encoding="utf-8")
