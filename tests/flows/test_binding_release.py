"""Attack-session finding F1 over HTTP, on SQLite and PostgreSQL: the wrong person approves a
link of someone else's accounts (their wallet answered the QR code in the customer's browser),
the intermediary notices from the ID token's subject and removes the link with
``DELETE /links/<id>``: the bindings that link made are released (the accounts are free for
their real owner) and every grant of the wrong holder naming them is dead, audited as
``binding_released``. An account another active link of that holder still uses keeps its
binding until that link goes too; the holder's own removal keeps the bindings
(docs/HOLDER-INTEGRITY.md "When the wrong person approved a link").
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from sqlalchemy import select
from support.ecosystem import Party
from support.html import parse
from support.payments import JP_HIGH, Bank, Holder, Payments, link, transfer
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.audit.entries import TokenRevoked, digest, parse_entry
from trustanchor.clock import SystemClock
from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_details import parse_operations
from trustanchor.services import decisions
from trustanchor.storage import accounts_repo
from trustanchor.storage.tables import grants, interactions


@pytest.fixture
def bank_b_party() -> Party:
    return Party("bank-b")


@pytest.fixture
def payments(bank_b_party: Party) -> Payments:
    """The issue 4 ecosystem with a second intermediary, bank B, declared like bank A."""
    return Payments().add_intermediary(bank_b_party, {"en": "Bank B", "ja": "B 銀行"})


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


@pytest.fixture
def bank_b(server: RunningServer, payments: Payments, bank_b_party: Party) -> Bank:
    return Bank(server, payments, bank_b_party)


def accounts_of(bank: Bank) -> dict[str, dict[str, Any]]:
    return {a["account_id"]: a for a in bank.api("GET", "/accounts").json()["accounts"]}


def active_links(bank: Bank) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = bank.api("GET", "/links").json()["links"]
    return links


def subject(tokens: dict[str, Any]) -> str:
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    return str(claims["sub"])


def approved(bank: Bank, person: Holder, details: list[dict[str, Any]]) -> dict[str, Any]:
    """``person`` logs in (or is still logged in) at ``bank``'s request and approves it; the
    tokens the bank redeems."""
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url(details, pkce))
    if not any(f.action.endswith("/consent") for f in _forms(page)):
        page = person.log_in(page, JP_HIGH)
    answer = person.decide(page, "approve")
    assert "code" in answer, answer
    return bank.redeem(answer["code"], pkce)


def _forms(page: Any) -> Any:
    return parse(page.text).forms


def not_me_then_approved(
    bank: Bank, person: Holder, details: list[dict[str, Any]]
) -> dict[str, Any]:
    """``person``'s browser still holds the session of Taro's login (his wallet answered
    there): the consent page names him, ``person`` answers "Not you?", then logs in and
    approves."""
    page = person.open(bank.authorization_url(details, Pkce.generate()))
    assert "taro T." in parse(page.text).text
    assert person.browser.submit(page.text, "/not-me").status_code == 303
    return approved(bank, person, details)


def wrong_wallet_in(browser_of: Holder, server: RunningServer, payments: Payments) -> Holder:
    """Taro's wallet answering the QR code shown in ``browser_of``'s browser: the login is
    Taro's, the browser (and the bank session behind the request) the customer's."""
    taro_here = Holder(server, payments, "taro")
    taro_here.browser = browser_of.browser
    return taro_here


def introspected(server: RunningServer, payments: Payments, token: str) -> bool:
    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
    response = ledger.post("/introspect", {"token": token})
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


def revocations(server: RunningServer) -> list[TokenRevoked]:
    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    found = []
    for item in server.services.audit.entries(0, size):
        entry = parse_entry(item.entry)
        if isinstance(entry, TokenRevoked):
            found.append(entry)
    return found


def test_the_intermediary_removing_a_wrong_persons_link_frees_the_accounts(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    t_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    t_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    taro_tokens = approved(bank, taro, [link(t_deposit, t_wallet)])
    taro_sub = subject(taro_tokens)

    # Hanako starts "Link" at her bank; Taro's wallet answers the QR code and Allow is pressed.
    hanako = Holder(server, payments, "hanako")
    h_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    h_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    wrong = approved(bank, wrong_wallet_in(hanako, server, payments), [link(h_deposit, h_wallet)])
    assert subject(wrong) == taro_sub  # what the bank compares with its customer
    seen = accounts_of(bank)
    assert seen[h_deposit]["holder"] == taro_sub and seen[h_wallet]["holder"] == taro_sub
    # Taro, in his own browser, now has a transfer token debiting Hanako's wallet.
    taking = approved(bank, taro, [transfer(h_wallet, t_wallet, "5000")])
    assert introspected(server, payments, taking["access_token"])
    assert introspected(server, payments, wrong["access_token"])
    [wrong_link] = [x for x in active_links(bank) if x["deposit_account"] == h_deposit]

    removed = bank.api("DELETE", f"/links/{wrong_link['link_id']}")
    assert removed.status_code == 204, removed.text

    seen = accounts_of(bank)
    for account in (h_deposit, h_wallet):
        assert seen[account]["bound"] is False
        assert seen[account]["holder"] is None and seen[account]["bound_at"] is None
        assert seen[account]["status"] == "active"
    with server.services.db.reader() as conn:
        for account in (h_deposit, h_wallet):
            row = accounts_repo.get(conn, account)
            assert row is not None
            assert (row.binding_identity_id, row.kyc_matched_identity_id) == (None, None)
            assert row.bound_by_link_id is None
    # Taro's own accounts and link are untouched.
    assert seen[t_deposit]["holder"] == taro_sub and seen[t_wallet]["holder"] == taro_sub
    assert [x["deposit_account"] for x in active_links(bank)] == [t_deposit]
    assert introspected(server, payments, taro_tokens["access_token"])
    # Every grant of Taro's naming Hanako's accounts is dead, the transfer token included.
    assert not introspected(server, payments, wrong["access_token"])
    assert not introspected(server, payments, taking["access_token"])
    refreshed = bank.rp.post(
        "/token", {"grant_type": "refresh_token", "refresh_token": wrong["refresh_token"]}
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    # Audited: the release is recorded against the consent that made the binding, and the
    # transfer grant revoked for it; nothing names an account.
    reasons = [e.reason for e in revocations(server)]
    assert reasons.count("removed_by_intermediary") == 1
    assert reasons.count("binding_released") == 2

    # Hanako can now link her own accounts as herself.
    hanako_tokens = not_me_then_approved(bank, hanako, [link(h_deposit, h_wallet)])
    hanako_sub = subject(hanako_tokens)
    assert hanako_sub != taro_sub
    seen = accounts_of(bank)
    assert seen[h_deposit]["holder"] == hanako_sub and seen[h_wallet]["holder"] == hanako_sub
    # ...and Taro can no longer touch them.
    pkce = Pkce.generate()
    page = taro.open(bank.authorization_url([transfer(h_wallet, t_wallet, "5000")], pkce))
    answer = taro.decide(page, "approve")
    assert answer["error_description"] == "denied by policy: holder_mismatch"


def test_an_account_another_active_link_uses_keeps_its_binding_until_that_link_goes(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    hanako = Holder(server, payments, "hanako")
    h_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    h_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    wrong = wrong_wallet_in(hanako, server, payments)
    approved(bank, wrong, [link(h_deposit, h_wallet)])
    # Taro, at bank B, links his bank B wallet to Hanako's deposit account (bound to him now).
    taro = Holder(server, payments, "taro")
    b_wallet = bank_b.register("taro-b-wallet", "cbdc_wallet", "Taro B wallet")
    approved(bank_b, taro, [link(h_deposit, b_wallet)])
    taro_sub = accounts_of(bank)[h_deposit]["holder"]
    [first] = [x for x in active_links(bank) if x["wallet_account"] == h_wallet]
    [second] = [x for x in active_links(bank) if x["wallet_account"] == b_wallet]

    assert bank.api("DELETE", f"/links/{first['link_id']}").status_code == 204
    seen = accounts_of(bank)
    assert seen[h_wallet]["bound"] is False  # used by no other link: released
    assert seen[h_deposit]["holder"] == taro_sub  # still used by the bank B link: kept
    assert accounts_of(bank_b)[b_wallet]["bound"] is True

    # Bank A removes the bank B link too (it touches its account): the deposit account, whose
    # binding link bank A (its registrar) removed, is released now; the bank B wallet that
    # link bound is bank B's to release, not bank A's.
    assert bank.api("DELETE", f"/links/{second['link_id']}").status_code == 204
    assert accounts_of(bank)[h_deposit]["bound"] is False
    assert accounts_of(bank_b)[b_wallet]["bound"] is True
    hanako_tokens = not_me_then_approved(bank, hanako, [link(h_deposit, h_wallet)])
    assert subject(hanako_tokens) != taro_sub
    assert accounts_of(bank)[h_deposit]["holder"] == subject(hanako_tokens)


def test_one_intermediary_never_releases_another_intermediarys_account(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    """Second attack session: Hanako links a bank B deposit account to her bank A wallet with
    her own consent; bank A, which sees the link through its wallet, removes it. Only bank B,
    which registered the deposit account (and alone binds it), may undo its binding: it stays
    Hanako's, and her grants naming it live on."""
    hanako = Holder(server, payments, "hanako")
    h_deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    h_wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    approved(bank, hanako, [link(h_deposit, h_wallet)])
    b_deposit = bank_b.register("hanako-b-deposit", "bank_deposit", "Hanako B savings")
    b_tokens = approved(bank_b, hanako, [link(b_deposit, h_wallet)])
    hanako_sub = accounts_of(bank)[h_wallet]["holder"]
    [through_b] = [x for x in active_links(bank) if x["deposit_account"] == b_deposit]

    assert bank.api("DELETE", f"/links/{through_b['link_id']}").status_code == 204
    assert accounts_of(bank_b)[b_deposit]["bound"] is True
    assert accounts_of(bank)[h_wallet]["holder"] == hanako_sub  # its own link is still there
    assert "binding_released" not in [e.reason for e in revocations(server)]
    assert not introspected(server, payments, b_tokens["access_token"])  # the link's own grant
    with server.services.db.reader() as conn:
        row = accounts_repo.get(conn, b_deposit)
        assert row is not None and row.holder_id is not None


