"""The labels the demo bank registers at the service (``POST /accounts``, one ``label`` per
account, shown to a payer on the consent page beside the bank's name): the holder's name as the
bank shows it on a transfer, in the person's language
(``スズキ タロウ（CBDC ウォレット ****7702）``, ``Erika Mustermann (CBDC wallet ****7703)``), and a
demo state registered before with the English labels keeps working (the service keeps a
reference's first label: another one is a 409)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.server import free_port, running_server, test_settings

from trustanchor.demo.bank.client import AccountConflict, BankClient
from trustanchor.demo.bank.desk import BankDesk
from trustanchor.demo.parties_state import open_bank, parties_engine
from trustanchor.demo.people import MAX_REGISTERED_LABEL, load_people
from trustanchor.demo.prepare import prepare
from trustanchor.demo.site import DemoSite


def bank_declaration(keys_dir: Path, parties_url: str) -> dict[str, Any]:
    """``demo-bank`` with the key prepare made: enough to register accounts."""
    jwks = json.loads((keys_dir / "clients" / "demo-bank.jwks.json").read_text("utf-8"))
    return {
        "client_id": "demo-bank",
        "client_name": {"en": "Demo Bank", "ja": "デモ銀行"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": jwks,
        "redirect_uris": [f"{parties_url}/bank/callback"],
        "grant_types": ["authorization_code", "client_credentials"],
        "scope": "openid accounts",
        "authorization_details_types": ["account_link"],
        "dpop_bound_access_tokens": True,
    }


@dataclass
class Bank:
    desk: BankDesk
    client: BankClient


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[Bank]:
    keys_dir = tmp_path / "demo-keys"
    prepare(keys_dir)
    parties_url = f"http://127.0.0.1:{free_port()}"  # nothing listens: the ledger is not used
    settings = test_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'service.db'}",
        port=free_port(),
        clients=[bank_declaration(keys_dir, parties_url)],
    )
    with running_server(settings) as server:
        site = DemoSite(server.issuer, parties_url, keys_dir, tmp_path / "parties")
        engine = parties_engine(site.state_dir)
        try:
            desk, _ledger = open_bank(site, engine)
            yield Bank(desk, desk.client)
        finally:
            engine.dispose()


def registered_label_is(client: BankClient, reference: str, kind: str, label: str) -> bool:
    """Whether the service holds ``label`` for the reference: the same label again answers the
    account, another one is a conflict."""
    try:
        client.register_account(reference, kind, label)
    except AccountConflict:
        return False
    return True


def test_the_people_get_labels_in_their_language_within_the_services_bounds() -> None:
    labels = {a.reference: a.registered_label for p in load_people() for a in p.accounts}
    assert labels["DEMO-CBDC-JP-7702"] == "スズキ タロウ（CBDC ウォレット ****7702）"
    assert labels["DEMO-0101-1234501"] == "ヤマダ ハナコ（普通預金 ****4501）"
    assert labels["DEMO-CBDC-JP-7703"] == "Erika Mustermann (CBDC wallet ****7703)"
    assert labels["DEMO-CBDC-JP-7704"] == "サトウ ウメ（CBDC ウォレット ****7704）"
    for label in labels.values():
        assert 0 < len(label) <= MAX_REGISTERED_LABEL
        # What a payee's bank shows a payer: a name and a masked account, nothing more.
        assert "DEMO-" not in label and not any(c.isdigit() for c in label.split("****")[0])


def test_a_new_state_registers_the_labels_a_payer_recognises(bank: Bank) -> None:
    messages = bank.desk.register_accounts()
    accounts = [a for p in bank.desk.people for a in p.accounts]
    assert sum("registered" in m for m in messages) == len(accounts)
    for account in accounts:
        assert registered_label_is(
            bank.client, account.reference, account.kind, account.registered_label
        ), account.reference
        assert not registered_label_is(
            bank.client, account.reference, account.kind, account.label.en
        ), account.reference
    assert bank.desk.register_accounts() == []  # the second start: nothing changes


def test_a_state_registered_with_the_english_labels_keeps_working(bank: Bank) -> None:
    # What the demo registered before the labels were in the person's language.
    before = {
        account.reference: bank.client.register_account(
            account.reference, account.kind, account.label.en
        ).account_id
        for p in bank.desk.people
        for account in p.accounts
    }
    bank.desk.register_accounts()  # no conflict: the earlier label is kept
    kept = {reference: entry.account_id for reference, entry in bank.desk.store.accounts().items()}
    assert kept == before
    for p in bank.desk.people:
        for account in p.accounts:
            assert registered_label_is(
                bank.client, account.reference, account.kind, account.label.en
            )
    assert bank.desk.register_accounts() == []
