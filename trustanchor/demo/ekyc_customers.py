"""The demo eKYC bank's customers (``trustanchor/demo/data/ekyc_bank.toml``) and what its OpenID
Provider says about them: plain OpenID Connect claims and OpenID Connect for Identity Assurance
``verified_claims`` (trust framework ``jp_aml``, the identity-document check the bank made at
account opening).

Every customer is a demo person of ``people.toml``: the verified name and birth date are the
person's own, so the service's identity joins match this anchor's login with the person's
smartphone credential. Loaded strictly, like the people file: a typo stops the demo at start.
"""

from __future__ import annotations

import hmac
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from trustanchor.demo.people import PeopleError, Person, load_people, person

DATA_FILE = Path(__file__).parent / "data" / "ekyc_bank.toml"
TRUST_FRAMEWORK = "jp_aml"
DOCUMENTS = ("idcard", "residence_permit")
CHECK_METHODS = ("vcrypt", "vpip", "data")
# The claims the bank verified at account opening (inside verified_claims) and the plain ones it
# releases by scope; "address" only for a person whose data has one.
VERIFIED_CLAIMS = ("family_name", "given_name", "name", "birthdate", "address")
SCOPE_CLAIMS = {
    "profile": ("name", "family_name", "given_name", "birthdate"),
    "address": ("address",),
}
_LOGIN_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
_KEYS = frozenset({"person", "login_id", "password", "customer_number", "verification"})
_VERIFICATION_KEYS = frozenset({"time", "document", "check_method", "document_issuer", "txn"})


@dataclass(frozen=True, slots=True)
class Verification:
    """How the bank verified the customer when the account was opened."""

    time: str  # ISO 8601, UTC ("...Z")
    document: str
    check_method: str
    document_issuer: str
    txn: str


@dataclass(frozen=True, slots=True)
class Customer:
    person: Person
    login_id: str
    password: str  # the demo bank's own sign-in, shown on its login page
    customer_number: str  # the bank's local subject (pairwise subjects derive from it)
    verification: Verification

    def password_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode("utf-8"), self.password.encode("utf-8"))

    def claims(self) -> dict[str, Any]:
        """Every claim the bank holds about the customer (all of them verified at opening)."""
        who = self.person
        values: dict[str, Any] = {
            "family_name": who.family_name,
            "given_name": who.given_name,
            "name": _full_name(who),
            "birthdate": who.birthdate,
        }
        if who.address is not None:
            values["address"] = who.address.to_claim()
        return values

    def verification_element(self) -> dict[str, Any]:
        """The ``verification`` member of ``verified_claims`` (OIDC4IA, evidence ``document``)."""
        check = self.verification
        return {
            "trust_framework": TRUST_FRAMEWORK,
            "time": check.time,
            "verification_process": check.txn,
            "evidence": [
                {
                    "type": "document",
                    "check_details": [
                        {"check_method": check.check_method, "txn": check.txn, "time": check.time}
                    ],
                    "time": check.time,
                    "document_details": {
                        "type": check.document,
                        "issuer": {"name": check.document_issuer, "country_code": "JPN"},
                    },
                }
            ],
        }


def _full_name(who: Person) -> str:
    """Japanese order for a Japanese name, Western order otherwise (as the bank prints it)."""
    if who.family_name.isascii():
        return f"{who.given_name} {who.family_name}"
    return f"{who.family_name} {who.given_name}"


@cache
def load_customers(path: Path = DATA_FILE) -> tuple[Customer, ...]:
    """Every customer of the data file, joined to their demo person. Raises
    :class:`PeopleError` naming the place of a malformed entry."""
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PeopleError(f"{path}: cannot be read ({exc})") from exc
    return parse_customers(raw, load_people())


def parse_customers(raw: Mapping[str, Any], people: tuple[Person, ...]) -> tuple[Customer, ...]:
    if set(raw) - {"customers"}:
        raise PeopleError(f"unknown top-level key {sorted(set(raw) - {'customers'})[0]!r}")
    entries = raw.get("customers")
    if not isinstance(entries, list) or not entries:
        raise PeopleError("customers: a non-empty array of tables is required")
    customers = tuple(_customer(entry, index, people) for index, entry in enumerate(entries))
    for what, values in (
        ("person", [c.person.id for c in customers]),
        ("login_id", [c.login_id for c in customers]),
        ("customer_number", [c.customer_number for c in customers]),
    ):
        if len(set(values)) != len(values):
            raise PeopleError(f"customers: a {what} appears twice")
    return customers


def customer_by_login(login_id: str, customers: tuple[Customer, ...]) -> Customer | None:
    for candidate in customers:
        if hmac.compare_digest(candidate.login_id.encode(), login_id.encode()):
            return candidate
    return None


def _customer(entry: Any, index: int, people: tuple[Person, ...]) -> Customer:
    where = f"customers[{index}]"
    table = _table(entry, where, _KEYS)
    try:
        who = person(_text(table["person"], f"{where}.person"), people)
    except KeyError as exc:
        raise PeopleError(f"{where}.person: no such person in people.toml") from exc
    login_id = _text(table["login_id"], f"{where}.login_id")
    if not _LOGIN_ID.fullmatch(login_id):
        raise PeopleError(f"{where}.login_id: lower-case letters, digits and '-'")
    check = _table(table["verification"], f"{where}.verification", _VERIFICATION_KEYS)
    verification = Verification(
        **{name: _text(check[name], f"{where}.verification.{name}") for name in _VERIFICATION_KEYS}
    )
    if verification.document not in DOCUMENTS:
        raise PeopleError(f"{where}.verification.document: one of {', '.join(DOCUMENTS)}")
    if verification.check_method not in CHECK_METHODS:
        raise PeopleError(f"{where}.verification.check_method: one of {', '.join(CHECK_METHODS)}")
    try:
        if not verification.time.endswith("Z"):
            raise ValueError(verification.time)
        datetime.fromisoformat(verification.time)
    except ValueError as exc:
        raise PeopleError(f"{where}.verification.time: ISO 8601 in UTC (…Z)") from exc
    return Customer(
        person=who,
        login_id=login_id,
        password=_text(table["password"], f"{where}.password"),
        customer_number=_text(table["customer_number"], f"{where}.customer_number"),
        verification=verification,
    )


def _table(value: Any, where: str, keys: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PeopleError(f"{where}: must be a table")
    if set(value) - keys:
        raise PeopleError(f"{where}.{sorted(set(value) - keys)[0]}: unknown key")
    if keys - set(value):
        raise PeopleError(f"{where}.{sorted(keys - set(value))[0]}: missing")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise PeopleError(f"{where}: a non-empty text of at most 200 characters")
    return value
