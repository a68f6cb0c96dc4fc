"""The KYC attributes an intermediary registers for an account's holder, kept only as a keyed
digest, and their comparison with the verified claims of the identity that binds the account.

An intermediary that has identified its customer (name, date of birth) may send those attributes
with ``POST /accounts`` (``"kyc": {"family_name": …, "given_name": …, "birthdate": …}``). We keep
one digest over the set, never a value: HMAC-SHA256 under the service's pairwise secret over
the context ``account-kyc``, the normaliser's id (:data:`NORMALIZER_ID`), the account id (so the
same person's accounts carry unrelated digests) and, for each claim in name order, its name and
its value under :func:`normalize_value` (Unicode NFKC, case, kana, spaces: see
``domain/claim_normalizer.py``). The claim names and the normaliser id are stored beside the
digest: they say nothing about the person, and they let a comparison recompute the digest from
the binding identity's verified claims (all must be present, all must match: one digest over
the set answers "all equal" and nothing about which claim differs).

A digest made under another normaliser id never matches (fail closed): a change of the
normalisation rules cannot make an old digest compare equal by accident.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection

from trustanchor.digests import equal, keyed_digest
from trustanchor.domain.accounts import AccountKyc
from trustanchor.domain.claim_normalizer import NORMALIZER_ID, normalize_value
from trustanchor.storage import accounts_repo

CONTEXT: Final = "account-kyc"
KYC_CLAIMS: Final = ("birthdate", "family_name", "given_name")
REQUIRED_KYC_CLAIMS: Final = frozenset({"family_name", "given_name"})
MAX_NAME: Final = 100
_BIRTHDATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class KycError(ValueError):
    """Registered KYC attributes were refused; the message is safe to show the intermediary
    (it names the claim, never echoes a value)."""


def parse_attributes(value: object) -> dict[str, str]:
    """Validate the ``kyc`` member of a registration: an object with only known claim names,
    ``family_name`` and ``given_name`` required, ``birthdate`` optional; names are strings of
    1..100 characters with no control characters and not only spaces; ``birthdate`` is a real
    date as ``YYYY-MM-DD``."""
    if not isinstance(value, Mapping):
        raise KycError("kyc must be a JSON object")
    unknown = sorted(str(name)[:40] for name in value if name not in KYC_CLAIMS)
    if unknown:
        raise KycError(f"kyc: unknown claim {unknown[0]!r} (known: {', '.join(KYC_CLAIMS)})")
    missing = sorted(REQUIRED_KYC_CLAIMS - set(value))
    if missing:
        raise KycError(f"kyc: {missing[0]} is required")
    attributes: dict[str, str] = {}
    for name in sorted(value):
        text = value[name]
        if name == "birthdate":
            if not isinstance(text, str) or not _BIRTHDATE.fullmatch(text) or not _date(text):
                raise KycError("kyc: birthdate must be a date as YYYY-MM-DD")
        elif (
            not isinstance(text, str)
            or not 1 <= len(text) <= MAX_NAME
            or not text.strip()
            or any(unicodedata.category(ch)[0] == "C" for ch in text)
        ):
            raise KycError(
                f"kyc: {name} must be a string of 1..{MAX_NAME} characters without control "
                "characters"
            )
        attributes[name] = text
    return attributes


def _date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _digest(key: bytes, account_id: str, claims: Mapping[str, Any], names: tuple[str, ...]) -> str:
    parts = [CONTEXT, NORMALIZER_ID, account_id]
    for name in names:
        parts += [name, normalize_value(claims[name])]
    return keyed_digest(key, *parts)


def register(key: bytes, account_id: str, attributes: Mapping[str, str]) -> AccountKyc:
    """What is stored for validated ``attributes`` of account ``account_id``."""
    names = tuple(sorted(attributes))
    return AccountKyc(NORMALIZER_ID, names, _digest(key, account_id, attributes, names))


def matches(key: bytes, account_id: str, kyc: AccountKyc, claims: Mapping[str, Any]) -> bool:
    """Whether an identity's verified ``claims`` match the registered attributes: every
    registered claim present (a missing claim proves nothing) and the digest equal."""
    if kyc.normalizer != NORMALIZER_ID:
        return False
    if any(claims.get(name) is None for name in kyc.claims):
        return False
    return equal(_digest(key, account_id, claims, kyc.claims), kyc.digest)


def claims_to_ask(
    conn: Connection, details: Sequence[Mapping[str, Any]], client_id: str
) -> tuple[str, ...]:
    """The claim names the wallet must disclose so that an ``account_link`` of ``client_id``
    can be compared with the KYC attributes it registered for the accounts it will bind (its
    own accounts not yet bound, or flagged for re-verification). Empty when there are none."""
    ids = [
        str(entry[member])
        for entry in details
        if entry.get("type") == "account_link"
        for member in ("deposit_account", "wallet_account")
        if isinstance(entry.get(member), str)
    ]
    names: set[str] = set()
    for account in accounts_repo.get_many(conn, ids).values():
        if account.client_id != client_id or account.kyc is None:
            continue
        if account.holder_id is None or account.status == "flagged":
            names.update(account.kyc.claims)
    return tuple(sorted(names))
