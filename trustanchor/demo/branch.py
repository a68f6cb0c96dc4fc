"""A demo bank branch's counter terminal: the face-to-face channel of certificate login
(docs/CERTIFICATE-LOGIN.md, "At a bank branch"), for people without a smartphone. This module is
the terminal without Flask (its client, the counter answer, the outcome); its pages, ``/branch``,
are ``branch_pages.py``.

The terminal is its own confidential client of the service, ``demo-bank-branch``
(``config/demo.toml``: ``private_key_jwt`` with ``keys/demo/clients/demo-bank-branch.key.pem``,
``trustanchor_branch`` the branch role), on requests-oauth2client like the online bank
(:class:`BranchClient` is the bank's :class:`~trustanchor.demo.bank.client.BankClient` with
the branch's redirect URI). The service keeps accounts per client, so the branch registers the
accounts of the customers it serves (the people without a smartphone) with its own
credentials, and the ledger opens their CBDC wallets; the online bank serves the others.

1. Staff sign in with their operator id (a demo: no password; a real terminal authenticates
   its staff). The terminal's browser is marked as a counter terminal (a cookie on the parties'
   origin), so the card-app link of the service's login page opens the terminal's card reader
   (``/branch/reader``) instead of the phone's app — as a terminal's OS would route it.
2. For a customer, "link accounts" or "send money" pushes the request (PAR, with the verified
   name and birth date asked in the ID token) and sends the terminal's browser to the service.
3. At the service's login page the staff choose the My Number Card; the reader fetches and
   verifies the request like the phone's app, the staff pick the card put on the reader and the
   customer types the PIN(s) on the terminal; the reader signs the challenge with the card and
   submits it to ``/certificate/counter-response`` with the staff operator and the terminal's
   own ``private_key_jwt``; the terminal's browser follows the answer's ``redirect_uri``.
4. The customer approves on the service's consent page; back at ``/branch/callback`` the
   terminal redeems the code, checks that the verified person is the customer being served, and
   records the outcome (a transfer goes to the ledger with the DPoP-bound token).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
from requests_oauth2client import PrivateKeyJwt

from trustanchor.demo.bank.client import (
    AuthorizationRefused,
    BankClient,
    BankClientError,
    PendingAuthorization,
    Tokens,
    private_jwk,
)
from trustanchor.demo.bank.desk import BankDesk, Payee, verified_identity
from trustanchor.demo.bank.store import BankStore, Pending, Session
from trustanchor.demo.card_app import CardApp, CardError, CertificateRequest, challenge
from trustanchor.demo.jpki_ca import Card
from trustanchor.demo.ledger_book import LedgerBook
from trustanchor.demo.people import Person, load_people
from trustanchor.demo.phone import service_verifier
from trustanchor.demo.site import DemoSite

BRANCH_CLIENT_ID = "demo-bank-branch"
CALLBACK_PATH = "/branch/callback"
COUNTER_RESPONSE_PATH = "/certificate/counter-response"
# The terminal's staff session (the bank's session table; its person is "staff:<operator>").
# Path "/": the card-app link on the parties' origin must see that this browser is a terminal.
COOKIE = "demo_branch_terminal"
STAFF_PREFIX = "staff:"
OPERATOR = re.compile(r"[a-z0-9][a-z0-9-]{2,31}")
MATCHED_CLAIMS = ("given_name", "family_name", "birthdate")
TIMEOUT = 10.0


class BranchClient(BankClient):
    """The counter terminal's OAuth client: the bank's client with its own id, key and
    redirect URI."""

    @property
    def redirect_uri(self) -> str:
        return self.site.party(CALLBACK_PATH)


def open_branch(site: DemoSite, store: BankStore, book: LedgerBook) -> BankDesk:
    """The branch's desk: the customers without a smartphone, its own client."""
    customers = [p for p in load_people() if p.card is not None and not p.smartphone]
    client = BranchClient.from_site(site, BRANCH_CLIENT_ID)
    # With the customer's identified name and birth date: the service binds these accounts only
    # to the person whose card says so, whichever card is put on the reader.
    return BankDesk(customers, store, book, client, register_kyc=True)


def operator_of(session: Session | None) -> str | None:
    if session is None or not session.signed_in or session.person_id is None:
        return None
    if not session.person_id.startswith(STAFF_PREFIX):
        return None
    return session.person_id[len(STAFF_PREFIX) :]


