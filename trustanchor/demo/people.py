"""The demo people (``trustanchor/demo/data/people.toml``): who they are, what their smartphone
credential says, and which accounts they hold at the demo bank.

Loaded strictly into frozen dataclasses: an unknown key, a missing key, a malformed date or an
amount not written in its currency's precision is a :class:`PeopleError` naming the place, so a
typo in the data file stops the demo at start instead of producing a credential nobody matches.

The wallet uses the identity part (the credential's claims), the demo bank the accounts part.

**Account labels at the service.** The bank registers one ``label`` per account at the service's
``/accounts`` (the consent page shows it to a payer beside the bank's name). A person with an
``account_name`` (the holder name as their bank shows it on a transfer: katakana for a Japanese
customer, ``{ ja = "スズキ タロウ" }``; the Latin name otherwise, ``{ en = "Erika Mustermann" }``)
gets labels in that language: ``スズキ タロウ（CBDC ウォレット ****7702）``,
``Erika Mustermann (CBDC wallet ****7703)``: what a payee's bank shows a payer, nothing more
(no full account number, no address or birth date). Without one, the English account label.
:attr:`Account.earlier_labels` are what earlier demo versions registered: the service keeps a
reference's first label (the same reference with another label is a conflict), so a demo state
made before keeps working with them.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from trustanchor.domain.money import Amount, MoneyError, parse_amount

DATA_FILE = Path(__file__).parent / "data" / "people.toml"
LANGUAGES = ("en", "ja")
AccountKind = Literal["bank_deposit", "cbdc_wallet"]
ACCOUNT_KINDS: tuple[AccountKind, ...] = ("bank_deposit", "cbdc_wallet")

_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ANCHOR = re.compile(r"[a-z0-9-]{1,64}")
_BIRTHDATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PERSON_KEYS = frozenset(
    {
        "id",
        "display_name",
        "anchor",
        "sub",
        "given_name",
        "family_name",
        "birthdate",
        "address",
        "linked_at_start",
        "auditor",
        "accounts",
        "account_name",
        "smartphone",
        "card",
    }
)
_CARD_KEYS = frozenset({"gender", "revoked"})
# The JPKI signature certificate's gender codes (性別): 1 male, 2 female, 3 not stated.
GENDER_CODES = ("1", "2", "3")
_ADDRESS_KEYS = ("street_address", "locality", "region", "postal_code", "country")
_ACCOUNT_KEYS = frozenset({"kind", "label", "reference", "currency", "opening_balance"})
_MAX_TEXT = 200
MAX_REGISTERED_LABEL = 64  # the service's accounts API (trustanchor/domain/accounts.py MAX_LABEL)


class PeopleError(ValueError):
    """The people file is malformed; the message names the entry and the key."""


@dataclass(frozen=True, slots=True)
class LocalText:
    """A text in English and Japanese."""

    en: str
    ja: str

    def get(self, language: str) -> str:
        return self.ja if language == "ja" else self.en


@dataclass(frozen=True, slots=True)
class Address:
    """An OpenID Connect ``address`` claim (structured members only)."""

    street_address: str
    locality: str
    region: str
    postal_code: str
    country: str

    def to_claim(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _ADDRESS_KEYS}


@dataclass(frozen=True, slots=True)
class MyNumberCard:
    """The person's My Number Card, as the demo JPKI CA (:mod:`trustanchor.demo.jpki_ca`)
    issues its two certificates: the signature certificate's gender code and whether the card
    was reported lost (its certificates are on the demo CRLs)."""

    gender: str
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    kind: AccountKind
    label: LocalText
    reference: str  # the bank's own reference; the service only ever sees a keyed digest of it
    currency: str
    opening_balance: str  # canonical decimal text in the currency's precision
    # The label the bank registers at the service (see the module's docstring), and the labels
    # earlier demo versions registered for the same reference (tried after it, on a conflict).
    registered_label: str = ""
    earlier_labels: tuple[str, ...] = ()

    @property
    def labels_to_register(self) -> tuple[str, ...]:
        """The registered label first, then the earlier ones (each once)."""
        labels = (self.registered_label or self.label.en, *self.earlier_labels)
        return tuple(dict.fromkeys(labels))

    @property
    def opening_amount(self) -> Amount:
        return parse_amount(self.opening_balance, self.currency)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    display_name: LocalText
    anchor: str  # the trust anchor (config/demo.toml) that issues this person's credential
    sub: str
    given_name: str
    family_name: str
    birthdate: str  # YYYY-MM-DD
    address: Address | None
    accounts: tuple[Account, ...]
    # Linked (deposit <-> CBDC wallet) through the real flow when the demo starts: a payee
    # already verified and bound, for the person the evaluator acts as to pay.
    linked_at_start: bool = False
    # Designated as an auditor of the service when the demo starts (their console login is
    # seeded through the real flow): the person to open the auditor console as.
    auditor: bool = False
    # Has a smartphone with the demo wallet and card app (false: only a plastic My Number
    # Card, used at a bank branch's counter).
    smartphone: bool = True
    card: MyNumberCard | None = None

    def credential_claims(self) -> dict[str, Any]:
        """The claims of this person's credential, each selectively disclosable when issued."""
        claims: dict[str, Any] = {
            "sub": self.sub,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "birthdate": self.birthdate,
        }
        if self.address is not None:
            claims["address"] = self.address.to_claim()
        return claims

    def account(self, kind: AccountKind) -> Account:
        """The person's (first) account of ``kind``."""
        for account in self.accounts:
            if account.kind == kind:
                return account
        raise KeyError(f"{self.id} has no {kind} account")


