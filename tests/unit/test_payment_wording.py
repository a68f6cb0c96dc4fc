"""services/payment_wording.py: amounts written for the language (and read back exactly), and
why a step-up asks for a new login, from the decision's StepUp and the set's policy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.domain.money import MAX_MINOR, MINOR_UNITS, Amount, MoneyError
from trustanchor.policy.anchor_set_policy import parse_policy
from trustanchor.policy.decision import StepUp
from trustanchor.services.payment_wording import (
    LoginState,
    StepUpReason,
    explain_step_up,
    format_amount,
    parse_shown_amount,
)
from trustanchor.web import i18n

AMOUNTS = st.builds(
    Amount, st.sampled_from(sorted(MINOR_UNITS)), st.integers(min_value=1, max_value=MAX_MINOR)
)


@given(AMOUNTS, st.sampled_from(["en", "ja"]))
def test_any_amount_formats_and_parses_back(amount: Amount, language: str) -> None:
    shown = format_amount(amount, language)
    assert parse_shown_amount(shown, language) == amount
    assert " " not in shown.removeprefix(f"{amount.currency} ")  # one space at most, after the code


@pytest.mark.parametrize(
    ("currency", "minor", "language", "shown"),
    [
        ("JPY", 5000, "ja", "5,000円"),
        ("JPY", 5000, "en", "JPY 5,000"),
        ("JPY", 1, "ja", "1円"),
        ("JPY", 1_000_000, "en", "JPY 1,000,000"),
        ("EUR", 123450, "en", "EUR 1,234.50"),
        ("EUR", 5, "ja", "EUR 0.05"),
        ("USD", 100, "en", "USD 1.00"),
        ("KRW", 12345, "en", "KRW 12,345"),
    ],
)
def test_amounts_are_written_as_the_language_writes_them(
    currency: str, minor: int, language: str, shown: str
) -> None:
    assert format_amount(Amount(currency, minor), language) == shown


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("5000円", "ja"),  # not grouped as shown
        ("JPY 5,000", "ja"),  # yen is written with 円 in Japanese
        ("5,000円", "en"),
        ("JPY 5,00", "en"),
        ("EUR 1,234.5", "en"),  # not the currency's decimals
        ("XYZ 1", "en"),
        ("JPY  5,000", "en"),
        ("JPY 0", "en"),
        ("", "en"),
    ],
)
def test_text_that_is_not_a_shown_amount_is_refused(text: str, language: str) -> None:
    with pytest.raises(MoneyError):
        parse_shown_amount(text, language)


POLICY = parse_policy(
    {
        "operations": ["account_link", "value_transfer", "funding"],
        "min_assurance_link": "substantial",
        "min_assurance_transfer": "substantial",
        "limits": {"JPY": "1000000"},
        "step_up": [
            {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300},
            {
                "currency": "JPY",
                "above": "500000",
                "assurance": "high",
                "max_age": 60,
                "channel": "in_person",
            },
        ],
        "funding_limits": {"JPY": "500000"},
        "funding_step_up": [
            {"currency": "JPY", "above": "200000", "assurance": "high", "max_age": 600}
        ],
        "cumulative_step_up": [
            {
                "currency": "JPY",
                "window": "calendar_day",
                "per": "holder",
                "above": "300000",
                "assurance": "high",
                "max_age": 120,
            }
        ],
        "dynamic_linking": ["funding"],
    }
)
AT = 1_800_000_000


def transfer(amount: str) -> dict[str, Any]:
    return {
        "type": "value_transfer",
        "instructed_amount": {"currency": "JPY", "amount": amount},
        "debtor_account": "acc_a",
        "creditor_account": "acc_b",
    }


def funding(amount: str) -> dict[str, Any]:
    return transfer(amount) | {"type": "funding"}


def login(level: str, age: int = 10, *, fresh: bool = True, channel: str = "remote") -> LoginState:
    return LoginState(level=level, auth_time=AT - age, fresh=fresh, channel=channel)


def step_up(
    assurance: str, max_age: int | None, *, in_person: bool = False, signed: bool = False
) -> StepUp:
    return StepUp(assurance, max_age, "jp", ("jp-id",), in_person, dynamic_linking=signed)


def yen(amount: int) -> Amount:
    return Amount("JPY", amount)


CASES = [
    # A substantial login, an amount above the first threshold: the threshold and the level.
    (
        transfer("200000"),
        step_up("high", 300),
        login("substantial"),
        [StepUpReason("amount_level", level="high", above=yen(100000))],
        ["level"],
    ),
    # The right level, but from an earlier session: the freshness rule, not a stronger login.
    (
        transfer("200000"),
        step_up("high", 300),
        login("high", fresh=False),
        [StepUpReason("amount_age", max_age=300, above=yen(100000))],
        ["sso"],
    ),
    # The right level, made for this request, but older than the rule allows.
    (
        transfer("200000"),
        step_up("high", 300),
        login("high", age=301),
        [StepUpReason("amount_age", max_age=300, above=yen(100000))],
        ["age"],
    ),
    # Both: the level and the age, each with the rule that asks for it.
    (
        transfer("200000"),
        step_up("high", 300),
        login("substantial", age=900),
        [
            StepUpReason("amount_level", level="high", above=yen(100000)),
            StepUpReason("amount_age", max_age=300, above=yen(100000)),
        ],
        ["level", "age"],
    ),
    # Above the second threshold: the strictest age (60 s, from the 500,000 rule) and a branch.
    (
        transfer("600000"),
        step_up("high", 60, in_person=True),
        login("high", age=90),
        [
            StepUpReason("amount_age", max_age=60, above=yen(500000)),
            StepUpReason("amount_in_person", above=yen(500000)),
        ],
        ["age", "not_in_person"],
    ),
    # No per-amount rule asks for 120 s: the day's total does.
    (
        transfer("50000"),
        step_up("high", 120),
        login("substantial", age=200),
        [
            StepUpReason("total_level", level="high", above=yen(300000), window="calendar_day"),
            StepUpReason("total_age", max_age=120, above=yen(300000), window="calendar_day"),
        ],
        ["level", "age"],
    ),
    # A link below the set's minimum: the operation's own level, no amount.
    (
        {"type": "account_link", "actions": ["link"]},
        step_up("substantial", None),
        login("low"),
        [StepUpReason("operation_level", level="substantial")],
        ["level"],
    ),
    # Funding: its own threshold, and dynamic linking for funding in this set.
    (
        funding("250000"),
        step_up("high", 600, signed=True),
        login("substantial"),
        [
            StepUpReason("amount_level", level="high", above=yen(200000)),
            StepUpReason("dynamic_linking"),
        ],
        ["level", "not_signed"],
    ),
    # A standing funding authorization has no amount: the funding minimum, no threshold.
    (
        {"type": "standing_funding", "directions": ["deposit_to_wallet"]},
        step_up("substantial", None),
        login("low"),
        [StepUpReason("operation_level", level="substantial")],
        ["level"],
    ),
    # Only dynamic linking: a fresh high login that did not sign the movement.
    (
        funding("1000"),
        step_up("substantial", None, signed=True),
        login("high"),
        [StepUpReason("dynamic_linking")],
        ["not_signed"],
    ),
]


@pytest.mark.parametrize(("entry", "needed", "state", "reasons", "shortfalls"), CASES)
def test_step_up_reasons_name_the_rule_that_asks_for_it(
    entry: dict[str, Any],
    needed: StepUp,
    state: LoginState,
    reasons: list[StepUpReason],
    shortfalls: list[str],
) -> None:
    explained = explain_step_up(POLICY, needed, entry, state, at=AT)
    assert list(explained.reasons) == reasons
    assert list(explained.shortfalls) == shortfalls
    assert explained.stronger == ("level" in shortfalls)


def test_a_rule_the_policy_does_not_have_is_never_named() -> None:
    """A step-up asking for something no rule of the (changed) policy explains: the reason
    names the requirement without a threshold rather than inventing one."""
    explained = explain_step_up(
        parse_policy({"min_assurance_transfer": "substantial"}),
        step_up("high", 45),
        transfer("200000"),
        login("low", age=100),
        at=AT,
    )
    assert list(explained.reasons) == [
        StepUpReason("level", level="high"),
        StepUpReason("age", max_age=45),
    ]


# A CJK character: CJK punctuation (、。「」), hiragana, katakana, kanji, full-width forms (（）：).
_CJK = "\u3001-\u303f\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff01-\uffef"
# An ASCII space between a CJK character and a digit or an inserted value, either way round.
_STRAY_SPACE = re.compile(rf"[{_CJK}] +[0-9{{]|[0-9}}] +[{_CJK}]")


def _service_ja_texts() -> dict[str, str]:
    """Every Japanese text of the service (``ja.toml`` and ``ja/*.toml``), by file and key."""
    directory = Path(i18n.__file__).parent / "catalogs"
    texts: dict[str, str] = {}
    for path in [directory / "ja.toml", *sorted((directory / "ja").glob("*.toml"))]:
        part: dict[str, str] = {}
        i18n._flatten("", tomllib.loads(path.read_text(encoding="utf-8")), part)
        texts.update({f"{path.name}:{key}": text for key, text in part.items()})
    return texts


def test_the_stray_space_rule_finds_what_it_is_meant_to_find() -> None:
    for bad in ("1 回", "上限額は {limit}", "{client} に戻る", "そこでの 1", "2 つ"):
        assert _STRAY_SPACE.search(bad), bad
    for good in (
        "1回",
        "上限額は{limit}",
        "{client}に戻る",
        "と CBDC ウォレット",
        "trustanchor から",
    ):
        assert not _STRAY_SPACE.search(good), good


def test_japanese_texts_put_no_space_between_words_and_numbers_or_inserted_values() -> None:
    """Japanese is written without spaces between words: a number (``1回``) or an inserted name,
    amount or level (``上限額は{limit}です``) sits against the text around it, in every Japanese
    catalog of the service. A space stays only beside a Latin word written in the text itself,
    as in ``CBDC ウォレット`` or ``trustanchor からの``, which this rule does not look at."""
    texts = _service_ja_texts()
    assert "payments.toml:operation.refused.limit" in texts  # the files were found
    stray = {key: text for key, text in texts.items() if _STRAY_SPACE.search(text)}
    assert stray == {}
