"""Issue 3: everything the token endpoint issues, every revocation and reuse, every login outcome
at the wallet response endpoint has its audit leaf, written in the transaction of the work; and
when the leaf cannot be written, nothing is issued (503) and the code stays redeemable.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from sqlalchemy import func, select, text
from support.assertions import assert_json_error
from support.ecosystem import Ecosystem
from support.rp import Pkce
from support.server import RunningServer
from support.stage import Stage
from test_login_interaction import (
    fetch_request,
    open_wallet,
    post_presentation,
    post_response,
    presentation,
    start,
)

from trustanchor.audit.entries import (
    Entry,
    Login,
    ReuseDetected,
    TokenIssued,
    TokenRevoked,
    digest,
    parse_entry,
)
from trustanchor.digests import keyed_digest
from trustanchor.storage.tables import access_tokens, audit_leaves, authorization_codes, grants


def leaves(server: RunningServer) -> list[tuple[str | None, Entry]]:
    """Every leaf as (ref, parsed entry); parsing is strict, so each is canonical."""
    with server.services.db.reader() as conn:
        rows = conn.execute(select(audit_leaves).order_by(audit_leaves.c.id)).all()
    result = []
    for row in rows:
        entry = parse_entry(row.entry.encode("utf-8"))
        assert row.kind == entry.KIND
        result.append((row.ref, entry))
    return result


def raw_entries(server: RunningServer) -> list[str]:
    with server.services.db.reader() as conn:
        return [row.entry for row in conn.execute(select(audit_leaves.c.entry))]


def one_leaf(server: RunningServer, ref: str) -> TokenIssued:
    found = [entry for r, entry in leaves(server) if r == ref]
    assert len(found) == 1, (ref, found)
    entry = found[0]
    assert isinstance(entry, TokenIssued)
    return entry


def claims_of(token: str) -> dict[str, Any]:
    """The payload as the client sees it (the signature is other tests' business)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_access_token_leaf(server: RunningServer, token: str, *, anchor_id: str | None) -> None:
    claims = claims_of(token)
    entry = one_leaf(server, claims["jti"])
    assert entry.token_kind == "access_token"
    assert entry.client_id == claims["client_id"]
    assert entry.sub == (None if claims["sub"] == claims["client_id"] else claims["sub"])
    assert entry.scope == claims["scope"]
    assert entry.exp == claims["exp"]
    assert entry.at == claims["iat"]
    assert entry.acr == claims.get("acr")
    assert entry.anchor_id == anchor_id
    assert entry.anchor_set_id is None
    details = claims.get("authorization_details")
    assert entry.authorization_details == (
        None
        if not details
        else digest(json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    )


def holder_of_grant(server: RunningServer, access_token: str) -> tuple[str, str]:
    """(grant id, holder id) behind an access token, from the service's own tables."""
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(grants.c.id, grants.c.holder_id)
            .select_from(access_tokens.join(grants, grants.c.id == access_tokens.c.grant_id))
            .where(access_tokens.c.jti == claims_of(access_token)["jti"])
        ).one()
    return row.id, row.holder_id


# -- everything issued has exactly one leaf ------------------------------------------------------


def test_every_token_the_client_received_has_exactly_one_matching_leaf(stage: Stage) -> None:
    anchor_id = stage.ecosystem.anchor_id
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce, scope="openid profile")
    first = stage.bank.redeem(code, pkce.verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    second = stage.bank.refresh(tokens["refresh_token"], scope="profile")
    assert second.status_code == 200, second.text
    refreshed = second.json()
    machine = stage.bank.post("/token", {"grant_type": "client_credentials", "scope": "profile"})
    assert machine.status_code == 200, machine.text
    machine_token = machine.json()["access_token"]

    for access_token in (tokens["access_token"], refreshed["access_token"]):
        assert_access_token_leaf(stage.server, access_token, anchor_id=anchor_id)
    assert_access_token_leaf(stage.server, machine_token, anchor_id=None)
    assert claims_of(refreshed["access_token"])["scope"] == "profile"

    id_claims = claims_of(tokens["id_token"])
    id_entry = one_leaf(stage.server, id_claims["jti"])
    assert id_entry.token_kind == "id_token"
    assert (id_entry.client_id, id_entry.sub, id_entry.exp) == (
        stage.bank.client_id,
        id_claims["sub"],
        id_claims["exp"],
    )
    assert (id_entry.anchor_id, id_entry.acr) == (anchor_id, id_claims["acr"])
    assert "id_token" not in refreshed  # a refresh issues no ID token, and records none

    for refresh_token in (tokens["refresh_token"], refreshed["refresh_token"]):
        entry = one_leaf(stage.server, digest(refresh_token))
        assert entry.token_kind == "refresh_rotation"
        assert entry.sub == id_claims["sub"]
        assert entry.scope == "openid profile"  # the refresh token keeps the whole grant
        assert entry.anchor_id == anchor_id

    # The login that led here: ok, with the holder as a keyed pseudonym, never the holder id.
    _grant_id, holder_id = holder_of_grant(stage.server, tokens["access_token"])
    logins = [e for _r, e in leaves(stage.server) if isinstance(e, Login)]
    expected_holder = keyed_digest(
        stage.server.services.secrets.pairwise, "audit-holder", holder_id
    )
    assert [(e.anchor_id, e.outcome, e.reason, e.holder) for e in logins] == [
        (anchor_id, "ok", None, expected_holder)
    ]

    # No raw token, ID token, refresh token or code anywhere in the log.
    secrets = [
        code,
        pkce.verifier,
        tokens["access_token"],
        tokens["id_token"],
        tokens["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        machine_token,
        holder_id,
    ]
    for entry_text in raw_entries(stage.server):
        for secret in secrets:
            assert secret not in entry_text


def test_id_tokens_carry_a_jti_of_their_own(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    id_jti = claims_of(tokens["id_token"])["jti"]
    assert id_jti != claims_of(tokens["access_token"])["jti"]
    assert one_leaf(stage.server, id_jti).token_kind == "id_token"


# -- reuse and revocation --------------------------------------------------------------------------


def test_code_reuse_is_recorded_with_the_revocation_it_commits(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    tokens = stage.bank.redeem(code, pkce.verifier).json()
    grant_id, _holder = holder_of_grant(stage.server, tokens["access_token"])

    assert_json_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")

    reuses = [e for _r, e in leaves(stage.server) if isinstance(e, ReuseDetected)]
    assert [(e.what, e.grant) for e in reuses] == [("code", digest(grant_id))]
    assert stage.ledger.introspect(tokens["access_token"]) == {"active": False}


def test_refresh_token_reuse_is_recorded(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    grant_id, _holder = holder_of_grant(stage.server, tokens["access_token"])
    assert stage.bank.refresh(tokens["refresh_token"]).status_code == 200

    assert_json_error(stage.bank.refresh(tokens["refresh_token"]), 400, "invalid_grant")

    reuses = [e for _r, e in leaves(stage.server) if isinstance(e, ReuseDetected)]
    assert [(e.what, e.grant) for e in reuses] == [("refresh_token", digest(grant_id))]


def test_revocations_are_recorded_by_jti_and_by_grant_digest(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    grant_id, _holder = holder_of_grant(stage.server, tokens["access_token"])
    jti = claims_of(tokens["access_token"])["jti"]

    for _ in range(2):  # revoking twice changes nothing the second time, and records nothing
        revoked = stage.bank.post(
            "/revoke", {"token": tokens["access_token"], "token_type_hint": "access_token"}
        )
        assert revoked.status_code == 200, revoked.text
    assert stage.bank.post("/revoke", {"token": tokens["refresh_token"]}).status_code == 200

    revocations = [e for _r, e in leaves(stage.server) if isinstance(e, TokenRevoked)]
    assert [(e.jti, e.grant, e.reason) for e in revocations] == [
        (jti, None, "revoked_by_client"),
        (None, digest(grant_id), "revoked_by_client"),
    ]


# -- login outcomes at the wallet response endpoint ------------------------------------------------


def _failed_logins(server: RunningServer) -> list[tuple[str, str | None, str | None]]:
    return [
        (e.anchor_id, e.reason, e.holder)
        for _r, e in leaves(server)
        if isinstance(e, Login) and e.outcome == "failed"
    ]


def test_failed_logins_are_recorded_with_their_reason_code(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    anchor = ecosystem.anchor_id
    login = start(server, ecosystem)

    # The person declined in their wallet, then a wallet-declared failure.
    request = fetch_request(server, open_wallet(login, anchor).request_uri)
    declared = post_response(
        request["response_uri"], {"error": "access_denied", "state": request["state"]}
    )
    assert declared.status_code == 200, declared.text
    request = fetch_request(server, open_wallet(login, anchor).request_uri)
    declared = post_response(
        request["response_uri"], {"error": "invalid_request", "state": request["state"]}
    )
    assert declared.status_code == 200, declared.text

    # A presentation the anchor refuses (nonce of another transaction).
    request = fetch_request(server, open_wallet(login, anchor).request_uri)
    refused = post_presentation(request, presentation(ecosystem, request, nonce="another-nonce"))
    assert refused.status_code == 400, refused.text
    reason = refused.json()["error_description"]

    # A malformed response that still consumed its transaction.
    request = fetch_request(server, open_wallet(login, anchor).request_uri)
    malformed = post_response(
        request["response_uri"], {"vp_token": "not json", "state": request["state"]}
    )
    assert malformed.status_code == 400, malformed.text

    # A response naming no transaction consumes nothing and records nothing.
    assert post_response(request["response_uri"], {"vp_token": "{}", "state": "x"}).status_code == (
        400
    )

    assert _failed_logins(server) == [
        (anchor, "wallet_declined", None),
        (anchor, "wallet_error", None),
        (anchor, reason, None),
        (anchor, "wallet_response_invalid", None),
    ]
    assert not [e for _r, e in leaves(server) if isinstance(e, Login) and e.outcome == "ok"]


# -- a failed append issues nothing ----------------------------------------------------------------


@contextmanager
def audit_table_gone(server: RunningServer) -> Iterator[None]:
    """Rename audit_leaves under the running server (the test's own schema), then restore it."""
    with server.services.db.transaction() as conn:
        conn.execute(text("ALTER TABLE audit_leaves RENAME TO audit_leaves_away"))
    try:
        yield
    finally:
        with server.services.db.transaction() as conn:
            conn.execute(text("ALTER TABLE audit_leaves_away RENAME TO audit_leaves"))


def _counts(server: RunningServer) -> tuple[int, int]:
    with server.services.db.reader() as conn:
        issued = conn.execute(select(func.count()).select_from(access_tokens)).scalar_one()
        unused = conn.execute(
            select(func.count())
            .select_from(authorization_codes)
            .where(authorization_codes.c.consumed_at.is_(None))
        ).scalar_one()
    return issued, unused


def test_token_request_is_503_and_issues_nothing_when_the_audit_append_fails(
    stage: Stage,
) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    before = _counts(stage.server)
    assert before[1] == 1
    leaves_before = len(leaves(stage.server))

    with audit_table_gone(stage.server):
        refused = stage.bank.redeem(code, pkce.verifier)
        assert_json_error(refused, 503, "temporarily_unavailable")
        machine = stage.bank.post("/token", {"grant_type": "client_credentials"})
        assert_json_error(machine, 503, "temporarily_unavailable")

    assert _counts(stage.server) == before  # no token row; the code is still unconsumed
    assert len(leaves(stage.server)) == leaves_before

    redeemed = stage.bank.redeem(code, pkce.verifier)  # redeemable, once
    assert redeemed.status_code == 200, redeemed.text
    assert_access_token_leaf(
        stage.server, redeemed.json()["access_token"], anchor_id=stage.ecosystem.anchor_id
    )
    assert_json_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")


def test_refresh_is_503_and_the_refresh_token_stays_usable_when_the_append_fails(
    stage: Stage,
) -> None:
    tokens = stage.tokens(stage.bank)
    with audit_table_gone(stage.server):
        assert_json_error(
            stage.bank.refresh(tokens["refresh_token"]), 503, "temporarily_unavailable"
        )
    refreshed = stage.bank.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert one_leaf(stage.server, digest(refreshed.json()["refresh_token"])).token_kind == (
        "refresh_rotation"
    )
