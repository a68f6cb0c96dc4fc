"""The demo bank's front desk (no Flask): who its customers are (the demo people), which of
their accounts it registered at the service, what they hold, whom they can pay, and how a
verified identity from the service is matched to a customer.

Registration is idempotent and is the launcher's seed step: every account of every demo person
is registered at the service's ``/accounts`` (the service keeps only a keyed digest of the
bank's reference), and every CBDC wallet is opened at the demo ledger with its opening balance.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from trustanchor.demo.bank.client import (
    AccountConflict,
    BankClient,
    BankClientError,
    MovementRefused,
    Tokens,
)
from trustanchor.demo.bank.client import RegisteredAccount as ServiceAccount
from trustanchor.demo.bank.store import BankStore, RegisteredAccount, Standing
from trustanchor.demo.ledger_book import LedgerBook, format_minor
from trustanchor.demo.people import Account, LocalText, Person
from trustanchor.domain.money import Amount

MATCHED_CLAIMS = ("given_name", "family_name", "birthdate")
SIGN_IN_CLAIMS: dict[str, Any] = {
    "id_token": {
        "verified_claims": {
            "verification": {"trust_framework": None},
            "claims": {name: None for name in MATCHED_CLAIMS},
        }
    }
}
"""The OpenID Connect ``claims`` request of "Sign in with your smartphone ID": the verified
name and birthdate in the ID token (OpenID Connect for Identity Assurance), nothing else."""


@dataclass(frozen=True, slots=True)
class AutoTopUp:
    """What an automatic top-up did: the bank's operation recording it, and whether the ledger
    executed it (``reason``: the service's refusal, in the bank's reason codes, when it was
    refused before reaching the ledger)."""

    operation_id: int
    executed: bool
    reason: str | None = None


class NotRegistered(Exception):
    """An account of the demo data is not registered at the service yet."""


@dataclass(frozen=True, slots=True)
class AccountView:
    account_id: str
    kind: str
    label: LocalText
    currency: str
    balance: str  # decimal text in the currency's precision


@dataclass(frozen=True, slots=True)
class Payee:
    person: Person
    wallet: Account
    account_id: str


def verified_identity(id_claims: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of the ID token's ``verified_claims`` (one object or an array of them)."""
    value = id_claims.get("verified_claims")
    items = value if isinstance(value, list) else [value]
    merged: dict[str, Any] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("claims"), dict):
            merged.update(item["claims"])
    return merged


