"""trustanchor.ledger.authorize_funding: the steps in order, single use (shared with transfer
tokens), and learning through introspection that the movement's link was removed. (The same
funding token raced by 20 threads on SQLite and PostgreSQL is in
tests/storage/test_ledger_replay_store.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from support.ledger import (
    ANCHOR_SET,
    AT,
    FUNDING_URL,
    LEDGER_URL,
    LINK_ID,
    STANDING_ID,
    Intermediary,
    ServiceIssuer,
    funding_entry,
    make_verifier,
    matching_funding,
    matching_instruction,
    transfer_entry,
)

from trustanchor.ledger import (
    ApprovedFunding,
    FundingInstruction,
    InMemoryReplayStore,
    Introspector,
    LedgerRefusal,
    LedgerTokenVerifier,
    authorize_funding,
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
        claims.setdefault("authorization_details", [funding_entry()])
        return self.issuer.transfer_token(jkt=self.client.jkt, **claims)

    def present(
        self,
        token: str,
        instruction: FundingInstruction | None = None,
        *,
        introspect: Introspector | None = None,
    ) -> ApprovedFunding:
        return authorize_funding(
            self.verifier,
            self.replay,
            authorization=f"DPoP {token}",
            dpop=self.client.proof(token, url=FUNDING_URL),  # a fresh proof per request
            method="POST",
            url=FUNDING_URL,
            instruction=instruction or matching_funding(),
            introspect=introspect,
        )

    def refused(self, reason: str, token: str, *args: Any, **kwargs: Any) -> LedgerRefusal:
        with pytest.raises(LedgerRefusal) as caught:
            self.present(token, *args, **kwargs)
        assert caught.value.reason == reason, caught.value.log_detail
        return caught.value


class IssuerIntrospection:
    """The service's /introspect as the ledger's injected callable sees it (RFC 7662 answers)."""

    def __init__(self, answer: Mapping[str, Any] | Exception) -> None:
        self.answer = answer
        self.seen: list[str] = []

    def __call__(self, token: str) -> Mapping[str, Any]:
        self.seen.append(token)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "keys")


def test_funding_token_is_approved_once(ledger: Ledger) -> None:
    token = ledger.token()
    approved = ledger.present(token)
    assert approved.anchor_set == ANCHOR_SET
    assert approved.link_id == LINK_ID
    assert str(approved.amount) == "10000"
    refusal = ledger.refused("token_used", token)
    assert (refusal.status, refusal.error) == (401, "invalid_token")


def test_refused_instruction_does_not_spend_the_token(ledger: Ledger) -> None:
    token = ledger.token()
    ledger.refused("amount_mismatch", token, matching_funding(amount="20000"))
    ledger.refused("direction_mismatch", token, matching_funding(direction="wallet_to_deposit"))
    refusal = ledger.refused(
        "wallet_account_mismatch", token, matching_funding(wallet_account="acc_" + "Z" * 20)
    )
    assert (refusal.status, refusal.error) == (403, "insufficient_scope")
    assert ledger.present(token).jti is not None


def test_refused_proof_does_not_spend_the_token(ledger: Ledger) -> None:
    token = ledger.token()
    with pytest.raises(LedgerRefusal) as caught:
        authorize_funding(
            ledger.verifier,
            ledger.replay,
            authorization=f"DPoP {token}",
            dpop=Intermediary().proof(token, url=FUNDING_URL),  # someone else's key
            method="POST",
            url=FUNDING_URL,
            instruction=matching_funding(),
        )
    assert caught.value.reason == "dpop_key_mismatch"
    ledger.present(token)


def test_a_proof_made_for_the_transfer_endpoint_is_refused(ledger: Ledger) -> None:
    token = ledger.token()
    with pytest.raises(LedgerRefusal) as caught:
        authorize_funding(
            ledger.verifier,
            ledger.replay,
            authorization=f"DPoP {token}",
            dpop=ledger.client.proof(token, url=LEDGER_URL),
            method="POST",
            url=FUNDING_URL,
            instruction=matching_funding(),
        )
    assert caught.value.reason == "dpop_htu_mismatch"


def test_expired_token_is_refused_and_not_spent(ledger: Ledger) -> None:
    token = ledger.token(iat=AT - 600, exp=AT - 300)
    ledger.refused("token_expired", token)
    assert ledger.replay.purge(AT + 10**6) == 0  # nothing recorded: neither token nor proof


def test_a_token_is_spent_once_whichever_endpoint_it_is_presented_to(ledger: Ledger) -> None:
    # A token granting both a transfer and a movement executes one of them, never both.
    token = ledger.token(authorization_details=[transfer_entry(), funding_entry()])
    ledger.present(token)
    with pytest.raises(LedgerRefusal) as caught:
        authorize_transfer(
            ledger.verifier,
            ledger.replay,
            authorization=f"DPoP {token}",
            dpop=ledger.client.proof(token),
            method="POST",
            url=LEDGER_URL,
            instruction=matching_instruction(),
        )
    assert caught.value.reason == "token_used"


def test_a_transfer_token_is_refused_at_the_funding_endpoint_and_not_spent(
    ledger: Ledger,
) -> None:
    token = ledger.token(authorization_details=[transfer_entry()])
    ledger.refused("not_a_funding_token", token)
    approved = authorize_transfer(
        ledger.verifier,
        ledger.replay,
        authorization=f"DPoP {token}",
        dpop=ledger.client.proof(token),
        method="POST",
        url=LEDGER_URL,
        instruction=matching_instruction(),
    )
    assert approved.anchor_set == ANCHOR_SET


# -- the link removed since the token was issued: introspection ------------------------------


def test_a_token_whose_link_was_removed_is_token_revoked(ledger: Ledger) -> None:
    # Removing a link revokes the grants relying on it; introspection then answers inactive.
    token = ledger.token()
    introspect = IssuerIntrospection({"active": False})
    refusal = ledger.refused("token_revoked", token, introspect=introspect)
    assert introspect.seen == [token]
    assert refusal.status == 401


def test_a_movement_token_whose_standing_authorization_was_revoked_is_token_revoked(
    ledger: Ledger,
) -> None:
    # Revoking a standing authorization (on /my, through the links API, or by a cascade) revokes
    # its grant and the movement tokens minted from it; introspection then answers inactive.
    token = ledger.token(
        authorization_details=[funding_entry(standing_authorization_id=STANDING_ID)]
    )
    ledger.refused("token_revoked", token, introspect=IssuerIntrospection({"active": False}))
    approved = ledger.present(token)  # not spent by the refusal; without introspection: usable
    assert approved.standing_authorization_id == STANDING_ID
    ledger.refused("token_used", token)


def test_active_token_is_approved_with_introspection(ledger: Ledger) -> None:
    token = ledger.token()
    jti = ledger.verifier.verify(
        f"DPoP {token}", ledger.client.proof(token, url=FUNDING_URL), method="POST", url=FUNDING_URL
    ).jti
    introspect = IssuerIntrospection({"active": True, "jti": jti})
    assert ledger.present(token, introspect=introspect).jti == jti


def test_failing_introspection_fails_closed_and_spends_nothing(ledger: Ledger) -> None:
    token = ledger.token()
    refusal = ledger.refused(
        "revocation_check_failed", token, introspect=IssuerIntrospection(TimeoutError())
    )
    assert (refusal.status, refusal.error) == (503, "temporarily_unavailable")
    ledger.present(token)


def test_revocation_is_checked_only_after_the_movement_matches(ledger: Ledger) -> None:
    introspect = IssuerIntrospection({"active": True})
    ledger.refused(
        "direction_mismatch",
        ledger.token(),
        matching_funding(direction="wallet_to_deposit"),
        introspect=introspect,
    )
    assert introspect.seen == []
