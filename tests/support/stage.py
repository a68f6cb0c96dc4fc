"""The running service for security flow tests: the ecosystem's bank and ledger plus two more
clients that the attacks need, on a clock the test can move forward.

- ``shop``: a second confidential client (another client redeeming the bank's code, a request_uri
  used under another client_id) whose access tokens are for its own resource server
  (``audiences``), so they must not open our userinfo endpoint;
- ``dpop-bank``: a confidential client registered with ``dpop_bound_access_tokens = true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.clock import ShiftableClock
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
from support.person import Person
from support.rp import DpopKey, Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

SHOP_REDIRECT = "https://shop.example/callback"
SHOP_AUDIENCE = "https://ledger.example/api"
DPOP_BANK_REDIRECT = "https://dpop-bank.example/callback"


def _client(party: Party, redirect_uri: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": party.client_id,
        "client_name": party.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": party.jwks,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile",
        **extra,
    }


@dataclass
class Stage:
    server: RunningServer
    clock: ShiftableClock
    ecosystem: Ecosystem
    bank: RelyingParty
    ledger: RelyingParty
    shop: RelyingParty
    dpop_bank: RelyingParty

    @classmethod
    @contextmanager
    def running(
        cls,
        tmp_path: Path,
        database_url: str,
        ecosystem: Ecosystem,
        *,
        overrides: dict[str, dict[str, Any]] | None = None,
        anchor: dict[str, Any] | None = None,
    ) -> Iterator[Stage]:
        """``overrides``: settings sections; ``anchor``: sd_jwt_vc settings of the anchor."""
        clock = ShiftableClock()
        shop, dpop_bank = Party("shop"), Party("dpop-bank")
        clients = [
            *ecosystem.client_declarations(),
            _client(
                shop,
                SHOP_REDIRECT,
                grant_types=["authorization_code", "refresh_token", "client_credentials"],
                audiences=[SHOP_AUDIENCE],
            ),
            _client(dpop_bank, DPOP_BANK_REDIRECT, dpop_bound_access_tokens=True),
        ]
        settings = test_settings(
            tmp_path,
            database_url,
            port=free_port(),
            anchors=[ecosystem.anchor_declaration(**(anchor or {}))],
            clients=clients,
            overrides=overrides,
        )
        with running_server(settings, clock=clock) as server:
            yield cls(
                server=server,
                clock=clock,
                ecosystem=ecosystem,
                bank=RelyingParty(server, ecosystem.bank, clock, redirect_uri=BANK_REDIRECT),
                ledger=RelyingParty(server, ecosystem.ledger, clock, redirect_uri=""),
                shop=RelyingParty(server, shop, clock, redirect_uri=SHOP_REDIRECT),
                dpop_bank=RelyingParty(server, dpop_bank, clock, redirect_uri=DPOP_BANK_REDIRECT),
            )

    def person(self) -> Person:
        return Person(self.server, self.ecosystem)

    def code(
        self,
        rp: RelyingParty,
        pkce: Pkce,
        *,
        person: Person | None = None,
        **params: str | None,
    ) -> str:
        """Push, log in, consent: a fresh authorization code for ``rp``."""
        url = rp.authorization_url(rp.request_uri(pkce, **params))
        response = (person or self.person()).authorize(url, redirect_uri=rp.redirect_uri)
        assert "error" not in response, response
        return response["code"]

    def tokens(
        self,
        rp: RelyingParty,
        *,
        dpop_key: DpopKey | None = None,
        person: Person | None = None,
        **params: str | None,
    ) -> dict[str, Any]:
        """A successful code redemption's token response (DPoP-bound when a key is given)."""
        pkce = Pkce.generate()
        code = self.code(rp, pkce, person=person, **params)
        proof = rp.proof(dpop_key, "/token") if dpop_key is not None else None
        response = rp.redeem(code, pkce.verifier, dpop=proof)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
