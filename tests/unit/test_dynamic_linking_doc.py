"""docs/DYNAMIC-LINKING.md's worked examples are what the code produces: the element built from
the payee's words (or from a standing authorization's bounds), its base64url encoding, its hash,
the key binding JWT's claims that the verification accepts, and the operation digest (each value
read from the document)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.openid4vp import transaction_data as td

DOC = (Path(__file__).resolve().parents[2] / "docs" / "DYNAMIC-LINKING.md").read_text("utf-8")
ENTRY = {
    "type": "value_transfer",
    "instructed_amount": {"currency": "JPY", "amount": "5000"},
    "debtor_account": "acc_Taro0000000000000001",
    "creditor_account": "acc_Hanako00000000007U-w",
    "remittance_reference": "INV-2026-0001",
}
STANDING_ENTRY = {
    "type": "standing_funding",
    "directions": ["deposit_to_wallet"],
    "deposit_account": "acc_Zk3v9QmT1xW0bYp2Lr8s",
    "wallet_account": "acc_Hq7N2cVd5EoR4uJa6GtY",
    "max_amount": {"currency": "JPY", "amount": "30000"},
    "daily_amount": {"currency": "JPY", "amount": "100000"},
    "valid_days": 30,
}


def block(name: str) -> str:
    found = re.search(rf"<!-- example:{name} -->\n```[a-z]*\n(.*?)\n```", DOC, re.DOTALL)
    assert found is not None, name
    return found.group(1)


def test_the_worked_example_is_what_the_code_produces() -> None:
    element = td.value_transfer_element(
        amount="5000",
        currency="JPY",
        creditor=td.Creditor("Hanako Yamada", "Test Bank", "…" + ENTRY["creditor_account"][-4:]),
        remittance_reference="INV-2026-0001",
        credential_ids=["identity_credential"],
    )
    assert json.dumps(element, separators=(",", ":"), ensure_ascii=False) == block("element")
    encoded = td.encode(element)
    assert encoded == block("encoded")
    assert td.hash_of(encoded) == block("hash")
    kb = json.loads(block("kb-jwt"))
    assert kb["transaction_data_hashes"] == [block("hash")]
    td.verify([encoded], kb["transaction_data_hashes"], kb["transaction_data_hashes_alg"])
    assert td.operation_digest(ENTRY) == block("operation-digest")


def test_the_entry_in_the_document_is_the_one_digested() -> None:
    shown = re.search(r'```json\n(\{"type": "value_transfer",.*?)\n```', DOC, re.DOTALL)
    assert shown is not None
    assert json.loads(shown.group(1)) == ENTRY


def test_the_standing_authorization_example_is_what_the_code_produces() -> None:
    detail = StandingFundingDetail.from_entry(STANDING_ENTRY)
    element = td.standing_funding_element(
        directions=detail.directions,
        max_amount=str(detail.max_amount),
        daily_amount=str(detail.daily_amount),
        currency=detail.max_amount.currency,
        valid_days=detail.valid_days,
        deposit_account_reference="…" + detail.deposit_account[-4:],
        wallet_account_reference="…" + detail.wallet_account[-4:],
        credential_ids=["identity_credential"],
    )
    text = json.dumps(element, separators=(",", ":"), ensure_ascii=False)
    assert text == block("standing-element")
    encoded = td.encode(element)
    assert encoded == block("standing-encoded")
    assert td.hash_of(encoded) == block("standing-hash")
    td.verify([encoded], [block("standing-hash")], "sha-256")
    assert td.operation_digest(detail.to_entry()) == block("standing-operation-digest")
    shown = re.search(r'```json\n(\{"type": "standing_funding",.*?)\n```', DOC, re.DOTALL)
    assert shown is not None
    assert json.loads(shown.group(1)) == STANDING_ENTRY
