"""The authorization_details types this service understands: one row per type with its validator,
its typed operation (the entry parsed once, what the services and the policy work with), its
JSON Schema (a package data file under ``oauth/schemas/``) and whether a token for it is
one-time (short-lived, never refreshed).

This is the protocol half of the operation registry; ``services/operation_kinds.py`` holds the
other half (policy decision, counting, execution at consent) with one row per type of this
table, and a test keeps the two tables' keys equal. Adding a type: its module under ``oauth/``
(validator + typed dataclass), its schema, a row here, a row there, and its wording for people
(``web/operations.py``). :mod:`trustanchor.oauth.authorization_details` reads this table when
it is imported, so every entry point that validates authorization_details (PAR, the refresh
comparison at the token endpoint, discovery, tests) sees the same types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, TypeAlias

from trustanchor.oauth import account_link, funding, standing_funding, value_transfer
from trustanchor.oauth.account_link import AccountLinkDetail
from trustanchor.oauth.funding import FundingDetail
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.oauth.value_transfer import ValueTransferDetail

TypeValidator = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Validates one entry of a known type; returns its normalised form or raises
InvalidAuthorizationDetails."""

Operation: TypeAlias = (
    AccountLinkDetail | ValueTransferDetail | FundingDetail | StandingFundingDetail
)
"""An authorization_details entry parsed into its type's dataclass (each has ``to_entry()``)."""

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SCHEMA_FILE = re.compile(r"[a-z][a-z0-9_]*\.schema\.json")


@dataclass(frozen=True, slots=True)
class DetailType:
    """``typed``: the entry as its dataclass (validated again: a stored entry is not trusted
    blindly). ``one_time``: a token for it authorises one movement now (the transfer token
    lifetime, no refresh token). ``at_most_one``: a request may carry at most one entry of this
    type (true for all of ours: two movements in one request would need an order and a
    partial-failure story). ``alone``: the only entry of its request (a standing authorization
    lives with its own grant and refresh token; beside a one-time movement it would get
    neither)."""

    name: str
    validator: TypeValidator
    typed: Callable[[Mapping[str, Any]], Operation]
    schema_file: str
    one_time: bool
    at_most_one: bool = True
    alone: bool = False  # must be the only entry of its request


BUILTIN_TYPES: tuple[DetailType, ...] = (
    DetailType(
        account_link.TYPE,
        account_link.validate,
        AccountLinkDetail.from_entry,
        "account_link.schema.json",
        one_time=False,
    ),
    DetailType(
        value_transfer.TYPE,
        value_transfer.validate,
        ValueTransferDetail.from_entry,
        "value_transfer.schema.json",
        one_time=True,
    ),
    DetailType(
        funding.TYPE,
        funding.validate,
        FundingDetail.from_entry,
        "funding.schema.json",
        one_time=True,
    ),
    # Requests only (the validator refuses the members the service grants); its movements are
    # ``funding`` tokens minted one at a time (services/standing_movements.py).
    DetailType(
        standing_funding.TYPE,
        standing_funding.validate,
        StandingFundingDetail.from_entry,
        "standing_funding.schema.json",
        one_time=False,
        alone=True,
    ),
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
