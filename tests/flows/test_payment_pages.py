"""Issue 12, "Payments a person understands", over HTTP (SQLite and PostgreSQL), in English and
Japanese: the consent page for a payment leads with the amount written for the language and the
payee as the payee's bank registered it (bounded, escaped, beside that bank's name and a masked
account reference), then who logged in and whose rules apply; a refused payment says why,
naming the trust schemes involved, and offers nothing to allow; a payment that needs a new login
says why (the amount above the set's threshold, a login from earlier), is not worded or styled
as a refusal, and the login page that follows says what the new login must be."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import update
from support.html import parse
from support.payments import (
    ANCHOR_SETS,
    EU_HIGH,
    JP_HIGH,
    JP_SET,
    JP_SUBSTANTIAL,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.rp import Pkce
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.policy.decision import Decision, StepUp
from trustanchor.services.decisions import DetailDecision, Outcome
from trustanchor.services.payment_wording import LoginState
from trustanchor.storage import accounts_repo
from trustanchor.storage.tables import accounts
from trustanchor.web import operations


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def linked_person(
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    subject: str,
    anchor_id: str,
    *,
    wallet_label: str | None = None,
) -> tuple[Holder, str, str]:
    """A person whose deposit account and wallet the bank registered and who linked them."""
    person = Holder(server, payments, subject)
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", wallet_label or f"{subject} wallet")
    pkce = Pkce.generate()
    page = person.open(bank.authorization_url([link(deposit, wallet)], pkce))
    bank.redeem(person.decide(person.log_in(page, anchor_id), "approve")["code"], pkce)
    return person, deposit, wallet


def visible(page: Any) -> str:
    """The page's text as shown: tags dropped, entities decoded, white space as one space."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def text_nodes(page: Any) -> list[str]:
    """Each run of text between two tags, as shown."""
    return [html.unescape(node).strip() for node in re.split(r"<[^>]+>", page.text)]


def element(page: Any, class_name: str) -> list[str]:
    """The raw inner HTML of every element with ``class_name`` (no nesting of the same tag)."""
    pattern = rf'<(\w+) class="{class_name}"[^>]*>(.*?)</\1>'
    return [m.group(2) for m in re.finditer(pattern, page.text, flags=re.S)]


def title(page: Any) -> str:
    found = re.search(r"<title>(.*?)</title>", page.text, flags=re.S)
    assert found is not None
    return html.unescape(found.group(1)).strip().removesuffix(" · trustanchor")


