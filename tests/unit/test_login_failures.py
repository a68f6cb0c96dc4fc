"""Issue 10, item 7: which failed logins spend the anonymous budget (services/login_failures.py),
and the one budget shared with anonymous refusals counting what it leaves out per kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from trustanchor.anchors import sd_jwt, sd_jwt_vc
from trustanchor.services import auditor_console, login_failures, my_links
from trustanchor.services.container import Services
from trustanchor.services.refusals import ClientBudgets, RefusalBudget

T0 = 1_700_000_000

VERIFIED_CREDENTIAL = [
    "credential_expired",
    "credential_not_yet_valid",
    "credential_too_old",
    "credential_revoked",
    "credential_suspended",
    "holder_mismatch",
    "missing_claims",
    "kb_stale",  # the key signed for this very nonce: the holder was there
    "identity_join_refused",  # a reason this module does not know: recorded
]


@dataclass
class _Budgets:
    """The two attributes of ``Services`` that ``budget_for`` reads."""

    refusal_budget: RefusalBudget = field(default_factory=RefusalBudget)
    client_login_budgets: ClientBudgets = field(default_factory=ClientBudgets)


def test_credential_free_reasons_spend_the_budget_of_whoever_started_the_flow() -> None:
    budgets = _Budgets()
    services = cast(Services, budgets)
    console = auditor_console.CLIENT.client_id
    assert {console, my_links.CLIENT.client_id} == login_failures.FIRST_PARTY_CLIENTS
    # First-party flows: the anonymous budget shared with anonymous refusals.
    assert login_failures.budget_for(services, "wallet_declined", console) is budgets.refusal_budget
    assert (
        login_failures.budget_for(services, "kb_nonce_mismatch", my_links.CLIENT_ID)
        is budgets.refusal_budget
    )
    # A registered intermediary's flow: its own budget, one per intermediary.
    bank = login_failures.budget_for(services, "wallet_declined", "bank")
    assert bank is not None and bank is not budgets.refusal_budget
    assert login_failures.budget_for(services, "wallet_error", "bank") is bank
    assert login_failures.budget_for(services, "wallet_declined", "bank-b") not in (None, bank)
    # An untraceable flow, or a failure about a verified credential: always recorded.
    assert login_failures.budget_for(services, "wallet_declined", None) is None
    for reason in VERIFIED_CREDENTIAL:
        for client in (console, "bank"):
            assert login_failures.budget_for(services, reason, client) is None, reason


def test_every_budgeted_reason_is_a_reason_the_service_has() -> None:
    from trustanchor.anchors import id_token, oidc_provider  # the upstream login's (H4b)

    known = set(sd_jwt.REASONS) | set(sd_jwt_vc.REASONS)
    known |= set(id_token.REASONS) | set(oidc_provider.REASONS)
    service = {
        "upstream_declined",
        "upstream_error",
        "upstream_mix_up",
        "upstream_token_failed",
        "wallet_declined",
        "wallet_error",
        "wallet_refused_transaction_data",
        "wallet_response_invalid",
        "interaction_gone",
        "anchor_suspended",
        "anchor_unknown",
    }
    assert known | service >= login_failures.BUDGETED_REASONS


def test_one_bucket_two_kinds_each_counts_what_it_left_out() -> None:
    budget = RefusalBudget(burst=2, per_second=1)
    assert budget.admit(T0, "login") == (True, 0)
    assert budget.admit(T0) == (True, 0)  # a refusal spends the same bucket
    assert budget.admit(T0, "login") == (False, 1)
    assert budget.admit(T0, "login") == (False, 2)
    assert budget.admit(T0) == (False, 1)
    assert budget.admit(T0 + 1) == (True, 1)  # the refusal left out, reported once
    assert budget.admit(T0 + 2, "login") == (True, 2)  # and the two logins


def test_windows_are_aligned() -> None:
    assert login_failures.window_start(T0) % login_failures.WINDOW == 0
    assert 0 <= T0 - login_failures.window_start(T0) < login_failures.WINDOW