@cache
def load_people(path: Path = DATA_FILE) -> tuple[Person, ...]:
    """Every person of the data file, in file order. Raises :class:`PeopleError`."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PeopleError(f"{path}: cannot be read ({exc})") from exc
    return parse_people(raw)


def parse_people(raw: Mapping[str, Any]) -> tuple[Person, ...]:
    unknown = set(raw) - {"people"}
    if unknown:
        raise PeopleError(f"unknown top-level key {sorted(unknown)[0]!r}")
    entries = raw.get("people")
    if not isinstance(entries, list) or not entries:
        raise PeopleError("people: a non-empty array of tables is required")
    people = tuple(_person(entry, index) for index, entry in enumerate(entries))
    for what, values in (
        ("id", [p.id for p in people]),
        ("sub", [p.sub for p in people]),
        ("account reference", [a.reference for p in people for a in p.accounts]),
    ):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise PeopleError(f"{what} {value!r} appears twice")
            seen.add(value)
    return people


def person(person_id: str, people: tuple[Person, ...] | None = None) -> Person:
    """The person with ``person_id`` (KeyError if there is none)."""
    for candidate in people if people is not None else load_people():
        if candidate.id == person_id:
            return candidate
    raise KeyError(person_id)


def _person(entry: Any, index: int) -> Person:
    where = f"people[{index}]"
    table = _table(
        entry,
        where,
        _PERSON_KEYS,
        optional={
            "address",
            "linked_at_start",
            "auditor",
            "accounts",
            "account_name",
            "smartphone",
            "card",
        },
    )
    person_id = _text(table["id"], f"{where}.id")
    if not _ID.fullmatch(person_id):
        raise PeopleError(f"{where}.id: lower-case letters, digits and '-' (at most 32)")
    where = f"people.{person_id}"
    anchor = _text(table["anchor"], f"{where}.anchor")
    if not _ANCHOR.fullmatch(anchor):
        raise PeopleError(f"{where}.anchor: an anchor id (lower-case letters, digits, '-')")
    birthdate = _text(table["birthdate"], f"{where}.birthdate")
    try:
        if not _BIRTHDATE.fullmatch(birthdate):
            raise ValueError(birthdate)
        date.fromisoformat(birthdate)
    except ValueError as exc:
        raise PeopleError(f"{where}.birthdate: a date written YYYY-MM-DD") from exc
    address = None
    if "address" in table:
        fields = _table(table["address"], f"{where}.address", frozenset(_ADDRESS_KEYS))
        address = Address(
            **{name: _text(fields[name], f"{where}.address.{name}") for name in _ADDRESS_KEYS}
        )
    auditor = _flag(table.get("auditor", False), f"{where}.auditor")
    accounts = table.get("accounts", [])
    if not isinstance(accounts, list) or not (accounts or auditor):
        # Everyone but an auditor is a customer of the demo bank.
        raise PeopleError(f"{where}.accounts: a non-empty array of tables is required")
    account_name = (
        _account_name(table["account_name"], f"{where}.account_name")
        if "account_name" in table
        else None
    )
    return Person(
        id=person_id,
        display_name=_local_text(table["display_name"], f"{where}.display_name"),
        anchor=anchor,
        sub=_text(table["sub"], f"{where}.sub"),
        given_name=_text(table["given_name"], f"{where}.given_name"),
        family_name=_text(table["family_name"], f"{where}.family_name"),
        birthdate=birthdate,
        address=address,
        accounts=tuple(
            _account(a, f"{where}.accounts[{i}]", account_name) for i, a in enumerate(accounts)
        ),
        linked_at_start=_flag(table.get("linked_at_start", False), f"{where}.linked_at_start"),
        auditor=auditor,
        smartphone=_flag(table.get("smartphone", True), f"{where}.smartphone"),
        card=_card(table["card"], f"{where}.card") if "card" in table else None,
    )


def _card(entry: Any, where: str) -> MyNumberCard:
    table = _table(entry, where, _CARD_KEYS, optional={"revoked"})
    gender = table["gender"]
    if gender not in GENDER_CODES:
        raise PeopleError(f"{where}.gender: one of {', '.join(GENDER_CODES)} (JPKI codes)")
    return MyNumberCard(
        gender=gender, revoked=_flag(table.get("revoked", False), f"{where}.revoked")
    )


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PeopleError(f"{where}: true or false")
    return value


def _account_name(value: Any, where: str) -> tuple[str, str]:
    """``(language, name)`` of an ``account_name`` table: exactly one of ``en`` / ``ja``."""
    if not isinstance(value, dict) or len(value) != 1 or not set(value) <= set(LANGUAGES):
        raise PeopleError(f"{where}: a table with exactly one of {', '.join(LANGUAGES)}")
    ((language, name),) = value.items()
    return language, _text(name, f"{where}.{language}")


def registered_label(account_name: tuple[str, str] | None, label: LocalText) -> str:
    """The label the bank registers for an account: ``スズキ タロウ（CBDC ウォレット ****7702）``,
    ``Erika Mustermann (CBDC wallet ****7703)``; without an account name, the English label."""
    if account_name is None:
        return label.en
    language, name = account_name
    if language == "ja":
        return f"{name}（{label.ja}）"
    return f"{name} ({label.en})"


def _check_registered_label(value: str, where: str) -> str:
    """What the service's accounts API accepts for a label: at most 64 characters, NFC, no
    outer spaces, no control or format characters."""
    if (
        not 0 < len(value) <= MAX_REGISTERED_LABEL
        or value != value.strip()
        or not unicodedata.is_normalized("NFC", value)
        or any(unicodedata.category(ch)[0] == "C" for ch in value)
    ):
        raise PeopleError(
            f"{where}: the registered label {value!r} is not a label the service accepts "
            f"(at most {MAX_REGISTERED_LABEL} characters, NFC, no control characters)"
        )
    return value


def _account(entry: Any, where: str, account_name: tuple[str, str] | None = None) -> Account:
    table = _table(entry, where, _ACCOUNT_KEYS)
    kind = table["kind"]
    if kind not in ACCOUNT_KINDS:
        raise PeopleError(f"{where}.kind: one of {', '.join(ACCOUNT_KINDS)}")
    currency = _text(table["currency"], f"{where}.currency")
    balance = _text(table["opening_balance"], f"{where}.opening_balance")
    try:
        amount = parse_amount(balance, currency)
    except MoneyError as exc:
        raise PeopleError(f"{where}: {exc.detail}") from exc
    if str(amount) != balance:
        raise PeopleError(
            f"{where}.opening_balance: write {str(amount)!r} (the currency's precision)"
        )
    label = _local_text(table["label"], f"{where}.label")
    return Account(
        kind=cast(AccountKind, kind),
        label=label,
        reference=_text(table["reference"], f"{where}.reference"),
        currency=currency,
        opening_balance=balance,
        registered_label=_check_registered_label(
            registered_label(account_name, label), f"{where}.label"
        ),
        # Until this version the bank registered the English label (a demo state made then).
        earlier_labels=(_check_registered_label(label.en, f"{where}.label.en"),),
    )


def _table(
    value: Any, where: str, keys: frozenset[str], *, optional: set[str] | None = None
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PeopleError(f"{where}: must be a table")
    unknown = set(value) - keys
    if unknown:
        raise PeopleError(f"{where}.{sorted(unknown)[0]}: unknown key")
    missing = keys - set(value) - (optional or set())
    if missing:
        raise PeopleError(f"{where}.{sorted(missing)[0]}: missing")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise PeopleError(f"{where}: a non-empty text of at most {_MAX_TEXT} characters")
    return value


def _local_text(value: Any, where: str) -> LocalText:
    table = _table(value, where, frozenset(LANGUAGES))
    return LocalText(en=_text(table["en"], f"{where}.en"), ja=_text(table["ja"], f"{where}.ja"))


__all__ = [
    "ACCOUNT_KINDS",
    "DATA_FILE",
    "GENDER_CODES",
    "MAX_REGISTERED_LABEL",
    "Account",
    "AccountKind",
    "Address",
    "LocalText",
    "MyNumberCard",
    "PeopleError",
    "Person",
    "load_people",
    "parse_people",
    "person",
    "registered_label",
]