def open_payment(
    person: Holder, bank: Bank, details: list[dict[str, Any]], lang: str
) -> requests.Response:
    person.browser.session.headers["Accept-Language"] = lang
    return person.open(bank.authorization_url(details, Pkce.generate()))


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_leads_with_the_amount_and_the_payee_as_their_bank_registered_them(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    consent = open_payment(taro, bank, [transfer(taro_wallet, hanako_wallet, "5000")], lang)
    text = visible(consent)
    reference = "…" + hanako_wallet[-4:]
    assert element(consent, "payee-label") == ["<bdi>hanako wallet</bdi>"]
    assert hanako_wallet not in text  # the payee's account only masked
    if lang == "en":
        assert title(consent) == "Review and allow"
        assert element(consent, "payment-amount") == ["JPY 5,000"]
        assert "Send JPY 5,000 from “taro wallet” to:" in text
        assert f"The account name Test Bank registered for account {reference}" in text
        assert "Checked under the rules of “Japan CBDC pilot”." in text
        payment, who = text.index("JPY 5,000"), text.index("Logged in as")
        rules = text.index("Checked under the rules")
        assert payment < who < rules  # the payment first, then who, then whose rules
        assert (
            "The recipient was verified by jp-bank-ekyc (test) at assurance level “substantial”, "
            "under the rules of “Japan CBDC pilot”."
        ) in text
    else:
        assert title(consent) == "確認と許可"
        assert element(consent, "payment-amount") == ["5,000円"]
        assert "「taro wallet」から次の送金先へ5,000円を送金します：" in text
        assert f"テスト銀行が口座{reference}に登録した口座名義" in text
        assert "「日本 CBDC 実証」のルールで確認しました。" in text
        assert (
            "受取人は「日本 CBDC 実証」のルールのもとで、保証レベル「中」のjp-bank-ekyc（テスト）"
            "により本人確認されています。"
        ) in text
        assert text.index("5,000円") < text.index("ログイン中の方") < text.index("のルールで確認")
        assert "テスト銀行が次のことを求めています" in text  # no stray space after the name
        for node in text_nodes(consent):  # no stray spaces around inserted names
            for name in ("taro wallet", "テスト銀行", "5,000円", "日本 CBDC 実証"):
                assert not re.search(rf"[\u3000-\u30ff\u4e00-\u9fff\uff08-\uff1a] {name}", node)
                assert not re.search(rf"{name} [\u3000-\u30ff\u4e00-\u9fff\uff08-\uff1a]", node)
    page = parse(consent.text)
    assert any(("decision", "approve") in f.buttons for f in page.forms)


def test_a_hostile_payee_label_is_shown_escaped_bounded_and_as_the_banks_label(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """The payee's label is another party's free text: it may look like markup or like words of
    ours. It is escaped, clipped to 40 characters, stripped of control and bidi-override
    characters (a stored label from before the accounts API refused them), isolated from the
    text around it, and always introduced as the account name the payee's bank registered."""
    hostile = "<img src=x onerror=alert(1)>Refund from your bank: שלום עליכם ok"
    assert len(hostile) <= 64
    taro, taro_deposit, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, mallory_wallet = linked_person(
        server, payments, bank, "mallory", JP_SUBSTANTIAL, wallet_label=hostile
    )
    consent = open_payment(taro, bank, [transfer(taro_wallet, mallory_wallet, "5000")], "en")
    assert "<img" not in consent.text
    [label] = element(consent, "payee-label")
    inner = label.removeprefix("<bdi>").removesuffix("</bdi>")
    assert inner.startswith("&lt;img src=x onerror=alert(1)&gt;")  # escaped, not markup
    shown = html.unescape(inner)
    assert shown == hostile[:39] + "…" and len(shown) == 40
    assert f"The account name Test Bank registered for account …{mallory_wallet[-4:]}" in visible(
        consent
    )

    # A label stored with control and bidi-override characters: dropped when shown.
    stored = "\u202egnp.exe\u200f Refund\x07 from \t bank\u2066"
    with server.services.db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == mallory_wallet).values(label=stored))
    consent = open_payment(taro, bank, [transfer(taro_wallet, mallory_wallet, "5000")], "en")
    assert element(consent, "payee-label") == ["<bdi>gnp.exe Refund from bank</bdi>"]
    for character in ("\u202e", "\u200f", "\x07", "\u2066"):
        assert character not in consent.text

    # A label posing as the payer's own account: the page says whose it is from what the
    # service knows, not from the label.
    with server.services.db.transaction() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id == mallory_wallet)
            .values(label="Your own CBDC wallet ****7702")
        )
    consent = open_payment(taro, bank, [transfer(taro_wallet, mallory_wallet, "5000")], "en")
    assert element(consent, "payee-whose") == [
        "This money goes to another person&#39;s account: check the name above."
    ]
    own = open_payment(taro, bank, [transfer(taro_wallet, taro_deposit, "5000")], "en")
    assert element(own, "payee-whose") == ["This account is one of yours."]

    # The longest label the column holds, right-to-left: clipped all the same.
    with server.services.db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == mallory_wallet).values(label="ر" * 64))
    consent = open_payment(taro, bank, [transfer(taro_wallet, mallory_wallet, "5000")], "en")
    assert element(consent, "payee-label") == ["<bdi>" + "ر" * 39 + "…</bdi>"]
    assert "ر" * 40 not in consent.text


