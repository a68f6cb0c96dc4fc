"""Issue 3 / SECURITY-CASES: every refusal at the PAR and token endpoints is an audit ``refusal``
entry with a stable reason code, recorded after the refused work rolled back, naming only a
registered client and never anything the caller typed; ``use_dpop_nonce`` is not a refusal.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from support.assertions import assert_json_error
from support.ecosystem import Ecosystem
from support.rp import DpopKey, Pkce, raw_post
from support.stage import Stage
from test_audit_trail import audit_table_gone

from trustanchor.audit.entries import Refusal, ReuseDetected, parse_entry
from trustanchor.services.refusals import RefusalBudget
from trustanchor.storage.tables import audit_leaves


def refusals(stage: Stage) -> list[Refusal]:
    """The refusal leaves, once the integrator has put every pending leaf in the tree (so each
    one is under a signed checkpoint, as an auditor receives it)."""
    stage.server.services.audit.integrate_pending()
    with stage.server.services.db.reader() as conn:
        rows = conn.execute(select(audit_leaves).order_by(audit_leaves.c.id)).all()
    found = []
    for row in rows:
        assert row.tree_index is not None
        entry = parse_entry(row.entry.encode("utf-8"))
        if isinstance(entry, Refusal):
            found.append(entry)
    return found


def summary(entry: Refusal) -> tuple[str, str | None, str | None, str, str]:
    return (entry.endpoint, entry.client_id, entry.grant_type, entry.error, entry.reason)


def assert_nothing_secret(stage: Stage, *secrets: str) -> None:
    with stage.server.services.db.reader() as conn:
        texts = [row.entry for row in conn.execute(select(audit_leaves.c.entry))]
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- token endpoint --------------------------------------------------------------------------------


def test_code_reused_gives_one_refusal_besides_the_reuse_detected_entry(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    tokens = stage.bank.redeem(code, pkce.verifier).json()
    assert refusals(stage) == []

    assert_json_error(stage.bank.redeem(code, pkce.verifier), 400, "invalid_grant")

    assert [summary(e) for e in refusals(stage)] == [
        ("token", "bank", "authorization_code", "invalid_grant", "code_reused")
    ]
    with stage.server.services.db.reader() as conn:
        kinds = [row.kind for row in conn.execute(select(audit_leaves.c.kind))]
    assert kinds.count(ReuseDetected.KIND) == 1
    assert_nothing_secret(stage, code, pkce.verifier, tokens["access_token"])


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong verifier", "pkce_mismatch"),
        ("no verifier", "pkce_verifier_missing"),
        ("other redirect_uri", "redirect_uri_mismatch"),
        ("expired", "code_expired"),
    ],
)
def test_refused_code_redemption_is_recorded_with_its_reason(
    stage: Stage, case: str, reason: str
) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    wrong = Pkce.generate().verifier
    if case == "wrong verifier":
        response = stage.bank.redeem(code, wrong)
    elif case == "no verifier":
        response = stage.bank.redeem(code, None)
    elif case == "other redirect_uri":
        response = stage.bank.redeem(
            code, pkce.verifier, redirect_uri=stage.bank.redirect_uri + "/"
        )
    else:
        stage.clock.shift(stage.server.settings.tokens.authorization_code_lifetime + 1)
        response = stage.bank.redeem(code, pkce.verifier)
    assert_json_error(response, 400, "invalid_grant")
    assert [summary(e) for e in refusals(stage)] == [
        ("token", "bank", "authorization_code", "invalid_grant", reason)
    ]
    assert_nothing_secret(stage, code, pkce.verifier, wrong)


def test_code_redeemed_by_another_client_names_the_authenticated_client(stage: Stage) -> None:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    response = stage.shop.redeem(code, pkce.verifier, redirect_uri=stage.bank.redirect_uri)
    assert_json_error(response, 400, "invalid_grant")
    assert [summary(e) for e in refusals(stage)] == [
        ("token", "shop", "authorization_code", "invalid_grant", "code_wrong_client")
    ]


def test_refresh_token_reuse_and_dpop_key_mismatch_are_recorded(stage: Stage) -> None:
    tokens = stage.tokens(stage.bank)
    assert stage.bank.refresh(tokens["refresh_token"]).status_code == 200
    assert_json_error(stage.bank.refresh(tokens["refresh_token"]), 400, "invalid_grant")

    pkce, key = Pkce.generate(), DpopKey()
    code = stage.code(stage.bank, pkce, dpop_jkt=key.jkt)
    other = stage.bank.proof(DpopKey(), "/token")
    assert_json_error(stage.bank.redeem(code, pkce.verifier, dpop=other), 400, "invalid_grant")

    assert [e.reason for e in refusals(stage)] == ["refresh_token_reused", "dpop_jkt_mismatch"]
    assert [e.grant_type for e in refusals(stage)] == ["refresh_token", "authorization_code"]
    assert_nothing_secret(stage, tokens["refresh_token"], key.jkt)


def test_assertion_jti_replay_is_recorded_against_the_client_it_names(stage: Stage) -> None:
    assertion = stage.ledger.assertion()
    grant = {"grant_type": "client_credentials"}
    first = stage.ledger.post("/token", grant, authenticate=False)
    assert first.status_code == 401  # no credentials: refused, recorded without a client
    ok = stage.ledger.post("/token", [*grant.items(), *stage.ledger.credentials(assertion)],
                           authenticate=False)  # fmt: skip
    assert ok.status_code == 200, ok.text
    replay = stage.ledger.post("/token", [*grant.items(), *stage.ledger.credentials(assertion)],
                               authenticate=False)  # fmt: skip
    assert_json_error(replay, 401, "invalid_client")

    assert [summary(e) for e in refusals(stage)] == [
        ("token", None, "client_credentials", "invalid_client", "client_auth_missing"),
        ("token", "ledger", "client_credentials", "invalid_client", "assertion_jti_replay"),
    ]
    assert_nothing_secret(stage, assertion, assertion.split(".")[2])


def test_assertion_for_another_audience_is_recorded_as_such(stage: Stage) -> None:
    assertion = stage.bank.assertion(claims={"aud": stage.server.url("/token")})
    response = stage.bank.post(
        "/token",
        [("grant_type", "client_credentials"), *stage.bank.credentials(assertion)],
        authenticate=False,
    )
    assert_json_error(response, 401, "invalid_client")
    assert [summary(e) for e in refusals(stage)] == [
        ("token", "bank", "client_credentials", "invalid_client", "assertion_audience")
    ]


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        ("nobody", "unknown_client"),
        ("alice@example.com", "unknown_client"),
        ("Alice Example", "client_id_malformed"),
    ],
)
def test_unknown_client_is_recorded_without_what_the_caller_named(
    stage: Stage, client_id: str, reason: str
) -> None:
    """Whatever a caller puts in client_id, the refusal records no client at all: only a
    registered client is ever named. The grant type is recorded only when it is one we
    support, never as typed."""
    response = stage.bank.post(
        "/token",
        {"grant_type": "urn:example:Alice-Example", "client_id": client_id, "code": "x"},
        authenticate=False,
    )
    assert_json_error(response, 401, "invalid_client")
    [entry] = refusals(stage)
    assert summary(entry) == ("token", None, None, "invalid_client", reason)
    assert_nothing_secret(stage, client_id, "Alice-Example")


def test_unsupported_grant_type_is_recorded_without_the_typed_value(stage: Stage) -> None:
    response = stage.bank.post("/token", {"grant_type": "password", "username": "alice"})
    assert_json_error(response, 400, "unsupported_grant_type")
    assert [summary(e) for e in refusals(stage)] == [
        ("token", "bank", None, "unsupported_grant_type", "unsupported_grant_type")
    ]


# -- PAR -------------------------------------------------------------------------------------------


def test_par_with_plain_pkce_is_recorded(stage: Stage) -> None:
    pkce = Pkce.generate()
    response = stage.bank.push(pkce, code_challenge=pkce.verifier, code_challenge_method="plain")
    assert_json_error(response, 400, "invalid_request")
    assert [summary(e) for e in refusals(stage)] == [
        ("par", "bank", None, "invalid_request", "pkce_method_unsupported")
    ]
    assert_nothing_secret(stage, pkce.verifier)


def test_par_refusals_carry_their_reasons(stage: Stage) -> None:
    pushes = [
        stage.bank.push(redirect_uri="https://attacker.example/cb"),
        stage.bank.push(scope="openid audit"),
        stage.bank.push(code_challenge=None),
        stage.bank.push(request_uri="urn:ietf:params:oauth:request_uri:x"),
    ]
    assert [r.status_code for r in pushes] == [400, 400, 400, 400]
    assert [e.reason for e in refusals(stage)] == [
        "redirect_uri_unregistered",
        "scope_not_allowed",
        "pkce_challenge_missing",
        "request_uri_in_par",
    ]
    assert_nothing_secret(stage, "attacker.example")


# -- what is not recorded, and when recording fails ------------------------------------------------


@pytest.fixture
def nonce_stage(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[Stage]:
    overrides = {"dpop": {"require_nonce": True}}
    with Stage.running(tmp_path, database_url, ecosystem, overrides=overrides) as running:
        yield running


def test_use_dpop_nonce_is_a_round_trip_not_a_refusal(nonce_stage: Stage) -> None:
    stage, key = nonce_stage, DpopKey()
    grant = {"grant_type": "client_credentials"}
    first = stage.ledger.post("/token", grant, dpop=stage.ledger.proof(key, "/token"))
    assert_json_error(first, 400, "use_dpop_nonce")
    url = stage.server.url("/token")
    proof = key.proof(
        "POST", url, iat=stage.clock.now(), claims={"nonce": first.headers["DPoP-Nonce"]}
    )
    assert stage.ledger.post("/token", grant, dpop=proof).status_code == 200
    assert refusals(stage) == []


def test_a_body_refused_before_parsing_is_not_recorded(stage: Stage) -> None:
    """Wrong content type, two Authorization headers: answered by the web layer before any
    client or grant is known (docs/AUDIT-FORMAT.md §1.5)."""
    url = stage.server.url("/token")
    json_body = raw_post(url, b'{"grant_type":"x"}', [("Content-Type", "application/json")])
    assert_json_error(json_body, 400, "invalid_request")
    twice = raw_post(
        url,
        b"grant_type=client_credentials",
        [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", "Basic YTpi"),
            ("Authorization", "Basic Yzpk"),
        ],
    )
    assert_json_error(twice, 400, "invalid_request")
    assert refusals(stage) == []


def test_unauthenticated_refusals_are_bounded_authenticated_ones_never(stage: Stage) -> None:
    stage.server.services.refusal_budget = RefusalBudget(burst=2, per_second=0)
    for _ in range(4):
        anonymous = stage.bank.post(
            "/token",
            {"grant_type": "client_credentials", "client_id": "nobody"},
            authenticate=False,
        )
        assert_json_error(anonymous, 401, "invalid_client")
    for _ in range(3):
        assert_json_error(stage.bank.redeem("not-a-code", None), 400, "invalid_grant")
    assert [(e.client_id, e.reason) for e in refusals(stage)] == [
        (None, "unknown_client"),
        (None, "unknown_client"),
        ("bank", "code_unknown"),
        ("bank", "code_unknown"),
        ("bank", "code_unknown"),
    ]


def test_a_refusal_that_cannot_be_recorded_is_still_answered_and_logged(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="trustanchor.audit")
    with audit_table_gone(stage.server):
        response = stage.bank.redeem("not-a-code-but-secret-looking", Pkce.generate().verifier)
        assert_json_error(response, 400, "invalid_grant")  # not a 503: nothing was to be issued
    assert refusals(stage) == []
    [record] = [r for r in caplog.records if "NOT recorded" in r.getMessage()]
    assert "code_unknown" in record.getMessage()
    assert "not-a-code-but-secret-looking" not in record.getMessage()
