"""trustanchor.ledger.authorize_transfer: the steps in order, single use, and the optional
revocation check. (The same token raced by 20 threads on SQLite and PostgreSQL is in
tests/storage/test_ledger_replay_store.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from support.ledger import (
    ANCHOR_SET,
    AT,
    LEDGER_URL,
    Intermediary,
    ServiceIssuer,
    make_verifier,
    matching_instruction,
)

from trustanchor.ledger import (
    InMemoryReplayStore,
    Introspector,
    LedgerRefusal,
    LedgerTokenVerifier,
    TransferInstruction,
    authorize_transfer,
)


class Ledger:
    """One ledger (verifier + its replay store) and one intermediary presenting tokens to it."""

    def __init__(self, keys_dir: Path) -> None:
        self.issuer = ServiceIssuer(keys_dir)
        self.client = Intermediary()
        self.replay = InMemoryReplayStore()
        self.verifier: LedgerTokenVerifier = make_verifier(self.issuer, self.replay)

    def token(self, **claims: Any) -> str:
        return self.issuer.transfer_token(jkt=self.client.jkt, **claims)

    def present(
        self,
        token: str,
        instruction: TransferInstruction | None = None,
        *,
        introspect: Introspector | None = None,
    ) -> Any:
        return authorize_transfer(
            self.verifier,
            self.replay,
            authorization=f"DPoP {token}",
            dpop=self.client.proof(token),  # a fresh proof per request, as a client would
            method="POST",
            url=LEDGER_URL,
            instruction=instruction or matching_instruction(),
            introspect=introspect,
        )

    def refused(self, reason: str, token: str, *args: Any, **kwargs: Any) -> LedgerRefusal:
        with pytest.raises(LedgerRefusal) as caught:
            self.present(token, *args, **kwargs)
        assert caught.value.reason == reason, caught.value.log_detail
        return caught.value


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "keys")


def test_transfer_token_is_approved_once(ledger: Ledger) -> None:
    token = ledger.token()
    approved = ledger.present(token)
    assert approved.anchor_set == ANCHOR_SET
    assert str(approved.amount) == "5000"


def test_transfer_token_presented_again_is_token_used(ledger: Ledger) -> None:
    token = ledger.token()
    ledger.present(token)
    refusal = ledger.refused("token_used", token)
    assert (refusal.status, refusal.error) == (401, "invalid_token")


def test_refused_instruction_does_not_spend_the_token(ledger: Ledger) -> None:
    token = ledger.token()
    ledger.refused("amount_mismatch", token, matching_instruction(amount="9000"))
    ledger.refused(
        "creditor_mismatch", token, matching_instruction(creditor_account="acc_" + "Z" * 20)
    )
    assert ledger.present(token).jti is not None


def test_refused_proof_does_not_spend_the_token(ledger: Ledger) -> None:
    token = ledger.token()
    with pytest.raises(LedgerRefusal) as caught:
        authorize_transfer(
            ledger.verifier,
            ledger.replay,
            authorization=f"DPoP {token}",
            dpop=Intermediary().proof(token),  # someone else's key
            method="POST",
            url=LEDGER_URL,
            instruction=matching_instruction(),
        )
    assert caught.value.reason == "dpop_key_mismatch"
    ledger.present(token)


def test_expired_token_is_refused_and_not_spent(ledger: Ledger) -> None:
    token = ledger.token(iat=AT - 600, exp=AT - 300)
    ledger.refused("token_expired", token)
    assert ledger.replay.purge(AT + 10**6) == 0  # nothing recorded: neither token nor proof


# -- revocation through introspection (optional) -----------------------------------------------


class IssuerIntrospection:
    """The service's /introspect as the ledger's injected callable sees it (RFC 7662 answers);
    the endpoint itself is tested in the flow tests."""

    def __init__(self, answer: Mapping[str, Any] | Exception) -> None:
        self.answer = answer
        self.seen: list[str] = []

    def __call__(self, token: str) -> Mapping[str, Any]:
        self.seen.append(token)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_token_reported_inactive_is_token_revoked(ledger: Ledger) -> None:
    token = ledger.token()
    introspect = IssuerIntrospection({"active": False})
    refusal = ledger.refused("token_revoked", token, introspect=introspect)
    assert introspect.seen == [token]
    assert refusal.status == 401


@pytest.mark.parametrize("answer", [{}, {"active": "true"}, {"active": 1}])
def test_introspection_answer_that_is_not_active_true_is_token_revoked(
    ledger: Ledger, answer: dict[str, Any]
) -> None:
    ledger.refused("token_revoked", ledger.token(), introspect=IssuerIntrospection(answer))


def test_active_token_is_approved_with_introspection(ledger: Ledger) -> None:
    token = ledger.token()
    jti = ledger.verifier.verify(
        f"DPoP {token}", ledger.client.proof(token), method="POST", url=LEDGER_URL
    ).jti
    introspect = IssuerIntrospection({"active": True, "jti": jti})
    assert ledger.present(token, introspect=introspect).jti == jti


def test_failing_introspection_fails_closed(ledger: Ledger) -> None:
    token = ledger.token()
    refusal = ledger.refused(
        "revocation_check_failed", token, introspect=IssuerIntrospection(TimeoutError())
    )
    assert (refusal.status, refusal.error) == (503, "temporarily_unavailable")
    ledger.present(token)  # not spent: it can still be used once introspection answers


def test_introspection_about_another_token_fails_closed(ledger: Ledger) -> None:
    ledger.refused(
        "revocation_check_failed",
        ledger.token(),
        introspect=IssuerIntrospection({"active": True, "jti": "someone-else"}),
    )


def test_revocation_is_checked_only_after_the_transfer_matches(ledger: Ledger) -> None:
    introspect = IssuerIntrospection({"active": True})
    ledger.refused(
        "currency_mismatch",
        ledger.token(),
        matching_instruction(currency="EUR"),
        introspect=introspect,
    )
    assert introspect.seen == []
