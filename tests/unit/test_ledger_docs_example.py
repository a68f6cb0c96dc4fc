"""The code in docs/LEDGER.md runs: its ``python`` blocks are executed as written and driven with
real transfer and funding tokens and proofs (the WSGI app through a WSGI call, the
one-transaction variant on a SQLite database of the ledger's own, the funding endpoint with an
introspection callable)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from sqlalchemy import Engine, create_engine, func, select
from support.ledger import (
    AT,
    AUDIENCE,
    FUNDING_URL,
    ISSUER,
    LEDGER_URL,
    LINK_ID,
    Intermediary,
    ServiceIssuer,
    funding_entry,
    matching_funding,
    matching_instruction,
)

from trustanchor.clock import FixedClock
from trustanchor.ledger import (
    REASONS,
    ApprovedTransfer,
    InMemoryReplayStore,
    LedgerRefusal,
    LedgerTokenVerifier,
    SqlReplayStore,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "LEDGER.md"


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def run_block(index: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"ledger_doc_block_{index}"}
    exec(compile(doc_blocks()[index], f"{DOC}#block{index}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}", connect_args={"timeout": 10})
    yield engine
    engine.dispose()


@pytest.fixture
def parties(tmp_path: Path) -> tuple[ServiceIssuer, Intermediary]:
    return ServiceIssuer(tmp_path / "keys"), Intermediary()


def test_the_doc_has_the_three_examples() -> None:
    assert len(doc_blocks()) == 3


def call(
    app: Any, *, method: str, body: object, headers: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, Any]]:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/transfers",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    setup_testing_defaults(environ)
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = status
        captured["headers"] = dict(response_headers)

    payload = b"".join(app(environ, start_response))
    return captured["status"], captured["headers"], json.loads(payload)


def test_wsgi_example_books_a_transfer_once(
    engine: Engine, parties: tuple[ServiceIssuer, Intermediary]
) -> None:
    issuer, client = parties
    example = run_block(0)
    example["PUBLIC_URL"] = "https://ledger.example.com"  # what LEDGER_PUBLIC_URL would say
    replay = SqlReplayStore(engine)
    replay.create_table()
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, issuer.jwks(), replay=replay, clock=FixedClock(AT)
    )
    booked: list[ApprovedTransfer] = []

    def book(approved: ApprovedTransfer) -> str:
        booked.append(approved)
        return f"booking-{len(booked)}"

    app = example["make_app"](verifier, replay, book)
    token = issuer.transfer_token(jkt=client.jkt)
    instruction = {
        "amount": "5000",
        "currency": "JPY",
        "debtor_account": matching_instruction().debtor_account,
        "creditor_account": matching_instruction().creditor_account,
        "remittance_reference": "INV-2026-0001",
    }

    def headers() -> dict[str, str]:
        return {"Authorization": f"DPoP {token}", "DPoP": client.proof(token, url=LEDGER_URL)}

    status, _, body = call(
        app, method="POST", body={**instruction, "amount": "50000"}, headers=headers()
    )
    assert status == "403 Forbidden"
    assert body["reason"] == "amount_mismatch"

    status, _, body = call(app, method="POST", body=instruction, headers=headers())
    assert status == "201 Created"
    assert body == {
        "booking_id": "booking-1",
        "amount": "5000",
        "currency": "JPY",
        "anchor_set": booked[0].anchor_set,
    }

    status, response_headers, body = call(app, method="POST", body=instruction, headers=headers())
    assert status == "401 Unauthorized"
    assert body["reason"] == "token_used"
    assert response_headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')
    assert len(booked) == 1

    status, _, body = call(app, method="POST", body=b"{not json", headers=headers())
    assert (status, body) == ("400 Bad Request", {"error": "invalid_request"})
    status, _, _ = call(app, method="GET", body=b"", headers={})
    assert status == "405 Method Not Allowed"


def test_one_transaction_example_books_once_and_rolls_back_with_the_booking(
    engine: Engine, parties: tuple[ServiceIssuer, Intermediary]
) -> None:
    issuer, client = parties
    example = run_block(1)
    example["bookings_metadata"].create_all(engine)
    replay = SqlReplayStore(engine)
    replay.create_table()
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, issuer.jwks(), replay=replay, clock=FixedClock(AT)
    )
    token = issuer.transfer_token(jkt=client.jkt)

    def present() -> ApprovedTransfer:
        result: ApprovedTransfer = example["authorize_and_book"](
            verifier,
            replay,
            engine,
            authorization=f"DPoP {token}",
            dpop=client.proof(token),
            url=LEDGER_URL,
            instruction=matching_instruction(),
        )
        return result

    approved = present()
    with pytest.raises(LedgerRefusal) as caught:
        present()
    assert caught.value.reason == "token_used"
    bookings = example["bookings"]
    with engine.connect() as conn:
        rows = conn.execute(select(bookings.c.token_jti, bookings.c.amount)).all()
    assert rows == [(approved.jti, "5000")]

    # A booking that fails (here: the bookings table is gone) leaves the token unspent.
    other = issuer.transfer_token(jkt=client.jkt)
    bookings.drop(engine)
    with pytest.raises(Exception, match="bookings"):
        example["authorize_and_book"](
            verifier,
            replay,
            engine,
            authorization=f"DPoP {other}",
            dpop=client.proof(other),
            url=LEDGER_URL,
            instruction=matching_instruction(),
        )
    with engine.connect() as conn:
        spent = conn.execute(
            select(func.count())
            .select_from(replay.table)
            .where(replay.table.c.namespace == "access_token")
        ).scalar_one()
    assert spent == 1  # only the first token


def test_the_doc_lists_exactly_the_reason_codes() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Reason codes", 1)[1]
    listed = re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.M)
    assert sorted(listed) == sorted(REASONS)
    for reason in listed:
        error, status, _ = REASONS[reason]
        row = re.search(rf"^\| `{reason}` \| (\d+) (\w+) \|", text, flags=re.M)
        assert row is not None and (int(row.group(1)), row.group(2)) == (status, error), reason


def test_funding_example_executes_a_movement_once_and_learns_of_a_removed_link(
    parties: tuple[ServiceIssuer, Intermediary],
) -> None:
    issuer, client = parties
    execute_funding = run_block(2)["execute_funding"]
    replay = InMemoryReplayStore()
    verifier = LedgerTokenVerifier(
        ISSUER, AUDIENCE, issuer.jwks(), replay=replay, clock=FixedClock(AT)
    )
    instruction = matching_funding()
    body = {
        "direction": instruction.direction,
        "amount": instruction.amount,
        "currency": instruction.currency,
        "deposit_account": instruction.deposit_account,
        "wallet_account": instruction.wallet_account,
    }
    removed_links: set[str] = set()

    def introspect(token: str) -> dict[str, Any]:
        # The service answers inactive once the grant relying on the link was revoked.
        return {"active": LINK_ID not in removed_links}

    def present(token: str) -> Any:
        return execute_funding(
            verifier,
            replay,
            introspect,
            authorization=f"DPoP {token}",
            dpop=client.proof(token, url=FUNDING_URL),
            public_url="https://ledger.example.com",
            body=body,
        )

    token = issuer.transfer_token(jkt=client.jkt, authorization_details=[funding_entry()])
    approved = present(token)
    assert (approved.link_id, str(approved.amount)) == (LINK_ID, "10000")
    with pytest.raises(LedgerRefusal) as caught:
        present(token)
    assert caught.value.reason == "token_used"

    removed_links.add(LINK_ID)
    later = issuer.transfer_token(jkt=client.jkt, authorization_details=[funding_entry()])
    with pytest.raises(LedgerRefusal) as caught:
        present(later)
    assert caught.value.reason == "token_revoked"
    with pytest.raises(KeyError):
        execute_funding(
            verifier,
            replay,
            introspect,
            authorization=None,
            dpop=None,
            public_url="https://ledger.example.com",
            body={"direction": "deposit_to_wallet"},
        )
