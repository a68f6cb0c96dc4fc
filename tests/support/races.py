"""Clients racing one-time artefacts over HTTP (shared by tests/flows/test_concurrency.py and
tests/flows/test_two_processes.py): private_key_jwt assertions (a fresh ``jti`` each), one
request per connection, :func:`race` (every racer prepared, then released by a barrier), and
the steps from PAR to a code (wallet login, consent) against a running server."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey

from support.credentials import Wallet
from support.ecosystem import BANK_REDIRECT, Browser, Ecosystem, Party, WalletApp
from support.html import parse
from support.server import RunningServer

T = TypeVar("T")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --- clients ----------------------------------------------------------------------------------


def client_assertion(party: Party, audience: str) -> str:
    """A private_key_jwt assertion (RFC 7523) signed with joserfc; every call a fresh jti."""
    now = int(time.time())
    claims = {
        "iss": party.client_id,
        "sub": party.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    key = ECKey.import_key(party.key)
    header = {"alg": "ES256", "kid": party.private_jwk["kid"]}
    return jose_jwt.encode(header, claims, key)


def authenticated(party: Party, issuer: str, **fields: str) -> dict[str, str]:
    return {
        **fields,
        "client_id": party.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(party, issuer),
    }


def post(url: str, data: dict[str, str]) -> requests.Response:
    """One request on a connection of its own (no shared session)."""
    with requests.Session() as session:
        return session.post(url, data=data, allow_redirects=False, timeout=60)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]


def outcome(response: requests.Response) -> Outcome:
    try:
        body = response.json()
    except ValueError:
        body = {"raw": response.text[:200]}
    return Outcome(response.status_code, body)


def race(count: int, prepare: Callable[[int], Callable[[], T]]) -> list[T]:
    """Run ``count`` actions at once: each is prepared (assertions signed…) before a barrier."""
    actions = [prepare(i) for i in range(count)]
    barrier = threading.Barrier(count)
    results: list[T | BaseException | None] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = actions[i]()
        except BaseException as exc:  # reported below, never swallowed
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise AssertionError(f"{len(errors)} racers failed: {errors[0]!r}") from errors[0]
    return [r for r in results if not isinstance(r, BaseException) and r is not None]


def tally(outcomes: Sequence[Outcome]) -> dict[tuple[int, str], int]:
    counts: dict[tuple[int, str], int] = {}
    for o in outcomes:
        key = (o.status, "ok" if o.status == 200 else str(o.body.get("error", o.body)))
        counts[key] = counts.get(key, 0) + 1
    return counts


# --- getting a code ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pushed:
    request_uri: str
    verifier: str


def push(server: RunningServer, ecosystem: Ecosystem) -> Pushed:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    response = post(
        server.url("/par"),
        authenticated(
            ecosystem.bank,
            server.issuer,
            response_type="code",
            redirect_uri=BANK_REDIRECT,
            scope="openid profile",
            code_challenge=challenge.rstrip(b"=").decode(),
            code_challenge_method="S256",
            state=secrets.token_urlsafe(8),
            nonce=secrets.token_urlsafe(8),
        ),
    )
    assert response.status_code == 201, response.text
    return Pushed(response.json()["request_uri"], verifier)


def authorize_url(server: RunningServer, ecosystem: Ecosystem, request_uri: str) -> str:
    query = urlencode({"client_id": ecosystem.bank.client_id, "request_uri": request_uri})
    return server.url(f"/authorize?{query}")


@dataclass
class WalletStep:
    """A browser at the wallet page of an interaction, and the phone with the request read."""

    browser: Browser
    continue_url: str
    phone: WalletApp
    request: dict[str, Any]


def open_wallet(server: RunningServer, ecosystem: Ecosystem, pushed: Pushed) -> WalletStep:
    browser = Browser(server)
    page = browser.follow(browser.get(authorize_url(server, ecosystem, pushed.request_uri)))
    assert page.status_code == 200, page.text
    wallet_page = browser.follow(browser.submit(page.text, "/wallet", anchor=ecosystem.anchor_id))
    assert wallet_page.status_code == 200, wallet_page.text
    links = parse(wallet_page.text).links
    wallet = Wallet.generate()
    phone = WalletApp(server, wallet, ecosystem.credential(wallet))
    request = phone.request_object(links["same-device"].replace("&amp;", "&"))
    return WalletStep(browser, server.url(links["continue"].replace("&amp;", "&")), phone, request)


def consent(server: RunningServer, step: WalletStep) -> str:
    """From a finished wallet login to the code in the redirect back to the bank."""
    consent_page = step.browser.follow(step.browser.get(step.continue_url))
    assert consent_page.status_code == 200, consent_page.text
    decision = step.browser.submit(consent_page.text, "/consent", decision="approve")
    assert decision.status_code == 303, decision.text
    location = decision.headers["Location"]
    assert location.startswith(BANK_REDIRECT)
    return parse_qs(urlsplit(location).query)["code"][0]


def obtain_code(server: RunningServer, ecosystem: Ecosystem) -> tuple[str, str]:
    pushed = push(server, ecosystem)
    step = open_wallet(server, ecosystem, pushed)
    answer = step.phone.respond(step.request)
    assert answer.status_code == 200, answer.text
    return consent(server, step), pushed.verifier


def redemption(issuer: str, ecosystem: Ecosystem, code: str, verifier: str) -> dict[str, str]:
    return authenticated(
        ecosystem.bank,
        issuer,
        grant_type="authorization_code",
        code=code,
        redirect_uri=BANK_REDIRECT,
        code_verifier=verifier,
    )


def redeem(issuer: str, ecosystem: Ecosystem, code: str, verifier: str) -> Outcome:
    return outcome(post(issuer + "/token", redemption(issuer, ecosystem, code, verifier)))


def refresh(server: RunningServer, ecosystem: Ecosystem, refresh_token: str) -> Outcome:
    data = authenticated(
        ecosystem.bank, server.issuer, grant_type="refresh_token", refresh_token=refresh_token
    )
    return outcome(post(server.url("/token"), data))


def active(server: RunningServer, ecosystem: Ecosystem, token: str) -> bool:
    """Ask introspection (as the resource server) whether ``token`` is active."""
    response = post(
        server.url("/introspect"), authenticated(ecosystem.ledger, server.issuer, token=token)
    )
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def count(server: RunningServer, statement: Any) -> int:
    with server.services.db.reader() as conn:
        return int(conn.execute(statement).scalar_one())