def test_a_link_that_relied_on_bound_accounts_releases_nothing_it_did_not_bind(
    server: RunningServer, payments: Payments, bank: Bank, bank_b: Bank
) -> None:
    """Taro's own link (the binding one) stays; bank B's later link relied on his deposit
    account as bound: removing the later link keeps the deposit bound, and releases only the
    wallet that link bound."""
    taro = Holder(server, payments, "taro")
    t_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    t_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    approved(bank, taro, [link(t_deposit, t_wallet)])
    b_wallet = bank_b.register("taro-b-wallet", "cbdc_wallet", "Taro B wallet")
    approved(bank_b, taro, [link(t_deposit, b_wallet)])
    [later] = [x for x in active_links(bank_b) if x["wallet_account"] == b_wallet]

    assert bank_b.api("DELETE", f"/links/{later['link_id']}").status_code == 204
    assert accounts_of(bank)[t_deposit]["bound"] is True
    assert accounts_of(bank)[t_wallet]["bound"] is True
    assert accounts_of(bank_b)[b_wallet]["bound"] is False


def test_the_holders_own_removal_keeps_the_bindings(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    taro = Holder(server, payments, "taro")
    deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    tokens = approved(bank, taro, [link(deposit, wallet)])
    unlinked = approved(bank, taro, [link(deposit, wallet, action="unlink")])
    assert unlinked["authorization_details"][0]["actions"] == ["unlink"]
    assert active_links(bank) == []
    seen = accounts_of(bank)
    assert seen[deposit]["holder"] == subject(tokens) and seen[wallet]["holder"] is not None
    assert "binding_released" not in [e.reason for e in revocations(server)]


def test_the_release_entry_names_the_binding_consents_grant(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako = Holder(server, payments, "hanako")
    deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    approved(bank, wrong_wallet_in(hanako, server, payments), [link(deposit, wallet)])
    [row] = active_links(bank)
    with server.services.db.reader() as conn:
        [grant_id] = conn.execute(
            select(grants.c.id).where(grants.c.link_id == row["link_id"])
        ).scalars()
    assert bank.api("DELETE", f"/links/{row['link_id']}").status_code == 204
    released = [e for e in revocations(server) if e.reason == "binding_released"]
    assert [(e.grant, e.jti) for e in released] == [(digest(grant_id), None)]


def test_a_transfer_decided_before_the_release_is_not_carried_out_after_it(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Taro's transfer from Hanako's wallet is decided while the wallet is still bound to him;
    the bank's removal releases it before the consent commits: carrying out the stale decision
    is a conflict (the consent rolls back), so no transfer grant outlives the release."""
    hanako = Holder(server, payments, "hanako")
    deposit = bank.register("hanako-deposit", "bank_deposit", "Hanako savings")
    wallet = bank.register("hanako-wallet", "cbdc_wallet", "Hanako wallet")
    approved(bank, wrong_wallet_in(hanako, server, payments), [link(deposit, wallet)])
    taro = Holder(server, payments, "taro")
    t_deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    t_wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    approved(bank, taro, [link(t_deposit, t_wallet)])
    taro.open(bank.authorization_url([transfer(wallet, t_wallet, "5000")], Pkce.generate()))
    services = server.services
    at = services.clock.now()
    with services.db.reader() as conn:
        row = conn.execute(select(interactions).where(interactions.c.state == "consent")).one()
        authentication = Authentication.from_json(row.authentication)
        outcome = decisions.decide(
            services,
            conn,
            parse_operations([transfer(wallet, t_wallet, "5000")]),
            authentication,
            at=at,
            client_id=payments.bank.client_id,
        )
    assert outcome.allowed
    [wrong_link] = [x for x in active_links(bank) if x["deposit_account"] == deposit]
    assert bank.api("DELETE", f"/links/{wrong_link['link_id']}").status_code == 204
    with pytest.raises(decisions.BindingConflict), services.db.transaction() as conn:
        decisions.carry_out(conn, outcome, authentication, grant_id="none", at=at)
