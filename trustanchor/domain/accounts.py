"""Accounts that intermediaries register, and the links between one holder's accounts.

An account is an intermediary's deposit account or CBDC wallet, known to us by an opaque id of
ours (``acc_…``). The intermediary's own reference (which may be a bank account number) is never
stored: only a keyed digest of it, so registering the same reference twice finds the same account
and a leaked database reveals no account numbers.

An account is *bound* to a holder only when that holder logs in and consents (through an
``account_link``); the binding records the identity — and so the anchor — that vouched for it.
A binding whose anchor is suspended or whose credential was revoked is *flagged*: it stays, but
decisions relying on it fail until the holder logs in again with a valid credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

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

    @property
    def is_active(self) -> bool:
        return self.removed_at is None
