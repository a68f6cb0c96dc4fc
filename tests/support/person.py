"""A person at a browser with a phone wallet, for flow tests that need many authorization codes.

The first authorization walks the whole login (anchor choice, OpenID4VP request by reference,
SD-JWT VC presentation, consent), exactly the pages tests/flows/test_wallet_login_flow.py checks
in detail; later ones reuse the login session the service set, so they only consent. Each answer
back to the client is checked the way a client must check it: the redirect goes to the
registered URI and carries our ``iss`` (RFC 9207).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from support.credentials import Wallet
from support.ecosystem import Browser, Ecosystem, WalletApp
from support.html import parse
from support.server import RunningServer


class Person:
    def __init__(self, server: RunningServer, ecosystem: Ecosystem) -> None:
        self.server = server
        self.ecosystem = ecosystem
        self.browser = Browser(server)
        self.wallet = Wallet.generate()

    def authorize(
        self, authorization_url: str, *, redirect_uri: str, approve: bool = True
    ) -> dict[str, str]:
        """Log in (if needed), approve or deny; the authorization response's parameters."""
        page = self.browser.follow(self.browser.get(authorization_url))
        assert page.status_code == 200, page.text
        if not any(form.action.endswith("/consent") for form in parse(page.text).forms):
            page = self._wallet_login(page)
        decision = self.browser.submit(
            page.text, "/consent", decision="approve" if approve else "deny"
        )
        assert decision.status_code == 303, decision.text
        return authorization_response(decision.headers["Location"], redirect_uri, self.server)

    def _wallet_login(self, login_page: requests.Response) -> requests.Response:
        wallet_page = self.browser.follow(
            self.browser.submit(login_page.text, "/wallet", anchor=self.ecosystem.anchor_id)
        )
        assert wallet_page.status_code == 200, wallet_page.text
        links = parse(wallet_page.text).links
        phone = WalletApp(self.server, self.wallet, self.ecosystem.credential(self.wallet))
        request = phone.request_object(links["same-device"].replace("&amp;", "&"))
        answer = phone.respond(request)
        assert answer.status_code == 200, answer.text
        # The wallet is on this browser's phone: it sends the person back (same-device return),
        # so the login starts an SSO session that later authorizations reuse.
        consent = self.browser.follow(self.browser.get(answer.json()["redirect_uri"]))
        assert consent.status_code == 200, consent.text
        return consent


def authorization_response(
    location: str, redirect_uri: str, server: RunningServer
) -> dict[str, str]:
    """The query parameters of a redirect back to the client, after the checks every client
    makes: the registered URI exactly, ``iss`` equal to the issuer, no parameter twice."""
    base, _, query = location.partition("?")
    assert base == redirect_uri, location
    params = parse_qs(query, keep_blank_values=True)
    assert all(len(values) == 1 for values in params.values()), location
    assert params.get("iss") == [server.issuer], f"no or wrong iss in {location}"
    assert not urlsplit(location).fragment
    return {name: values[0] for name, values in params.items()}
