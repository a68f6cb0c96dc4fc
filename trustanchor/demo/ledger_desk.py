"""The demo ledger's counter (no Flask): one transfer or funding request in, one answer out.

``trustanchor.ledger`` checks the request as any ledger would (docs/LEDGER.md): the DPoP-bound
access token against the service's JWKS (fetched over HTTP, cached), the DPoP proof for exactly
this URL, the instruction against the token's ``value_transfer`` detail. Then the token is spent
and the transfer booked in one transaction (:meth:`LedgerBook.book` with the replay store's
``consume_in``), so a second use of a token is ``token_used`` and a refused booking spends
nothing. Every refusal is journalled with its reason code (and, once the token is read, the
anchor set the service's decision relied on).

A funding movement (``POST /ledger/fundings``: deposit ↔ wallet of one holder) is checked the same
way against the token's ``funding`` detail (:func:`trustanchor.ledger.funding_check.check_funding`:
the granted entry names its link) and booked on both sides in one transaction
(:meth:`LedgerBook.book_funding`).

Before booking, the ledger asks the service whether the token is still active (RFC 7662
introspection, :class:`ServiceIntrospection`, through ``trustanchor.ledger``'s
:func:`~trustanchor.ledger.require_active`): a token whose grant was revoked since it was issued
(a link removed or its approval withdrawn, a standing authorization stopped, a grant revoked) is
``token_revoked``, and when the service cannot say, ``revocation_check_failed``; both spend
nothing. The ledger authenticates as its own confidential client ``demo-ledger``
(``private_key_jwt`` with ``keys/demo/clients/demo-ledger.key.pem``, made by
``trustanchor.demo.prepare``; registered with ``introspection = true`` in config/demo.toml).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from requests_oauth2client import PrivateKeyJwt
from sqlalchemy import Connection, Engine

from trustanchor import strict_json
from trustanchor.demo.bank.client import BankClientError, load_signing_key, private_jwk
from trustanchor.demo.ledger_book import Booking, BookingRefused, FundingBooking, LedgerBook
from trustanchor.demo.site import DemoSite
from trustanchor.ledger import (
    Introspector,
    LedgerRefusal,
    LedgerTokenVerifier,
    SqlReplayStore,
    TransferInstruction,
    check_transfer,
    require_active,
)
from trustanchor.ledger.funding_check import FundingInstruction, check_funding
from trustanchor.ledger.token_check import HeaderValues, VerifiedAccessToken

Instr = TypeVar("Instr")  # an instruction as the ledger received it
A = TypeVar("A")  # the approved movement the token authorizes

TRANSFERS_PATH = "/ledger/transfers"
FUNDINGS_PATH = "/ledger/fundings"
MAX_BODY = 4096
INSTRUCTION_MEMBERS = frozenset(
    {"amount", "currency", "debtor_account", "creditor_account", "remittance_reference"}
)
FUNDING_MEMBERS = frozenset(
    {"direction", "amount", "currency", "deposit_account", "wallet_account"}
)
LEDGER_CLIENT_ID = "demo-ledger"  # config/demo.toml: confidential, private_key_jwt, introspection
DISCOVERY_PATH = "/.well-known/openid-configuration"
INTROSPECTION_TIMEOUT = 5.0
MAX_INTROSPECTION_BYTES = 65536

log = logging.getLogger(__name__)


class IntrospectionUnavailable(Exception):
    """The service could not say whether a token is active (the message is for the log: never
    a token or a key)."""


class ServiceIntrospection:
    """The demo ledger as a client of the service's introspection endpoint (RFC 7662): the
    endpoint from the service's discovery document (on the issuer's origin only), the client
    authenticated with ``private_key_jwt`` (RFC 7523; ``aud`` the issuer identifier). Called with
    a token, it returns the service's JSON answer; anything else raises, which
    :func:`~trustanchor.ledger.require_active` turns into ``revocation_check_failed``.

    The key and the endpoint are read at the first call (and again after a failure), so a
    ledger whose key or service is missing refuses every token instead of failing to start."""

    def __init__(
        self,
        site: DemoSite,
        *,
        client_id: str = LEDGER_CLIENT_ID,
        timeout: float = INTROSPECTION_TIMEOUT,
    ) -> None:
        self.site = site
        self.client_id = client_id
        self.timeout = timeout
        self._prepared: tuple[str, PrivateKeyJwt] | None = None
        self._lock = threading.Lock()

    def __call__(self, token: str) -> Mapping[str, Any]:
        try:
            endpoint, auth = self._endpoint_and_auth()
            response = requests.post(
                endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=auth,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
            if response.status_code != 200:
                raise IntrospectionUnavailable(f"introspection: HTTP {response.status_code}")
            answer = strict_json.loads(
                response.content, max_depth=8, max_bytes=MAX_INTROSPECTION_BYTES
            )
            if not isinstance(answer, dict):
                raise IntrospectionUnavailable("introspection: the answer is not a JSON object")
        except Exception as exc:
            log.warning("demo ledger: cannot introspect at the service: %s", _why(exc))
            raise
        return answer

    def _endpoint_and_auth(self) -> tuple[str, PrivateKeyJwt]:
        with self._lock:
            if self._prepared is None:
                key = load_signing_key(self.site.keys_dir, self.client_id)
                issuer = self.site.service_url
                response = requests.get(
                    self.site.service(DISCOVERY_PATH), timeout=self.timeout, allow_redirects=False
                )
                if response.status_code != 200:
                    raise IntrospectionUnavailable(f"discovery: HTTP {response.status_code}")
                discovery = strict_json.loads(response.content, max_bytes=MAX_INTROSPECTION_BYTES)
                if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
                    raise IntrospectionUnavailable("discovery: not the service's document")
                endpoint = discovery.get("introspection_endpoint")
                if not isinstance(endpoint, str) or not endpoint.startswith(issuer + "/"):
                    raise IntrospectionUnavailable(
                        "discovery: no introspection endpoint on the issuer's origin"
                    )
                auth = PrivateKeyJwt(
                    self.client_id,
                    private_jwk(key),
                    alg="ES256",
                    aud=issuer,  # the issuer identifier only (FAPI 2.0)
                )
                self._prepared = (endpoint, auth)
            return self._prepared


def _why(exc: Exception) -> str:
    """What the log says about a failed introspection: our own messages (which name neither a
    token nor a key) and the class of anything else."""
    own = (IntrospectionUnavailable, BankClientError, strict_json.StrictJSONError)
    return str(exc) if isinstance(exc, own) else exc.__class__.__name__


@dataclass(frozen=True, slots=True)
class LedgerAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _instruction(body: Any) -> TransferInstruction:
    if not isinstance(body, dict) or set(body) - INSTRUCTION_MEMBERS:
        raise LedgerRefusal("invalid_instruction")
    try:
        return TransferInstruction(
            amount=body["amount"],
            currency=body["currency"],
            debtor_account=body["debtor_account"],
            creditor_account=body["creditor_account"],
            remittance_reference=body.get("remittance_reference"),
        )
    except KeyError as exc:
        raise LedgerRefusal("invalid_instruction") from exc


def _strings(body: dict[str, Any], members: frozenset[str]) -> dict[str, Any]:
    """The text members of ``body`` that an instruction has (what a refusal journals)."""
    return {k: v for k, v in body.items() if k in members and isinstance(v, str)}


def _funding_instruction(body: Any) -> FundingInstruction:
    if not isinstance(body, dict) or set(body) != FUNDING_MEMBERS:
        raise LedgerRefusal("invalid_instruction")
    return FundingInstruction(
        direction=body["direction"],
        amount=body["amount"],
        currency=body["currency"],
        deposit_account=body["deposit_account"],
        wallet_account=body["wallet_account"],
    )


class DemoLedger:
    def __init__(
        self,
        site: DemoSite,
        engine: Engine,
        book: LedgerBook,
        *,
        audience: str | None = None,
        introspect: Introspector | None = None,
    ) -> None:
        self.site = site
        self.book = book
        # Asked about every token before it is spent (fail closed: no answer, no booking).
        self.introspect: Introspector = introspect or ServiceIntrospection(site)
        self.replay = SqlReplayStore(engine)  # table ledger_consumed_jtis
        self.url = site.party(TRANSFERS_PATH)  # from the configured origin, never from Host
        self.fundings_url = site.party(FUNDINGS_PATH)
        self.verifier = LedgerTokenVerifier(
            site.service_url,
            # The service issues tokens for its default audience (tokens.default_audience, by
            # default "<issuer>/resource"); the demo ledger is that resource.
            audience or site.service("/resource"),
            self._fetch_jwks,
            replay=self.replay,
            clock=site.clock,
        )

    def create_tables(self) -> None:
        self.replay.create_table()

    def _fetch_jwks(self) -> bytes:
        response = requests.get(self.site.service("/jwks"), timeout=5)
        response.raise_for_status()
        return response.content

    def _checked(
        self,
        body: bytes,
        *,
        members: frozenset[str],
        instruction_of: Callable[[Any], Instr],
        url: str,
        authorization: HeaderValues,
        dpop: HeaderValues,
        check: Callable[[VerifiedAccessToken, Instr, int], A],
        journal: Callable[[str, Mapping[str, Any]], None],
    ) -> tuple[A, dict[str, Any]] | LedgerAnswer:
        """The steps both endpoints share, in the library's order: the instruction read, the
        token verified (DPoP, audience, lifetime), the instruction matched against it, and the
        service asked whether the token is still active. A refusal is journaled with the
        instruction's own members and answered; nothing is spent."""
        fields: dict[str, Any] = {}
        try:
            try:
                parsed = strict_json.loads(body, max_depth=2, max_bytes=MAX_BODY)
            except strict_json.StrictJSONError as exc:
                raise LedgerRefusal("invalid_instruction") from exc
            if isinstance(parsed, dict):
                # Only the instruction's own members: the anchor set comes from the token alone.
                fields = _strings(parsed, members)
            instruction = instruction_of(parsed)
            at = self.site.clock.now()
            token = self.verifier.verify(authorization, dpop, method="POST", url=url, at=at)
            fields["client_id"] = token.client_id
            fields["anchor_set"] = token.anchor_set
            approved = check(token, instruction, at)
            require_active(self.introspect, token)
        except LedgerRefusal as refusal:
            journal(refusal.reason, fields)
            return self._refused(refusal)
        return approved, fields

    def _spender(self, jti: str, valid_until: int) -> Callable[[Connection], bool]:
        def spend(conn: Connection) -> bool:
            return self.replay.consume_in(conn, jti, valid_until)

        return spend

    def _booking_refused(self, refused: BookingRefused, error: str, what: str) -> LedgerAnswer:
        if refused.reason == "token_used":
            return self._refused(LedgerRefusal("token_used"))
        return LedgerAnswer(
            409,
            {
                "error": error,
                "error_description": f"the ledger cannot execute this {what}: {refused.reason}",
                "reason": refused.reason,
            },
        )

    def execute(
        self, *, authorization: HeaderValues, dpop: HeaderValues, body: bytes
    ) -> LedgerAnswer:
        """Check and book one ``POST /ledger/transfers``."""
        checked = self._checked(
            body,
            members=INSTRUCTION_MEMBERS,
            instruction_of=_instruction,
            url=self.url,
            authorization=authorization,
            dpop=dpop,
            check=lambda token, instruction, at: check_transfer(token, instruction, at=at),
            journal=self._journal,
        )
        if isinstance(checked, LedgerAnswer):
            return checked
        approved, fields = checked
        booking = Booking(
            amount=approved.amount,
            debtor_account=approved.debtor_account,
            creditor_account=approved.creditor_account,
            remittance_reference=approved.remittance_reference,
            anchor_set=approved.anchor_set,
            token_jti=approved.jti,
            client_id=approved.client_id,
        )
        try:
            booking_id = self.book.book(
                booking, consume=self._spender(approved.jti, approved.valid_until)
            )
        except BookingRefused as refused:
            self._journal(refused.reason, fields)
            return self._booking_refused(refused, "transfer_refused", "transfer")
        return LedgerAnswer(
            201,
            {
                "booking_id": booking_id,
                "status": "executed",
                "amount": str(approved.amount),
                "currency": approved.amount.currency,
                "debtor_account": approved.debtor_account,
                "creditor_account": approved.creditor_account,
                "anchor_set": approved.anchor_set,
            },
        )

    def execute_funding(
        self, *, authorization: HeaderValues, dpop: HeaderValues, body: bytes
    ) -> LedgerAnswer:
        """Check and book one ``POST /ledger/fundings``."""
        checked = self._checked(
            body,
            members=FUNDING_MEMBERS,
            instruction_of=_funding_instruction,
            url=self.fundings_url,
            authorization=authorization,
            dpop=dpop,
            check=lambda token, instruction, at: check_funding(token, instruction, at=at),
            journal=self._journal_funding,
        )
        if isinstance(checked, LedgerAnswer):
            return checked
        approved, fields = checked
        booking = FundingBooking(
            direction=approved.direction,
            amount=approved.amount,
            deposit_account=approved.deposit_account,
            wallet_account=approved.wallet_account,
            link_id=approved.link_id,
            anchor_set=approved.anchor_set,
            token_jti=approved.jti,
            client_id=approved.client_id,
        )
        try:
            booking_id = self.book.book_funding(
                booking, consume=self._spender(approved.jti, approved.valid_until)
            )
        except BookingRefused as refused:
            self._journal_funding(refused.reason, fields)
            return self._booking_refused(refused, "funding_refused", "funding movement")
        return LedgerAnswer(
            201,
            {
                "booking_id": booking_id,
                "status": "executed",
                "direction": approved.direction,
                "amount": str(approved.amount),
                "currency": approved.amount.currency,
                "deposit_account": approved.deposit_account,
                "wallet_account": approved.wallet_account,
                "link_id": approved.link_id,
                "anchor_set": approved.anchor_set,
            },
        )

    def _journal_funding(self, reason: str, fields: Mapping[str, Any]) -> None:
        self.book.record_funding_refusal(
            reason,
            direction=fields.get("direction"),
            amount=fields.get("amount"),
            currency=fields.get("currency"),
            deposit_account=fields.get("deposit_account"),
            wallet_account=fields.get("wallet_account"),
            client_id=fields.get("client_id"),
            anchor_set=fields.get("anchor_set"),
        )

    def _refused(self, refusal: LedgerRefusal) -> LedgerAnswer:
        headers = refusal.response_headers(dpop_algs=self.verifier.dpop_algs)
        return LedgerAnswer(refusal.status, refusal.body(), headers)

    def _journal(self, reason: str, fields: Mapping[str, Any]) -> None:
        self.book.record_refusal(
            reason,
            amount=fields.get("amount"),
            currency=fields.get("currency"),
            debtor_account=fields.get("debtor_account"),
            creditor_account=fields.get("creditor_account"),
            client_id=fields.get("client_id"),
            anchor_set=fields.get("anchor_set"),
        )
