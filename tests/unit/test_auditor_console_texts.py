"""The auditor console's words (issue 12): every reason code the policy engine gives and every
refusal reason docs/AUDIT-FORMAT.md §1.5 lists is translated in both languages, and so is every
entry kind, outcome and sentence the console can build (with the same placeholders in each
language); the entries filter accepts exactly its documented parameters."""

from __future__ import annotations

import re
import string
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.audit.entries import KINDS
from trustanchor.openid4vp import transaction_data
from trustanchor.policy.decision import REASONS
from trustanchor.services import auditor_console
from trustanchor.services.auditor_console import EntryFilter, FilterRefused, parse_filter
from trustanchor.web.i18n import LANGUAGES, catalog

DOC = Path(__file__).parents[2] / "docs" / "AUDIT-FORMAT.md"
REVOCATION_REASONS = (  # token_revoked reasons the service writes (services/links.py callers)
    "revoked_by_client",
    "removed_by_holder",
    "removed_by_intermediary",
    "unlinked_by_holder",
    "binding_released",
    "account_closed",
    "anchor_suspended",
    "identity_unjoined",
    "credential_revoked",
    "credential_suspended",
    "link_approval_withdrawn",
)


def refusal_reasons() -> list[str]:
    """The refusal reason codes listed in docs/AUDIT-FORMAT.md §1.5 ("Reason codes")."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("**Reason codes.**", 1)[1].split("Any other refusal", 1)[0]
    codes = re.findall(r"`([a-z][a-z0-9_]*)`", section)
    assert len(codes) > 80
    return sorted(set(codes))


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_policy_reason_code_is_translated(language: str) -> None:
    texts = catalog(language)
    assert [r for r in REASONS if f"auditor.reason.{r}" not in texts] == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_documented_refusal_and_revocation_reason_is_translated(language: str) -> None:
    texts = catalog(language)
    codes = [*refusal_reasons(), *REVOCATION_REASONS]
    assert [r for r in codes if f"auditor.reason.{r}" not in texts] == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_dynamic_linking_login_failure_is_translated(language: str) -> None:
    """A wallet that did not sign the operation, or refused our transaction data type, fails the
    login with these reasons (services/wallet_login.py); the console says so in words."""
    texts = catalog(language)
    codes = [*transaction_data.REASONS, "wallet_refused_transaction_data"]
    assert [r for r in codes if f"auditor.reason.{r}" not in texts] == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_kind_outcome_and_operator_change_is_named(language: str) -> None:
    texts = catalog(language)
    needed = [f"auditor.kinds.{kind}" for kind in KINDS]
    needed += [f"auditor.outcomes.{outcome}" for outcome in auditor_console.OUTCOMES]
    needed += [f"auditor.endpoint.{endpoint}" for endpoint in ("par", "token")]
    needed += [f"auditor.what.{what}" for what in ("anchor", "anchor_set", "client")]
    needed += [f"auditor.what.{what}" for what in ("signing_key", "audit_key", "auditor")]
    actions = ("added", "updated", "replaced", "suspended", "resumed", "retired", "removed")
    needed += [f"auditor.action.{a}" for a in (*actions, "generated", "policy_changed")]
    assert [key for key in needed if key not in texts] == []


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_texts_with_the_same_placeholders() -> None:
    en, ja = catalog("en"), catalog("ja")
    en_keys = {k for k in en if k.startswith("auditor.")}
    ja_keys = {k for k in ja if k.startswith("auditor.")}
    assert en_keys == ja_keys
    assert [k for k in en_keys if placeholders(en[k]) != placeholders(ja[k])] == []


def test_japanese_texts_put_no_space_around_inserted_values() -> None:
    ja = catalog("ja")
    spaced = [k for k in ja if k.startswith("auditor.") and re.search(r" \{|\} ", ja[k])]
    assert spaced == []


def test_every_sentence_the_console_builds_has_its_text() -> None:
    """Describe an entry of each kind in each shape; each sentence key exists and its values
    are exactly the text's placeholders."""
    h = "sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k"
    d = "a" * 64
    samples = [
        {
            "kind": "decision",
            "decision_id": "x",
            "result": r,
            "reason": "allowed",
            "anchor_set_id": s,
        }
        for r in ("allowed", "denied")
        for s in ("set", None)
    ]
    samples += [
        {
            "kind": "token_issued",
            "jti": "j",
            "token_kind": k,
            "client_id": "c",
            "sub": sub,
            "scope": scope,
            "authorization_details": ad,
            "anchor_id": a,
            "anchor_set_id": a,
            "acr": None,
            "exp": 5,
        }
        for k in ("access_token", "id_token", "refresh_rotation")
        for sub, scope, ad, a in ((h, "openid", d, "x"), (None, "", None, None))
    ]
    samples += [
        {"kind": "token_revoked", "jti": "j", "grant": None, "reason": "r"},
        {"kind": "token_revoked", "jti": None, "grant": d, "reason": "r"},
        {"kind": "reuse_detected", "what": "code", "grant": d},
        {"kind": "reuse_detected", "what": "refresh_token", "grant": d},
        {"kind": "login", "anchor_id": "a", "outcome": "ok", "reason": None, "holder": h},
        {"kind": "login", "anchor_id": "a", "outcome": "ok", "reason": None, "holder": None},
        {"kind": "login", "anchor_id": "a", "outcome": "failed", "reason": "r", "holder": None},
        {
            "kind": "login_in_person",
            "anchor_id": "a",
            "outcome": "ok",
            "reason": None,
            "holder": h,
            "branch": "b",
            "operator": h,
        },
        {"kind": "operator_change", "what": "anchor", "id": "a", "action": "added"},
        {
            "kind": "refusal",
            "endpoint": "par",
            "client_id": None,
            "grant_type": None,
            "error": "e",
            "reason": "r",
        },
        {
            "kind": "refusal",
            "endpoint": "token",
            "client_id": "c",
            "grant_type": "g",
            "error": "e",
            "reason": "r",
        },
        {
            "kind": "omitted",
            "what": "login",
            "since": 0,
            "until": 600,
            "count": 1,
            "reasons": "r=1",
        },
        {
            "kind": "identity_join",
            "action": "joined",
            "identity": h,
            "anchor_id": "a",
            "holder": h,
            "new_holder": None,
            "rule": "r",
            "anchor_set_id": "s",
            "matched_anchor_id": "a",
            "claims": "birthdate",
        },
        {
            "kind": "identity_join",
            "action": "unjoined",
            "identity": h,
            "anchor_id": "a",
            "holder": h,
            "new_holder": h,
            "rule": None,
            "anchor_set_id": None,
            "matched_anchor_id": None,
            "claims": None,
        },
        {"kind": "not_yet_invented"},
        {"kind": "login", "anchor_id": "a"},  # incomplete: the generic sentence
    ]
    operations = [
        {
            "kind": "decision_operation",
            "decision_id": "x",
            "operation": operation,
            "currency": None if action else "JPY",
            "amount": None if action else 5000,
            "action": action,
        }
        for operation, action in (
            ("value_transfer", None),
            ("funding", None),
            ("standing_funding", None),
            ("account_link", "link"),
            ("account_link", "unlink"),
        )
    ]
    samples += operations  # each alone
    # A decision with its operation: every result, with and without a set, every operation.
    joined = [(decision, operation) for decision in samples[:4] for operation in operations]
    seen: dict[str, int] = defaultdict(int)

    def check(texts: dict[str, str], sentence: auditor_console.Sentence) -> None:
        key = f"auditor.sentence.{sentence.key}"
        assert key in texts, key
        assert placeholders(texts[key]) == set(sentence.values), key
        seen[sentence.key] += 1
        for clause in sentence.clauses:
            check(texts, clause)
        for value in sentence.values.values():
            if value.phrase is not None:
                check(texts, value.phrase)

    for language in LANGUAGES:
        for sample in samples:
            sentence = auditor_console.describe(sample)
            check(catalog(language), sentence)
            if sample["kind"] in KINDS and len(sample) > 3:
                assert sentence.key != "other", sample
        for decision, operation in joined:
            sentence = auditor_console.describe(decision, operation)
            assert sentence.key.startswith("operation_"), (decision, operation)
            check(catalog(language), sentence)
    prefix = "auditor.sentence."
    written = {k.removeprefix(prefix) for k in catalog("en") if k.startswith(prefix)}
    # Every sentence text is used (the others are how sentences are put together).
    assert written - {"joiner", "with_clauses", "reason_count", "unreadable"} == set(seen)