class BankDesk:
    def __init__(
        self,
        people: Sequence[Person],
        store: BankStore,
        book: LedgerBook,
        client: BankClient,
        *,
        register_kyc: bool = False,
    ) -> None:
        self.people = tuple(p for p in people if p.accounts)  # the bank's customers
        # Register the holder's name and birth date with each account (the branch counter
        # does: the service then binds the account only to that person).
        self.register_kyc = register_kyc
        self.store = store
        self.book = book
        self.client = client
        self._registering = threading.Lock()
        # One movement at a time per bank process: a refresh token presented twice would be a
        # reuse, which ends the whole standing authorization at the service.
        self._moving = threading.Lock()

    def person(self, person_id: str | None) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)

    # -- registration (the seed step) ---------------------------------------------------------

    def register_accounts(self) -> list[str]:
        """Register every demo account at the service (again: the service answers the same
        account for the same reference, and its answer wins over the bank's records) and open
        every CBDC wallet at the ledger. Idempotent; the messages say what changed."""
        messages: list[str] = []
        with self._registering:
            for person in self.people:
                for account in person.accounts:
                    kyc = (
                        {
                            "family_name": person.family_name,
                            "given_name": person.given_name,
                            "birthdate": person.birthdate,
                        }
                        if self.register_kyc
                        else None
                    )
                    answer = self._register(account, kyc)
                    if self.store.record_account(
                        account.reference,
                        owner=person.id,
                        kind=account.kind,
                        account_id=answer.account_id,
                    ):
                        messages.append(
                            f"registered {person.id}'s {account.kind} as {answer.account_id}"
                        )
                    if account.kind == "bank_deposit" and self.book.open_deposit(
                        answer.account_id,
                        owner=person.id,
                        label=account.label.en,
                        opening_balance=account.opening_amount,
                    ):
                        messages.append(
                            f"opened {person.id}'s deposit {answer.account_id} with its balance"
                        )
                    if account.kind == "cbdc_wallet" and self.book.open_account(
                        answer.account_id,
                        owner=person.id,
                        label=account.label.en,
                        opening_balance=account.opening_amount,
                    ):
                        messages.append(
                            f"opened {person.id}'s wallet {answer.account_id} at the ledger"
                        )
        return messages

    def _register(self, account: Account, kyc: Mapping[str, str] | None) -> ServiceAccount:
        """``POST /accounts`` with the account's label (people.py: the holder's name as the
        bank shows it); where the service keeps a label an earlier demo registered for the
        reference (a state made before: the same reference with another label is a conflict),
        with that one."""
        *labels, last = account.labels_to_register
        for label in labels:
            try:
                return self.client.register_account(account.reference, account.kind, label, kyc)
            except AccountConflict:
                continue
        return self.client.register_account(account.reference, account.kind, last, kyc)

    def registered(self) -> dict[str, RegisteredAccount]:
        """The bank's accounts by reference, registering them first if some are missing."""
        accounts = self.store.accounts()
        if any(a.reference not in accounts for p in self.people for a in p.accounts):
            self.register_accounts()
            accounts = self.store.accounts()
        return accounts

    def account_id(self, person: Person, kind: str) -> str:
        for account in person.accounts:
            if account.kind == kind:
                registered = self.registered().get(account.reference)
                if registered is None:
                    raise NotRegistered(account.reference)
                return registered.account_id
        raise NotRegistered(f"{person.id} has no {kind}")

    # -- customers ----------------------------------------------------------------------------

    def customer_for(self, id_claims: Mapping[str, Any]) -> Person | None:
        """The customer whose verified name and birthdate the ID token carries (all three must
        be there and equal; one match only)."""
        verified = verified_identity(id_claims)
        if any(not isinstance(verified.get(name), str) for name in MATCHED_CLAIMS):
            return None
        matches = [
            p
            for p in self.people
            if (p.given_name, p.family_name, p.birthdate)
            == tuple(verified[name] for name in MATCHED_CLAIMS)
        ]
        return matches[0] if len(matches) == 1 else None

    def accounts_of(self, person: Person) -> list[AccountView]:
        """The person's accounts with their balances as the book keeps them (deposits and
        wallets; a deposit not in the book yet shows its opening balance)."""
        registered = self.registered()
        views: list[AccountView] = []
        for account in person.accounts:
            entry = registered.get(account.reference)
            if entry is None:
                raise NotRegistered(account.reference)
            balance = account.opening_balance
            booked = (
                self.book.account(entry.account_id)
                if account.kind == "cbdc_wallet"
                else self.book.deposit(entry.account_id)
            )
            if booked is not None:
                balance = format_minor(booked.balance_minor, booked.currency)
            views.append(
                AccountView(
                    entry.account_id, account.kind, account.label, account.currency, balance
                )
            )
        return views

    def payees(self, person: Person) -> list[Payee]:
        """The bank's payee directory: every other customer's CBDC wallet."""
        registered = self.registered()
        payees: list[Payee] = []
        for other in self.people:
            if other.id == person.id:
                continue
            for account in other.accounts:
                entry = registered.get(account.reference)
                if account.kind == "cbdc_wallet" and entry is not None:
                    payees.append(Payee(other, account, entry.account_id))
        return payees

    def link_accounts(self, person: Person, approve: Callable[[str], str]) -> Tokens:
        """Link ``person``'s deposit account and CBDC wallet through the real flow, without the
        bank's pages (the launcher's seed step): PAR with the ``account_link`` detail, then
        ``approve`` — the person at the service, given the authorization URL, returns the URL
        the service redirected their browser to — then the code exchange. Recorded as the
        person's operation. Raises :class:`AuthorizationRefused` or :class:`BankClientError`."""
        deposit = self.account_id(person, "bank_deposit")
        wallet = self.account_id(person, "cbdc_wallet")
        started = self.client.start(authorization_details=link_details(deposit, wallet))
        callback = approve(started.url)
        if not callback.startswith(self.client.redirect_uri + "?"):
            raise BankClientError("the service did not send the person back to the bank")
        tokens = self.client.finish(started.pending, urlsplit(callback).query)
        self.store.record_operation(
            person_id=person.id,
            purpose="link",
            outcome="allowed",
            requested={"deposit_account": deposit, "wallet_account": wallet},
            approved=tokens.authorization_details,
            anchor_set=tokens.anchor_set,
        )
        return tokens

    # -- automatic top-ups (a standing authorization) -----------------------------------------

    def standing_for(self, person: Person, link: Mapping[str, Any] | None) -> Standing | None:
        """The person's active automatic top-up, checked against what the service lists for
        the link (``GET /links``): one the person stopped on the service's /my page, or that a
        link removal or anchor suspension ended, is recorded as ended here too."""
        standing = self.store.active_standing(person.id)
        if standing is None:
            return None
        listed = None
        if link is not None and link.get("link_id") == standing.link_id:
            items = link.get("standing_authorizations") or []
            listed = next(
                (
                    item
                    for item in items
                    if isinstance(item, dict)
                    and item.get("standing_authorization_id") == standing.standing_id
                ),
                None,
            )
        if listed is None or not listed.get("active"):
            reason = listed.get("revoked_reason") if listed else None
            self.store.end_standing(
                standing.id, str(reason) if isinstance(reason, str) else "ended_at_service"
            )
            return None
        return standing

    def auto_top_up(
        self, person: Person, amount: Amount, *, context: Mapping[str, Any] | None = None
    ) -> AutoTopUp:
        """Move ``amount`` from the person's deposit account into their CBDC wallet under
        their automatic top-up, without asking them: a movement token from the service (which
        checks the bounds and the day's total), then the ledger. Recorded as a funding
        operation marked automatic (``context``: why, e.g. the transfer it makes possible).
        Raises :class:`NotRegistered` or :class:`BankClientError` (the service unreachable)."""
        deposit = self.account_id(person, "bank_deposit")
        wallet = self.account_id(person, "cbdc_wallet")
        instruction = {
            "direction": "deposit_to_wallet",
            "amount": str(amount),
            "currency": amount.currency,
            "deposit_account": deposit,
            "wallet_account": wallet,
        }
        with self._moving:
            standing = self.store.active_standing(person.id)
            requested: dict[str, Any] = {
                "instruction": instruction,
                "automatic": True,
                **(dict(context) if context else {}),
            }
            if standing is None or standing.refresh_token is None:
                operation_id = self.store.record_operation(
                    person_id=person.id,
                    purpose="funding",
                    outcome="denied",
                    reason="standing_ended",
                    requested=requested,
                )
                return AutoTopUp(operation_id, False, "standing_ended")
            granted = standing.granted or {}
            requested["bounds"] = {
                "max_amount": granted.get("max_amount"),
                "daily_amount": granted.get("daily_amount"),
            }
            entry = funding_details(instruction, standing.link_id)[0]
            entry["standing_authorization_id"] = standing.standing_id
            requested["funding"] = entry
            requested["standing_authorization_id"] = standing.standing_id
            key, _pem = self.client.new_dpop_key(standing.dpop_key)
            try:
                movement = self.client.movement(standing.refresh_token, key, entry)
            except MovementRefused as refused:
                if refused.ended:
                    self.store.end_standing(standing.id, refused.reason)
                operation_id = self.store.record_operation(
                    person_id=person.id,
                    purpose="funding",
                    outcome="denied",
                    reason=refused.reason,
                    requested=requested,
                )
                return AutoTopUp(operation_id, False, refused.reason)
            self.store.rotate_standing(standing.id, standing.refresh_token, movement.refresh_token)
        operation_id = self.store.record_operation(
            person_id=person.id,
            purpose="funding",
            outcome="allowed",
            requested=requested,
            approved=[dict(movement.funding)],
            anchor_set=movement.anchor_set,
        )
        try:
            answer = self.client.submit_funding(movement.access_token, instruction, dpop_key=key)
        except BankClientError as exc:
            self.store.record_ledger_answer(operation_id, 0, {"error": str(exc)})
            return AutoTopUp(operation_id, False)
        self.store.record_ledger_answer(operation_id, answer.status, answer.body)
        return AutoTopUp(operation_id, answer.accepted)

    def stop_standing(self, person: Person) -> bool:
        """End the person's automatic top-up at the service (the links API) and here; False
        when there was none active."""
        standing = self.store.active_standing(person.id)
        if standing is None:
            return False
        if standing.link_id and standing.standing_id:
            self.client.end_standing(standing.link_id, standing.standing_id)
        self.store.end_standing(standing.id, "stopped_at_bank")
        return True

    def remove_wrong_links(self, approved: Sequence[Mapping[str, Any]], sub: str | None) -> int:
        """Someone other than the signed-in customer approved ``approved`` (the ID token's
        ``sub`` is not the customer's): remove every active link of that ``sub`` touching one
        of the accounts it named (the link it created, and any other that person made with
        them meanwhile, which would keep a binding alive), through the links API. The service
        then undoes the account bindings those links made, so the customer can link the
        accounts as herself (docs/HOLDER-INTEGRITY.md). How many were removed."""
        named = {
            account
            for entry in approved
            if entry.get("type") == "account_link" and entry.get("actions") == ["link"]
            for account in (entry.get("deposit_account"), entry.get("wallet_account"))
            if account
        }
        if not named or sub is None:
            return 0
        removed = 0
        for link in self.client.links():
            touches = {link.get("deposit_account"), link.get("wallet_account")} & named
            if touches and link.get("holder") == sub and link.get("removed_at") is None:
                removed += self.client.remove_link(str(link.get("link_id")))
        return removed

    def active_link(self, person: Person) -> dict[str, Any] | None:
        """The service's active link between the person's deposit and wallet, if any."""
        deposit = self.account_id(person, "bank_deposit")
        wallet = self.account_id(person, "cbdc_wallet")
        for link in self.client.links():
            if (
                link.get("deposit_account") == deposit
                and link.get("wallet_account") == wallet
                and link.get("removed_at") is None
            ):
                return link
        return None


