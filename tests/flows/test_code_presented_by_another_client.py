"""Issue 10 item 8a over HTTP: a leaked authorization code that its owner already redeemed,
presented by another registered client (authenticated as itself), gets the ``invalid_grant`` of
an unknown code (it learns nothing of the code) and revokes nothing: the owner's tokens stay
active and its refresh token still works. The owner presenting the code a second time is reuse
and revokes the grant (RFC 6749 section 4.1.2). SQLite and PostgreSQL."""

from __future__ import annotations

from support.assertions import assert_json_error
from support.rp import Pkce
from support.stage import Stage


def test_a_leaked_redeemed_code_presented_by_another_client_revokes_nothing(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    tokens = stage.bank.redeem(code, pkce.verifier).json()

    stolen = stage.shop.redeem(code, pkce.verifier, redirect_uri=stage.bank.redirect_uri)

    assert_json_error(stolen, 400, "invalid_grant")
    assert stage.ledger.introspect(tokens["access_token"])["active"] is True
    # the same answer as for a code that never existed: the other client learns nothing
    unknown = stage.shop.redeem("x" * 43, pkce.verifier, redirect_uri=stage.bank.redirect_uri)
    assert stolen.json() == unknown.json()
    refreshed = stage.bank.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text

    # The owner presenting it again is reuse: everything issued under the grant is revoked.
    assert_json_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")
    assert stage.ledger.introspect(refreshed.json()["access_token"]) == {"active": False}


def test_a_fresh_code_presented_by_another_client_stays_redeemable_by_its_owner(
    stage: Stage,
) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)

    stolen = stage.shop.redeem(code, pkce.verifier, redirect_uri=stage.bank.redirect_uri)

    assert_json_error(stolen, 400, "invalid_grant")
    redeemed = stage.bank.redeem(code, pkce.verifier)
    assert redeemed.status_code == 200, redeemed.text
    assert stage.ledger.introspect(redeemed.json()["access_token"])["active"] is True
