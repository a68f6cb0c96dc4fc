"""Issue 12, "entries read as sentences": a decision is audited with what it decided on. Over
real HTTP, on SQLite and PostgreSQL: a link, a transfer, a funding movement and a refused
transfer each write a ``decision`` entry followed by its ``decision_operation`` entry (the
operation and amount, no account), and the auditor console reads the pair as one sentence in
English and Japanese ("Transfer of JPY 5,000 allowed in Japan CBDC pilot", "日本 CBDC 実証で
5,000円の送金を許可"), also when filtered to decisions only, while the operation entry alone
reads as a short sentence of its own."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import requests
from support.html import parse
from support.payments import JP_HIGH, JP_SET, Bank, Holder, Payments, link, transfer
from support.rp import Pkce
from support.server import RunningServer

from trustanchor.services import auditors as designations

ROW = re.compile(r'<tr id="entry-(\d+)"(.*?)</tr>', re.DOTALL)


def funding(deposit: str, wallet: str, amount: str) -> dict[str, Any]:
    return {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": {"currency": "JPY", "amount": amount},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


def at_consent(person: Holder, url: str) -> requests.Response:
    page = person.open(url)
    if any(form.action.endswith("/consent") for form in parse(page.text).forms):
        return page
    return person.log_in(page, JP_HIGH)


def approve(bank: Bank, person: Holder, details: list[dict[str, Any]]) -> None:
    pkce = Pkce.generate()
    answer = person.decide(at_consent(person, bank.authorization_url(details, pkce)), "approve")
    assert "code" in answer, answer
    bank.redeem(answer["code"], pkce)


def linked(bank: Bank, person: Holder) -> tuple[str, str]:
    name = person.subject
    deposit = bank.register(f"{name}-deposit", "bank_deposit", f"{name} savings")
    wallet = bank.register(f"{name}-wallet", "cbdc_wallet", f"{name} wallet")
    approve(bank, person, [link(deposit, wallet)])
    return deposit, wallet


def log(server: RunningServer) -> list[dict[str, Any]]:
    audit = server.services.audit
    audit.integrate_pending()
    size = audit.latest_checkpoint().checkpoint.size
    return [json.loads(e.entry) for e in audit.entries(0, size)]


def auditor_console(server: RunningServer, payments: Payments) -> Holder:
    """Aiko logs in to the console through the service's own login and is designated."""
    aiko = Holder(server, payments, "aiko")
    started = aiko.browser.submit(aiko.open(server.url("/auditor/login")).text, "/auditor/login")
    assert started.status_code == 303, started.text
    consent = at_consent(aiko, started.headers["Location"])
    decided = aiko.browser.submit(consent.text, "/consent", decision="approve")
    assert decided.status_code == 303, decided.text
    callback = aiko.browser.get(decided.headers["Location"])
    assert callback.status_code == 303 and callback.headers["Location"] == "/auditor/"
    page = aiko.browser.get(server.url("/auditor/"))
    assert page.status_code == 403  # not designated yet: the page shows their reference
    found = re.search(r'id="auditor-reference"[^>]*>([A-Za-z0-9_-]{43})</code>', page.text)
    assert found, page.text
    designations.add(server.services.db, found.group(1), "Aiko", now=server.services.clock.now())
    return aiko


def sentences(aiko: Holder, server: RunningServer, query: str) -> dict[int, str]:
    """Index → the sentence of each row of the entries page, as text."""
    page = aiko.browser.get(server.url(f"/auditor/entries?{query}"))
    assert page.status_code == 200, page.text
    found = {}
    for index, row in ROW.findall(page.text):
        sentence = re.search(r'<p class="sentence">(.*?)</p>', row, re.DOTALL)
        assert sentence, row
        found[int(index)] = html.unescape(re.sub(r"<[^>]+>", "", sentence.group(1)))
    return found