def link_details(deposit_account: str, wallet_account: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "account_link",
            "actions": ["link"],
            "deposit_account": deposit_account,
            "wallet_account": wallet_account,
        }
    ]


def funding_details(instruction: Mapping[str, str], link_id: str | None) -> list[dict[str, Any]]:
    """The ``funding`` entry for a movement (``instruction``: direction, amount, currency,
    deposit_account, wallet_account, as the ledger gets it); ``link_id`` when the bank knows
    the link (the service fills it in otherwise)."""
    detail: dict[str, Any] = {
        "type": "funding",
        "direction": instruction["direction"],
        "instructed_amount": {
            "currency": instruction["currency"],
            "amount": instruction["amount"],
        },
        "deposit_account": instruction["deposit_account"],
        "wallet_account": instruction["wallet_account"],
    }
    if link_id is not None:
        detail["link_id"] = link_id
    return [detail]


def standing_details(
    deposit_account: str,
    wallet_account: str,
    link_id: str | None,
    *,
    max_amount: Amount,
    daily_amount: Amount,
    valid_days: int,
) -> list[dict[str, Any]]:
    """The ``standing_funding`` entry of "Automatic top-up": deposit → wallet only, at most
    ``max_amount`` a time and ``daily_amount`` a day, for ``valid_days`` days."""
    detail: dict[str, Any] = {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": deposit_account,
        "wallet_account": wallet_account,
        "max_amount": {"currency": max_amount.currency, "amount": str(max_amount)},
        "daily_amount": {"currency": daily_amount.currency, "amount": str(daily_amount)},
        "valid_days": valid_days,
    }
    if link_id is not None:
        detail["link_id"] = link_id
    return [detail]


def transfer_details(instruction: Mapping[str, str]) -> list[dict[str, Any]]:
    detail: dict[str, Any] = {
        "type": "value_transfer",
        "instructed_amount": {
            "currency": instruction["currency"],
            "amount": instruction["amount"],
        },
        "debtor_account": instruction["debtor_account"],
        "creditor_account": instruction["creditor_account"],
    }
    if instruction.get("remittance_reference"):
        detail["remittance_reference"] = instruction["remittance_reference"]
    return [detail]
