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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import Connection, Engine

from trustanchor import strict_json
from trustanchor.demo.ledger_book import Booking, BookingRefused, FundingBooking, LedgerBook
from trustanchor.demo.site import DemoSite
from trustanchor.ledger import (
    LedgerRefusal,
    LedgerTokenVerifier,
    SqlReplayStore,
    TransferInstruction,
    check_transfer,
)
from trustanchor.ledger.funding_check import FundingInstruction, check_funding
from trustanchor.ledger.token_check import HeaderValues, VerifiedAccessToken

TRANSFERS_PATH = "/ledger/transfers"
FUNDINGS_PATH = "/ledger/fundings"
MAX_BODY = 4096
INSTRUCTION_MEMBERS = frozenset(
    {"amount", "currency", "debtor_account", "creditor_account", "remittance_reference"}
)
FUNDING_MEMBERS = frozenset(
    {"direction", "amount", "currency", "deposit_account", "wallet_account"}
)


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
        self, site: DemoSite, engine: Engine, book: LedgerBook, *, audience: str | None = None
    ) -> None:
        self.site = site
        self.book = book
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

    def execute(
        self, *, authorization: HeaderValues, dpop: HeaderValues, body: bytes
    ) -> LedgerAnswer:
        """Check and book one ``POST /ledger/transfers``."""
        fields: dict[str, Any] = {}
        try:
            try:
                parsed = strict_json.loads(body, max_depth=2, max_bytes=MAX_BODY)
            except strict_json.StrictJSONError as exc:
                raise LedgerRefusal("invalid_instruction") from exc
            if isinstance(parsed, dict):
                # Only the instruction's own members: the anchor set comes from the token alone.
                fields = _strings(parsed, INSTRUCTION_MEMBERS)
            instruction = _instruction(parsed)
            at = self.site.clock.now()
            token = self.verifier.verify(authorization, dpop, method="POST", url=self.url, at=at)
            fields["client_id"] = token.client_id
            fields["anchor_set"] = token.anchor_set
            approved = check_transfer(token, instruction, at=at)
        except LedgerRefusal as refusal:
            self._journal(refusal.reason, fields)
            return self._refused(refusal)

        def spend(conn: Connection) -> bool:
            return self.replay.consume_in(conn, approved.jti, approved.valid_until)

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
            booking_id = self.book.book(booking, consume=spend)
        except BookingRefused as refused:
            self._journal(refused.reason, fields)
            if refused.reason == "token_used":
                return self._refused(LedgerRefusal("token_used"))
            return LedgerAnswer(
                409,
                {
                    "error": "transfer_refused",
                    "error_description": f"the ledger cannot execute this transfer: "
                    f"{refused.reason}",
                    "reason": refused.reason,
                },
            )
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
        fields: dict[str, Any] = {}
        try:
            try:
                parsed = strict_json.loads(body, max_depth=2, max_bytes=MAX_BODY)
            except strict_json.StrictJSONError as exc:
                raise LedgerRefusal("invalid_instruction") from exc
            if isinstance(parsed, dict):
                fields = _strings(parsed, FUNDING_MEMBERS)
            instruction = _funding_instruction(parsed)
            at = self.site.clock.now()
            token: VerifiedAccessToken = self.verifier.verify(
                authorization, dpop, method="POST", url=self.fundings_url, at=at
            )
            fields["client_id"] = token.client_id
            fields["anchor_set"] = token.anchor_set
            approved = check_funding(token, instruction, at=at)
        except LedgerRefusal as refusal:
            self._journal_funding(refusal.reason, fields)
            return self._refused(refusal)

        def spend(conn: Connection) -> bool:
            return self.replay.consume_in(conn, approved.jti, approved.valid_until)

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
            booking_id = self.book.book_funding(booking, consume=spend)
        except BookingRefused as refused:
            self._journal_funding(refused.reason, fields)
            if refused.reason == "token_used":
                return self._refused(LedgerRefusal("token_used"))
            return LedgerAnswer(
                409,
                {
                    "error": "funding_refused",
                    "error_description": "the ledger cannot execute this funding movement: "
                    f"{refused.reason}",
                    "reason": refused.reason,
                },
            )
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
