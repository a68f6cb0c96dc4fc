"""A payment ecosystem for issue 4's flow tests: two anchor sets, three smartphone-credential
anchors, a bank (confidential intermediary: PAR, PKCE, private_key_jwt, DPoP-less by default,
authorization_details, the accounts API), and people who log in with a credential from the anchor
of their choice.

- ``jp-cbdc``: anchors ``jp-national-id`` (high) and ``jp-bank-ekyc`` (substantial); links and
  transfers; JPY up to 1,000,000 per transfer, above 100,000 the debtor must have logged in at
  high within 300 s.
- ``eu-wallets``: anchor ``eu-pid`` (high); links and transfers in EUR.

Both sets declare the identity-join rule :data:`JOIN_RULE` (name and birth date, substantial or
higher): a step-up with a new credential joins the logged-in holder only when those verified
claims match (services/identity_joining.py). A :class:`Holder`'s credentials carry
``given_name`` "Test", ``family_name`` its subject and ``birthdate`` :data:`BIRTHDATE`; a test
changes them per anchor with :attr:`Holder.claims`, and discloses less with
:attr:`Holder.disclose`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from support.credentials import Issuer, Wallet
from support.ecosystem import BANK_REDIRECT, Browser, Party, WalletApp
from support.html import parse
from support.person import authorization_response
from support.rp import Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings
from trustanchor.audit.entries import Decision, parse_entry
from trustanchor.clock import SystemClock

JP_SET = "jp-cbdc"
EU_SET = "eu-wallets"
JP_HIGH = "jp-national-id"
JP_SUBSTANTIAL = "jp-bank-ekyc"
EU_HIGH = "eu-pid"
BIRTHDATE = "1990-04-01"
JOIN_RULE: dict[str, Any] = {
    "id": "name-and-birthdate",
    "claims": ["family_name", "given_name", "birthdate"],
    "min_assurance": "substantial",
    "normalizer": "nfkc-casefold-kana-nospace-v1",
}

ANCHOR_SETS: list[dict[str, Any]] = [
    {
        "id": JP_SET,
        "display_name": {"en": "Japan CBDC pilot", "ja": "日本 CBDC 実証"},
        "policy": {
            "operations": ["account_link", "value_transfer", "funding"],
            "min_assurance_link": "substantial",
            "min_assurance_transfer": "substantial",
            "limits": {"JPY": "1000000"},
            "step_up": [
                {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300}
            ],
            # Funding between one's own accounts (docs/POLICY.md "Funding"): its own limit and
            # step-up, apart from transfers.
            "min_assurance_funding": "substantial",
            "funding_limits": {"JPY": "500000"},
            "funding_step_up": [
                {"currency": "JPY", "above": "200000", "assurance": "high", "max_age": 300}
            ],
            "standing_funding_max_days": 90,
            "identity_joins": [JOIN_RULE],
        },
    },
    {
        "id": EU_SET,
        "display_name": {"en": "EU digital identity wallets", "ja": "EU デジタル ID ウォレット"},
        "policy": {
            "operations": ["account_link", "value_transfer"],
            "min_assurance_link": "substantial",
            "min_assurance_transfer": "high",
            "limits": {"EUR": "10000.00"},
            "identity_joins": [JOIN_RULE],
        },
    },
]


@dataclass
class AnchorParty:
    id: str
    level: str
    anchor_set: str
    issuer: Issuer

    def declaration(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": "sd_jwt_vc",
            "display_name": {"en": f"{self.id} (test)", "ja": f"{self.id}（テスト）"},
            "assurance_level": self.level,
            "anchor_sets": [self.anchor_set],
            "sd_jwt_vc": {
                "issuer": self.issuer.issuer,
                "jwks": self.issuer.jwks(),
                "vct": [self.issuer.vct],
                "subject_claim": "sub",
                "claims": {
                    "given_name": "given_name",
                    "family_name": "family_name",
                    "birthdate": "birthdate",
                },
                "trust_framework": "test",
                "status_check": "off",
            },
        }


def _anchor(anchor_id: str, level: str, anchor_set: str) -> AnchorParty:
    return AnchorParty(
        anchor_id, level, anchor_set, Issuer.generate(issuer=f"https://{anchor_id}.example")
    )


@dataclass
class Payments:
    anchors: dict[str, AnchorParty] = field(
        default_factory=lambda: {
            a.id: a
            for a in (
                _anchor(JP_HIGH, "high", JP_SET),
                _anchor(JP_SUBSTANTIAL, "substantial", JP_SET),
                _anchor(EU_HIGH, "high", EU_SET),
            )
        }
    )
    bank: Party = field(default_factory=lambda: Party("bank"))
    ledger: Party = field(default_factory=lambda: Party("ledger"))
    extra_clients: list[dict[str, Any]] = field(default_factory=list)

    def add_intermediary(self, party: Party, name: dict[str, str]) -> Payments:
        """Declare ``party`` as a second intermediary, registered like the bank (its own keys
        and name); ``self``, for a fixture to return."""
        [bank, *_] = self.clients()
        self.extra_clients.append(
            bank | {"client_id": party.client_id, "client_name": name, "jwks": party.jwks}
        )
        return self

    def clients(self) -> list[dict[str, Any]]:
        return [
            {
                "client_id": self.bank.client_id,
                "client_name": {"en": "Test Bank", "ja": "テスト銀行"},
                "client_type": "confidential",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": self.bank.jwks,
                "redirect_uris": [BANK_REDIRECT],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scope": "openid accounts",
                "authorization_details_types": [
                    "account_link",
                    "value_transfer",
                    "funding",
                    "standing_funding",
                ],
            },
            {
                "client_id": self.ledger.client_id,
                "client_name": "Test Ledger",
                "client_type": "confidential",
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": self.ledger.jwks,
                "grant_types": ["client_credentials"],
                "introspection": True,
            },
            *self.extra_clients,
        ]

    @contextmanager
    def running(self, tmp_path: Path, database_url: str) -> Iterator[RunningServer]:
        settings = test_settings(
            tmp_path,
            database_url,
            port=free_port(),
            anchors=[a.declaration() for a in self.anchors.values()],
            clients=self.clients(),
        )
        settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
        with running_server(settings) as server:
            yield server


class Holder:
    """A person with a browser and a phone wallet holding credentials from several anchors."""

    def __init__(self, server: RunningServer, payments: Payments, subject: str) -> None:
        self.server = server
        self.payments = payments
        self.subject = subject
        self.browser = Browser(server)
        self.wallet = Wallet.generate()
        self.claims: dict[str, dict[str, Any]] = {}  # anchor id -> claims replacing the defaults
        self.disclose: dict[str, dict[str, Any]] = {}  # anchor id -> sd-jwt selection (default all)

    def credential(self, anchor_id: str) -> str:
        issuer = self.payments.anchors[anchor_id].issuer
        claims = {
            "sub": self.subject,
            "given_name": "Test",
            "family_name": self.subject,
            "birthdate": BIRTHDATE,
            **self.claims.get(anchor_id, {}),
        }
        return issuer.issue(
            self.wallet,
            claims=claims,
            disclosable={"given_name", "family_name", "birthdate"},
            iat=int(time.time()) - 60,
        )

    def open(self, url: str) -> requests.Response:
        page = self.browser.follow(self.browser.get(url))
        assert page.status_code == 200, page.text
        return page

    def log_in(self, page: requests.Response, anchor_id: str) -> requests.Response:
        """From the anchor list, log in through ``anchor_id`` with the wallet on this browser's
        phone (the same-device return when the wallet's answer was taken); the page that
        follows."""
        wallet_page = self.browser.follow(
            self.browser.submit(page.text, "/wallet", anchor=anchor_id)
        )
        assert wallet_page.status_code == 200, wallet_page.text
        links = parse(wallet_page.text).links
        phone = WalletApp(
            self.server,
            self.wallet,
            self.wallet.select(self.credential(anchor_id), self.disclose.get(anchor_id)),
        )
        answer = phone.respond(phone.request_object(links["same-device"].replace("&amp;", "&")))
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:  # the wallet on this phone sends the person back here
            return self.open(answer.json()["redirect_uri"])
        return self.open(self.server.url(links["continue"]))

    def decide(self, page: requests.Response, decision: str) -> dict[str, str]:
        response = self.browser.submit(page.text, "/consent", decision=decision)
        assert response.status_code == 303, response.text
        return authorization_response(response.headers["Location"], BANK_REDIRECT, self.server)

    def step_up(self, page: requests.Response) -> requests.Response:
        response = self.browser.submit(page.text, "/step-up")
        assert response.status_code == 303, response.text
        return self.open(self.server.url(response.headers["Location"]))


class Bank:
    """The intermediary: registers accounts, pushes requests, redeems codes. ``party``: another
    intermediary than ``payments.bank`` (declared in ``payments.extra_clients``)."""

    def __init__(
        self, server: RunningServer, payments: Payments, party: Party | None = None
    ) -> None:
        self.server = server
        self.party = party or payments.bank
        self.rp = RelyingParty(server, self.party, SystemClock(), redirect_uri=BANK_REDIRECT)
        token = self.rp.post("/token", {"grant_type": "client_credentials", "scope": "accounts"})
        assert token.status_code == 200, token.text
        self.api_headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def register(
        self, reference: str, kind: str, label: str, kyc: dict[str, Any] | None = None
    ) -> str:
        response = self.post_account(
            {"reference": reference, "kind": kind, "label": label}
            | ({} if kyc is None else {"kyc": kyc})
        )
        assert response.status_code in (200, 201), response.text
        return str(response.json()["account_id"])

    def post_account(self, body: object) -> requests.Response:
        return requests.post(
            self.server.url("/accounts"), json=body, headers=self.api_headers, timeout=10
        )

    def api(self, method: str, path: str) -> requests.Response:
        return requests.request(method, self.server.url(path), headers=self.api_headers, timeout=10)

    def authorization_url(
        self, details: list[dict[str, Any]], pkce: Pkce, claims: dict[str, Any] | None = None
    ) -> str:
        request_uri = self.rp.request_uri(
            pkce,
            scope="openid",
            authorization_details=json.dumps(details),
            claims=None if claims is None else json.dumps(claims),
        )
        return self.rp.authorization_url(request_uri)

    def redeem(self, code: str, pkce: Pkce) -> dict[str, Any]:
        response = self.rp.redeem(code, pkce.verifier)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def link(deposit: str, wallet: str, action: str = "link") -> dict[str, Any]:
    return {
        "type": "account_link",
        "actions": [action],
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


def transfer(debtor: str, creditor: str, amount: str, currency: str = "JPY") -> dict[str, Any]:
    return {
        "type": "value_transfer",
        "instructed_amount": {"currency": currency, "amount": amount},
        "debtor_account": debtor,
        "creditor_account": creditor,
    }


def decision_entries(server: RunningServer) -> list[Decision]:
    """The audit log's ``decision`` entries so far, in order."""
    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    found = []
    for item in server.services.audit.entries(0, size):
        entry = parse_entry(item.entry)
        if isinstance(entry, Decision):
            found.append(entry)
    return found