# --- the filter's parameters ------------------------------------------------------------------


def test_filter_parameters_parse_and_round_trip() -> None:
    parsed = parse_filter(
        {
            "kind": ["login", "decision", "login"],
            "outcome": ["failed", ""],
            "from": ["2026-01-31"],
            "to": [""],
        }
    )
    # Duplicates dropped, listed in the form's order (decision before login), empty values
    # ignored.
    assert parsed == EntryFilter(("decision", "login"), ("failed",), date(2026, 1, 31), None)
    assert sorted(auditor_console.ENTRY_KINDS) == sorted(KINDS)
    assert parsed.start == 1_769_817_600 and parsed.end is None
    params: dict[str, list[str]] = defaultdict(list)
    for name, value in parsed.query():
        params[name].append(value)
    assert parse_filter(params) == parsed
    assert parse_filter({}) == EntryFilter() and not EntryFilter().active
    assert parse_filter({"to": ["1970-01-01"]}).end == 86_400


@given(
    st.dictionaries(
        st.sampled_from(["kind", "outcome", "from", "to"]),
        st.lists(
            st.text(max_size=12) | st.sampled_from(["2026-02-28", "login", "denied"]), max_size=3
        ),
    )
)
def test_any_parameters_give_a_filter_or_a_stated_refusal(params: dict[str, list[str]]) -> None:
    try:
        parsed = parse_filter(params)
    except FilterRefused as exc:
        assert exc.parameter in params
        assert exc.reason in (
            "repeated",
            "unknown_kind",
            "unknown_outcome",
            "bad_date",
            "empty_period",
        )
        return
    assert set(parsed.kinds) <= set(KINDS)
    assert set(parsed.outcomes) <= set(auditor_console.OUTCOMES)
    if parsed.start is not None and parsed.end is not None:
        assert parsed.start < parsed.end


def test_a_decision_with_an_unreadable_operation_reads_as_a_decision_alone() -> None:
    decision = {
        "kind": "decision",
        "decision_id": "x",
        "result": "denied",
        "reason": "limit_exceeded",
        "anchor_set_id": "s",
    }
    for operation in (
        {"kind": "decision_operation", "operation": "teleport", "action": None},
        {"kind": "decision_operation", "operation": "value_transfer", "amount": "5000"},
        {"kind": "decision_operation", "operation": "account_link", "action": "merge"},
        {},
    ):
        assert auditor_console.describe(decision, operation).key == "decision_denied"
    assert auditor_console.describe(decision).key == "decision_denied"
