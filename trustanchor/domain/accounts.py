"""Accounts that intermediaries register, and the links between one holder's accounts.

An account is an intermediary's deposit account or CBDC wallet, known to us by an opaque id of
ours (``acc_…``). The intermediary's own reference (which may be a bank account number) is never
stored: only a keyed digest of it, so registering the same reference twice finds the same account
and a leaked database reveals no account numbers.

An account is *bound* to a holder only when that holder logs in and consents (through an
``account_link``); the binding records the identity — and so the anchor — that vouched for it.
A binding whose anchor is suspended or whose credential was revoked is *flagged*: it stays, but
decisions relying on it fail until the holder logs in again with a valid credential.

Only the registering intermediary's own request binds an account. It may register the KYC
attributes it holds for the account's holder; like the reference, they are kept only as a keyed
digest (:class:`AccountKyc`, computed by ``services/account_kyc.py``), and an anchor set's policy
can require that the identity binding the account matches them (docs/POLICY.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

AccountKind = Literal["bank_deposit", "cbdc_wallet"]
ACCOUNT_KINDS: tuple[AccountKind, ...] = ("bank_deposit", "cbdc_wallet")
AccountStatus = Literal["active", "flagged", "closed"]

ACCOUNT_ID = re.compile(r"acc_[A-Za-z0-9_-]{16,60}")
LINK_ID = re.compile(r"lnk_[A-Za-z0-9_-]{16,60}")
MAX_LABEL = 64
MAX_REFERENCE = 128


def is_account_id(value: object) -> bool:
    return isinstance(value, str) and ACCOUNT_ID.fullmatch(value) is not None


def is_link_id(value: object) -> bool:
    return isinstance(value, str) and LINK_ID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class AccountKyc:
    """Registered KYC attributes, as stored: the normaliser and the claim names (sorted) the
    digest was made with, and the keyed digest over the normalised values. No value is kept."""

    normalizer: str
    claims: tuple[str, ...]
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"normalizer": self.normalizer, "claims": list(self.claims), "digest": self.digest}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AccountKyc:
        return cls(
            normalizer=str(data["normalizer"]),
            claims=tuple(str(name) for name in data["claims"]),
            digest=str(data["digest"]),
        )


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    client_id: str  # the intermediary that registered it
    kind: AccountKind
    label: str
    holder_id: str | None
    binding_identity_id: str | None
    bound_at: int | None
    status: AccountStatus
    flagged_reason: str | None
    created_at: int
    kyc: AccountKyc | None = None
    # The identity the registered KYC attributes matched at binding (None: not matched).
    kyc_matched_identity_id: str | None = None
    # The link whose creation bound it (None: unbound, or bound before migration 0012). Its
    # removal by the intermediary releases the binding (services/links.py).
    bound_by_link_id: str | None = None

    @property
    def is_bound(self) -> bool:
        return self.holder_id is not None


@dataclass(frozen=True, slots=True)
class AccountLink:
    id: str
    holder_id: str
    deposit_account_id: str
    wallet_account_id: str
    created_at: int
    removed_at: int | None
    removed_reason: str | None
    flagged_at: int | None
    removed_by: str | None = None  # the intermediary whose removal it was (client id)

    @property
    def is_active(self) -> bool:
        return self.removed_at is None