def test_a_transfer_is_audited_with_its_amount_and_read_as_one_sentence(
    payment_server: RunningServer, payments: Payments, bank: Bank
) -> None:
    server = payment_server
    taro, hanako = Holder(server, payments, "taro"), Holder(server, payments, "hanako")
    taro_deposit, taro_wallet = linked(bank, taro)
    _, hanako_wallet = linked(bank, hanako)
    approve(bank, taro, [transfer(taro_wallet, hanako_wallet, "5000")])
    approve(bank, taro, [funding(taro_deposit, taro_wallet, "30000")])
    # Above the set's 1,000,000 JPY limit: refused, and the refusal is what takes effect.
    pkce = Pkce.generate()
    big = at_consent(
        taro, bank.authorization_url([transfer(taro_wallet, hanako_wallet, "2000000")], pkce)
    )
    assert taro.decide(big, "deny")["error_description"] == "denied by policy: limit_exceeded"

    entries = log(server)
    decided = [i for i, e in enumerate(entries) if e["kind"] == "decision"]
    assert len(decided) == 5  # two links, a transfer, a funding movement, a refused transfer
    operations = []
    for i in decided:
        operation = entries[i + 1]  # right after its decision (nothing ran in parallel here)
        assert operation["kind"] == "decision_operation"
        assert (operation["decision_id"], operation["at"]) == (
            entries[i]["decision_id"],
            entries[i]["at"],
        )
        operations.append(
            (
                operation["operation"],
                operation["currency"],
                operation["amount"],
                operation["action"],
            )
        )
    assert operations == [
        ("account_link", None, None, "link"),
        ("account_link", None, None, "link"),
        ("value_transfer", "JPY", 5000, None),
        ("funding", "JPY", 30000, None),
        ("value_transfer", "JPY", 2_000_000, None),
    ]
    # Amounts without parties: no account of either person is in the log.
    text = json.dumps(entries)
    for account in (taro_deposit, taro_wallet, hanako_wallet):
        assert account not in text

    aiko = auditor_console(server, payments)
    transfer_at, funding_at, refused_at = decided[2:]
    decisions = "kind=decision&kind=decision_operation"
    english = sentences(aiko, server, f"{decisions}&lang=en")
    assert set(english) == {*decided, *(i + 1 for i in decided)}
    ids = [entries[i]["decision_id"] for i in decided]
    assert english[transfer_at] == (
        f"Transfer of JPY 5,000 allowed in Japan CBDC pilot — decision {ids[2]}"
    )
    assert english[funding_at] == (
        f"Funding of JPY 30,000 allowed in Japan CBDC pilot — decision {ids[3]}"
    )
    assert english[refused_at] == (
        "Transfer of JPY 2,000,000 denied in Japan CBDC pilot: amount above the limit"
        f" — decision {ids[4]}"
    )
    assert english[decided[0]] == f"Account link allowed in Japan CBDC pilot — decision {ids[0]}"
    # The operation entry alone reads as a short sentence of its own.
    assert english[transfer_at + 1] == f"Transfer of JPY 5,000 decided — decision {ids[2]}"

    japanese = sentences(aiko, server, f"{decisions}&lang=ja")
    assert japanese[transfer_at] == f"日本 CBDC 実証で5,000円の送金を許可（判定ID：{ids[2]}）"
    assert japanese[refused_at] == (
        f"日本 CBDC 実証で2,000,000円の送金を拒否：上限を超える金額（判定ID：{ids[4]}）"
    )
    assert japanese[transfer_at + 1] == f"5,000円の送金を判定（判定ID：{ids[2]}）"

    # Filtered to denied decisions, the operation entries are not listed but still joined.
    denied = sentences(aiko, server, "kind=decision&outcome=denied&lang=en")
    assert denied == {refused_at: english[refused_at]}
    only_operations = sentences(aiko, server, "kind=decision_operation")
    assert set(only_operations) == {i + 1 for i in decided}
    assert JP_SET not in "".join(only_operations.values())
