"""Every refusal reason the policy engine can give has wording for people in both languages
(SECURITY-CASES: "clear wording for every refusal reason"); the consent page never falls back to
the generic sentence for a reason the engine knows."""

from __future__ import annotations

import pytest

from trustanchor.policy.decision import REASONS
from trustanchor.web.i18n import LANGUAGES, catalog


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_policy_reason_is_worded(language: str) -> None:
    texts = catalog(language)
    missing = [r for r in REASONS if r != "allowed" and f"policy.reasons.{r}" not in texts]
    assert missing == []


def test_no_worded_reason_is_unknown_to_the_engine() -> None:
    worded = {
        k.removeprefix("policy.reasons.") for k in catalog("en") if k.startswith("policy.reasons.")
    }
    assert worded - set(REASONS) == {"generic"}