def reader_app(site: DemoSite, http: requests.Session, service_name: str) -> CardApp:
    """The terminal's card reader: the card app's protocol code, answering only the service."""
    return CardApp(
        http=http,
        clock=site.clock,
        randomness=site.randomness,
        verifiers=[service_verifier(site, {"en": service_name})],
        allow_http_loopback=True,
    )


def counter_answer(
    verified: CertificateRequest, card: Card, operator: str, now: int
) -> dict[str, str]:
    """The form the terminal posts: the card's challenge JWS for each certificate asked for,
    signed after the customer's PIN (checked before), and the staff operator."""
    answer = {"state": verified.state, "staff_operator": operator}
    for profile in verified.certificates:
        answer[profile] = challenge(verified, card.certificates[profile], now)
    return answer


def submit_at_counter(
    site: DemoSite,
    client: BankClient,
    http: requests.Session,
    answer: Mapping[str, str],
) -> str:
    """POST the card's answer to the service's counter endpoint with the terminal's own client
    authentication (``private_key_jwt``); the ``redirect_uri`` of the service's answer, which
    must be on the service's origin."""
    auth = PrivateKeyJwt(
        client.client_id,
        private_jwk(client.signing_key),
        alg="ES256",
        aud=site.service_url,  # the issuer identifier, as for the token endpoint (FAPI 2.0)
    )
    try:
        response = http.post(
            site.service(COUNTER_RESPONSE_PATH),
            data=dict(answer),
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise CardError("verifier_unreachable", exc.__class__.__name__) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if response.status_code != 200:
        description = body.get("error_description") or body.get("error") or response.status_code
        raise CardError("verifier_refused", str(description)[:200])
    target = body.get("redirect_uri")
    service = urlsplit(site.service_url)
    parts = urlsplit(target) if isinstance(target, str) else None
    if parts is None or (parts.scheme, parts.netloc) != (service.scheme, service.netloc):
        raise CardError("invalid_redirect_uri", "not on the service's origin")
    return str(target)


def finish(desk: BankDesk, customer: Person, pending: Pending, query: str) -> int:
    """Redeem the code, check the verified person is ``customer``, record (and, for a transfer,
    submit to the ledger); the operation's id."""
    requested = dict(pending.payload)
    client_pending = PendingAuthorization(
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
        scope=pending.scope,
    )
    try:
        tokens = desk.client.finish(client_pending, query)
    except AuthorizationRefused as refused:
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="denied",
            reason=refused.reason or ("declined" if refused.error == "access_denied" else None),
            message=None if refused.reason else refused.error,
            requested=requested,
        )
    except BankClientError as exc:
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="failed",
            message=str(exc),
            requested=requested,
        )
    if not same_person(tokens, customer):
        return desk.store.record_operation(
            person_id=customer.id,
            purpose=pending.purpose,
            outcome="failed",
            message="the card read at the counter is not the customer's",
            requested=requested,
        )
    operation_id = desk.store.record_operation(
        person_id=customer.id,
        purpose=pending.purpose,
        outcome="allowed",
        requested=requested,
        approved=tokens.authorization_details,
        anchor_set=tokens.anchor_set,
    )
    instruction = requested.get("instruction")
    if pending.purpose == "transfer" and isinstance(instruction, dict):
        try:
            answer = desk.client.submit_transfer(tokens.access_token, instruction)
            desk.store.record_ledger_answer(operation_id, answer.status, answer.body)
        except BankClientError as exc:
            desk.store.record_ledger_answer(operation_id, 0, {"error": str(exc)})
    return operation_id


def same_person(tokens: Tokens, customer: Person) -> bool:
    """The ID token's verified name and birth date are the customer's."""
    verified = verified_identity(tokens.id_claims)
    expected = (customer.given_name, customer.family_name, customer.birthdate)
    return tuple(verified.get(name) for name in MATCHED_CLAIMS) == expected


def payees(bank: BankDesk) -> list[Payee]:
    """Whom a branch customer can pay: the online bank's customers' CBDC wallets."""
    registered = bank.registered()
    found = []
    for other in bank.people:
        for account in other.accounts:
            entry = registered.get(account.reference)
            if account.kind == "cbdc_wallet" and entry is not None:
                found.append(Payee(other, account, entry.account_id))
    return found


def card_holders() -> list[Person]:
    """The cards a counter's reader can be given: every demo person's who has one."""
    return [p for p in load_people() if p.card is not None]


__all__ = [
    "BRANCH_CLIENT_ID",
    "CALLBACK_PATH",
    "COOKIE",
    "BranchClient",
    "counter_answer",
    "finish",
    "open_branch",
    "operator_of",
    "payees",
    "reader_app",
    "same_person",
    "submit_at_counter",
]