# What a consent page says will be shared: the scopes and the claims (en, ja).
SHARED_HEADINGS = (
    "also asks to",
    "Information that will be shared",
    "No personal information beyond a pseudonymous identifier.",
    "あわせて次のことも求めています",
    "共有される情報",
    "仮名の識別子以外の個人情報は共有されません。",
)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_refused_payment_names_the_trust_schemes_and_offers_nothing_to_allow(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, pierre_wallet = linked_person(server, payments, bank, "pierre", EU_HIGH)
    consent = open_payment(taro, bank, [transfer(taro_wallet, pierre_wallet, "5000")], lang)
    text = visible(consent)
    page = parse(consent.text)
    assert not any(("decision", "approve") in f.buttons for f in page.forms)
    assert '<li class="operation refused">' in consent.text
    if lang == "en":
        assert title(consent) == "Cannot be allowed"
        assert "Review and allow" not in text
        assert "not verified by trust anchors that recognise each other" in text
        assert (
            "You are verified in “Japan CBDC pilot”. "
            "The recipient is verified only in “EU digital identity wallets”. "
            "A payment needs one trust scheme (anchor set) that verified both of you."
        ) in text
        assert "Return to Test Bank" in text
    else:
        assert title(consent) == "許可できません"
        assert "確認と許可" not in text
        assert "あなたは「日本 CBDC 実証」で本人確認されています。" in text
        assert "受取人は「EU デジタル ID ウォレット」でのみ本人確認されています。" in text
        assert "テスト銀行に戻る" in text
    # Nothing will be shared: the page does not list what a consent would share.
    assert 'class="scopes"' not in consent.text and 'class="claims"' not in consent.text
    for shared in SHARED_HEADINGS:
        assert shared not in text, shared


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_above_the_limit_names_the_set_and_its_limit(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_HIGH)
    consent = open_payment(taro, bank, [transfer(taro_wallet, hanako_wallet, "2000000")], lang)
    text = visible(consent)
    if lang == "en":
        assert element(consent, "payment-amount") == ["JPY 2,000,000"]
        assert "The amount is above the limit for a single transfer." in text
        assert "Refused under the rules of “Japan CBDC pilot”." in text
        assert "The limit for one payment there is JPY 1,000,000." in text
    else:
        assert element(consent, "payment-amount") == ["2,000,000円"]
        assert "「日本 CBDC 実証」のルールにより拒否されました。" in text
        assert "このルールでの1回の送金の上限額は1,000,000円です。" in text
    assert not any(shared in text for shared in SHARED_HEADINGS), text


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_refused_link_lists_the_operation_asked_for_and_nothing_that_would_be_shared(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    """Linking one's deposit account with another person's wallet: refused. The page names the
    operation as asked for (not as one "you authorise") and leaves out the scopes and claims."""
    taro, taro_deposit, _ = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_HIGH)
    consent = open_payment(taro, bank, [link(taro_deposit, hanako_wallet)], lang)
    text = visible(consent)
    assert '<li class="operation refused">' in consent.text
    assert not any(("decision", "approve") in f.buttons for f in parse(consent.text).forms)
    assert 'class="scopes"' not in consent.text and 'class="claims"' not in consent.text
    assert not any(shared in text for shared in SHARED_HEADINGS), text
    if lang == "en":
        assert "Operations asked for" in text and "Operations you authorise" not in text
        assert "This cannot be allowed" in text
    else:
        assert "求められている操作" in text and "許可する操作" not in text
        assert "この操作は許可できません" in text


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_above_the_threshold_says_why_a_stronger_login_is_needed(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    hanako, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    _, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    consent = open_payment(hanako, bank, [transfer(hanako_wallet, taro_wallet, "200000")], lang)
    text = visible(consent)
    # Not a refusal: no alert, no refused styling, no "cannot be allowed".
    assert 'role="alert"' not in consent.text and "refused" not in consent.text
    assert '<li class="operation pending">' in consent.text
    assert 'class="scopes"' in consent.text  # shared once the new login is made
    assert ("Information that will be shared" if lang == "en" else "共有される情報") in text
    if lang == "en":
        assert title(consent) == "Log in again to continue"
        assert "cannot be allowed" not in text.lower()
        assert "A stronger login is needed" in text
        assert (
            "For amounts above JPY 100,000, the rules of “Japan CBDC pilot” ask for a login at "
            "assurance level “high”."
        ) in text
        assert "You logged in at assurance level “substantial”." in text
        assert (
            "Log in again with a credential from “Japan CBDC pilot” at assurance level “high” "
            "or higher."
        ) in text
    else:
        assert title(consent) == "続けるには再ログインが必要です"
        assert "より強い認証が必要です" in text
        assert (
            "100,000円を超える金額には、「日本 CBDC 実証」のルールにより保証レベル「高」の"
            "ログインが必要です。"
        ) in text
        assert "今回のログインの保証レベルは「中」です。" in text
    login = hanako.step_up(consent)
    notice = element(login, "notice")
    assert len(notice) == 1 and 'role="alert"' not in login.text
    if lang == "en":
        assert html.unescape(notice[0]).startswith(
            "To continue, log in again with a credential from “Japan CBDC pilot” at assurance "
            "level “high” or higher."
        )
    else:
        assert html.unescape(notice[0]).startswith(
            "続けるには、「日本 CBDC 実証」で認められた本人確認手段で、"
            "保証レベル「高」以上のログインを"
        )
    consent = hanako.log_in(login, JP_HIGH)
    assert title(consent) in ("Review and allow", "確認と許可")
    assert "JPY 200,000" in visible(consent) or "200,000円" in visible(consent)


def test_a_login_from_earlier_at_the_right_level_asks_for_a_new_login_not_a_stronger_one(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Hanako logged in at high moments ago (to link); her SSO session carries her to consent,
    but a step-up rule asks for a login made for this payment. The page does not tell her she
    needs a stronger login than the one she has: it says the login must be new, and why."""
    hanako, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_HIGH)
    _, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    consent = hanako.open(
        bank.authorization_url([transfer(hanako_wallet, taro_wallet, "200000")], Pkce.generate())
    )
    text = visible(consent)
    assert "A new login is needed" in text
    assert "stronger" not in text
    assert (
        "For amounts above JPY 100,000, the rules of “Japan CBDC pilot” ask for a login made "
        "within the last 5 minutes."
    ) in text
    assert ("Your login from earlier on this device does not count for this.") in text
    assert "You logged in at assurance level" not in text  # her level is not the problem


def funding(direction: str, deposit: str, wallet: str, amount: str) -> dict[str, Any]:
    return {
        "type": "funding",
        "direction": direction,
        "instructed_amount": {"currency": "JPY", "amount": amount},
        "deposit_account": deposit,
        "wallet_account": wallet,
    }


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_funding_between_ones_own_accounts_is_worded_as_a_move_in_both_directions(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    taro, deposit, wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    top_up = open_payment(
        taro, bank, [funding("deposit_to_wallet", deposit, wallet, "10000")], lang
    )
    sweep = open_payment(taro, bank, [funding("wallet_to_deposit", deposit, wallet, "5000")], lang)
    assert element(top_up, "payee-label") == []  # no payee: both accounts are the person's
    assert any(("decision", "approve") in f.buttons for f in parse(top_up.text).forms)
    if lang == "en":
        assert element(top_up, "payment-amount") == ["JPY 10,000"]
        assert (
            "Move JPY 10,000 from your deposit account “taro savings” to your CBDC wallet "
            "“taro wallet”"
        ) in visible(top_up)
        assert "Both accounts are yours: nothing goes to anyone else." in visible(top_up)
        assert (
            "Move JPY 5,000 from your CBDC wallet “taro wallet” to your deposit account "
            "“taro savings”"
        ) in visible(sweep)
    else:
        assert element(top_up, "payment-amount") == ["10,000円"]
        assert (
            "預金口座「taro savings」から CBDC ウォレット「taro wallet」へ10,000円を移します"
            in (visible(top_up))
        )
        assert "CBDC ウォレット「taro wallet」から預金口座「taro savings」へ5,000円を移します" in (
            visible(sweep)
        )


def test_a_large_funding_movement_says_every_reason_for_the_new_login(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Above the set's funding threshold (JPY 200,000: high, within 5 minutes), a person
    carried over by a substantial login from earlier falls short twice; both reasons are
    given, with where the login falls short, under one heading that is not a refusal."""
    hanako, deposit, wallet = linked_person(server, payments, bank, "hanako", JP_SUBSTANTIAL)
    consent = open_payment(
        hanako, bank, [funding("deposit_to_wallet", deposit, wallet, "300000")], "en"
    )
    text = visible(consent)
    assert "A stronger login is needed" in text and 'role="alert"' not in consent.text
    assert [html.unescape(re.sub(r"<[^>]+>", "", x)) for x in element(consent, "step-up-now")] == [
        "You logged in at assurance level “substantial”.",
        "Your login from earlier on this device does not count for this.",
    ]
    assert (
        "For amounts above JPY 200,000, the rules of “Japan CBDC pilot” ask for a login at "
        "assurance level “high”."
    ) in text
    assert (
        "For amounts above JPY 200,000, the rules of “Japan CBDC pilot” ask for a login made "
        "within the last 5 minutes."
    ) in text


@pytest.fixture
def linking_server(
    tmp_path: Path, database_url: str, payments: Payments
) -> Iterator[RunningServer]:
    """The same ecosystem, with jp-cbdc asking for every transfer to be signed in the wallet."""
    sets = tuple(
        {**s, "policy": {**s["policy"], "dynamic_linking": ["value_transfer"]}}
        if s["id"] == JP_SET
        else s
        for s in ANCHOR_SETS
    )
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[a.declaration() for a in payments.anchors.values()],
        clients=payments.clients(),
    )
    with running_server(dataclasses.replace(settings, anchor_sets=sets)) as running:
        yield running


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_to_be_signed_in_the_wallet_says_so_without_asking_for_a_stronger_login(
    linking_server: RunningServer, payments: Payments, lang: str
) -> None:
    """Taro logged in at high moments ago; the set asks for every transfer to be confirmed in
    the wallet, which his login from earlier did not do. The page asks him to confirm it in his
    wallet: not for a stronger login, not as a refusal."""
    server = linking_server
    bank = Bank(server, payments)
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_HIGH)
    consent = open_payment(taro, bank, [transfer(taro_wallet, hanako_wallet, "5000")], lang)
    text = visible(consent)
    assert 'role="alert"' not in consent.text and '<li class="operation pending">' in consent.text
    if lang == "en":
        assert "Confirm this payment in your wallet" in text and "stronger" not in text
        assert (
            "The rules of “Japan CBDC pilot” ask for every payment to be confirmed in your "
            "wallet, which signs the payment itself."
        ) in text
        assert "Log in again with your wallet" in text
    else:
        assert "この送金をウォレットで確認してください" in text and "より強い" not in text
        assert "「日本 CBDC 実証」のルールにより、送金ごとにウォレットでの確認が必要です。" in text


def test_funding_is_worded_from_the_decision_on_its_entry(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """web/operations.py on DetailDecisions built here over real accounts: a granted funding
    entry (with its link id) in Japanese, the same refused for a reason without a set, and a
    step-up on it explained from the set's funding_step_up rule."""
    _, deposit, wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    services = server.services
    with services.db.reader() as conn:
        found = accounts_repo.get_many(conn, [deposit, wallet])
    holder = found[deposit].holder_id
    assert holder is not None
    viewer = operations.Viewer(holder, payments.bank.client_id)
    entry = funding("wallet_to_deposit", deposit, wallet, "12345") | {"link_id": "lnk_" + "a" * 22}
    allowed = DetailDecision(
        "dec_1", entry, Decision(True, "allowed", JP_SET, 1, (JP_HIGH,)), found, None, ()
    )
    view = operations.describe(services, allowed, "ja", viewer)
    assert (
        view.text
        == "CBDC ウォレット「taro wallet」から預金口座「taro savings」へ12,345円を移します"
    )
    assert (view.amount, view.payee, view.allowed, view.refusal) == ("12,345円", None, True, None)
    assert view.notes == ("どちらもご本人の口座です。ほかの方には送られません。",)

    refused = dataclasses.replace(allowed, decision=Decision(False, "link_not_found"))
    view = operations.describe(services, refused, "en", viewer)
    assert (view.allowed, view.refusal, view.why) == (
        False,
        "These two accounts are not linked.",
        (),
    )

    needed = StepUp("high", 300, JP_SET, (JP_HIGH,))
    large = dataclasses.replace(
        allowed,
        entry=funding("deposit_to_wallet", deposit, wallet, "300000"),
        decision=Decision(False, "step_up_required", JP_SET, 1, (), needed),
    )
    view = operations.describe(services, large, "en", viewer)
    assert view.step_up and view.refusal is None and view.why == ()
    state = LoginState("substantial", services.clock.now() - 10, fresh=True)
    explained = operations.step_up_view(
        services, Outcome((large,), payments.bank.client_id), "en", state
    )
    assert explained is not None
    assert explained.heading == "A stronger login is needed"
    assert explained.reasons == (
        "For amounts above JPY 200,000, the rules of “Japan CBDC pilot” ask for a login at "
        "assurance level “high”.",
    )
    assert explained.now == ("You logged in at assurance level “substantial”.",)


def test_an_account_that_is_no_payee_is_shown_by_its_masked_id_only(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Naming an account id is no way to read its label: a transfer to an account nobody is
    bound to (refused, with the reason) shows the masked id alone."""
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    unbound = bank.register("lone-wallet", "cbdc_wallet", "Yamada Hanako private wallet")
    consent = open_payment(taro, bank, [transfer(taro_wallet, unbound, "5000")], "en")
    text = visible(consent)
    assert "Yamada" not in text and element(consent, "payee-label") == []
    assert f"Account …{unbound[-4:]}" in text and "not registered to a verified person" in text


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_standing_authorization_is_worded_with_its_bounds_and_how_to_end_it(
    server: RunningServer, payments: Payments, bank: Bank, lang: str
) -> None:
    """web/operations.py on a standing_funding DetailDecision built over real accounts: who may
    move what, automatically, within which bounds, for how long, and where to end it; it leads
    the page like a payment."""
    _, deposit, wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    services = server.services
    with services.db.reader() as conn:
        found = accounts_repo.get_many(conn, [deposit, wallet])
    holder = found[deposit].holder_id
    assert holder is not None
    entry = {
        "type": "standing_funding",
        "directions": ["deposit_to_wallet"],
        "deposit_account": deposit,
        "wallet_account": wallet,
        "max_amount": {"currency": "JPY", "amount": "50000"},
        "daily_amount": {"currency": "JPY", "amount": "100000"},
        "valid_days": 90,
    }
    item = DetailDecision(
        "dec_1",
        entry,
        Decision(True, "allowed", JP_SET, 1, (JP_HIGH,)),
        found,
        None,
        (),
        operation=StandingFundingDetail.from_entry(entry),
    )
    view = operations.describe(
        services, item, lang, operations.Viewer(holder, payments.bank.client_id)
    )
    assert view.money and view.allowed and view.payee is None
    if lang == "en":
        assert view.text == (
            "Let Test Bank top up your CBDC wallet “taro wallet” from your deposit account "
            "“taro savings” automatically, without asking you each time"
        )
        assert "At most JPY 50,000 at a time and JPY 100,000 a day, for 90 days." in view.notes
        assert any("“Your account links” page" in note for note in view.notes)
    else:
        assert view.text == (
            "テスト銀行が、預金口座「taro savings」から CBDC ウォレット「taro wallet」へ、"
            "その都度の確認なしに自動で入金することを許可します"
        )
        assert "1回50,000円まで、1日100,000円まで、90日間有効です。" in view.notes


@pytest.fixture
def limited_server(
    tmp_path: Path, database_url: str, payments: Payments
) -> Iterator[RunningServer]:
    """The same ecosystem, with jp-cbdc allowing 150,000 JPY of transfers per person a day."""
    daily = {
        "id": "daily",
        "currency": "JPY",
        "window": "calendar_day",
        "per": "holder",
        "limit": "150000",
    }
    sets = tuple(
        {**s, "policy": {**s["policy"], "cumulative": [daily]}} if s["id"] == JP_SET else s
        for s in ANCHOR_SETS
    )
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[a.declaration() for a in payments.anchors.values()],
        clients=payments.clients(),
    )
    with running_server(dataclasses.replace(settings, anchor_sets=sets)) as running:
        yield running


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_a_payment_above_a_periods_total_names_the_sets_limits(
    limited_server: RunningServer, payments: Payments, lang: str
) -> None:
    server = limited_server
    bank = Bank(server, payments)
    taro, _, taro_wallet = linked_person(server, payments, bank, "taro", JP_HIGH)
    _, _, hanako_wallet = linked_person(server, payments, bank, "hanako", JP_HIGH)
    first = open_payment(taro, bank, [transfer(taro_wallet, hanako_wallet, "100000")], lang)
    assert "code" in taro.decide(first, "approve")
    second = open_payment(taro, bank, [transfer(taro_wallet, hanako_wallet, "100000")], lang)
    text = visible(second)
    assert not any(("decision", "approve") in f.buttons for f in parse(second.text).forms)
    if lang == "en":
        assert "Refused under the rules of “Japan CBDC pilot”." in text
        assert (
            "The limits there on what you send over a period: JPY 150,000 a calendar day per "
            "person."
        ) in text
    else:
        assert "「日本 CBDC 実証」のルールにより拒否されました。" in text
        assert "このルールでの一定期間の送金の上限：1人あたり1日（暦日）に150,000円まで。" in text
