"""Issue 13: every one-time artefact stays single-use across two service processes on one
database (two ``trustanchor serve`` processes, one configuration: one issuer, one key directory,
one database, as two instances behind a load balancer), on PostgreSQL and on one SQLite file
(WAL: several processes on one file are supported, as ``serve --workers N`` already runs them).

Each race prepares its racers (a fresh private_key_jwt assertion each, on a connection of its
own), releases them at once with a barrier, and sends half of them to each process: exactly one
wins, the rest get the protocol error, none a 5xx, and the database agrees. Artefacts raced:

- an authorization code at ``/token`` (one access token row for the grant, the code consumed);
- a refresh token at ``/token`` (one rotation: one new refresh token and one new access token);
- a PAR ``request_uri`` at ``/authorize`` (one interaction);
- a DPoP proof at ``/token`` (client_credentials, each racer's own assertion, the same proof:
  one token, one ``dpop`` jti on record);
- a wallet transaction's ``state`` at the response endpoint (one outcome, the interaction moved
  on to consent once).

Not raced here: a value_transfer token at a ledger. That check runs in the ledger, in the
ledger's own database (``trustanchor.ledger.replay_store``), not in the service, so two service
processes do not share or race it.

PostgreSQL tests run in a schema of their own; without PostgreSQL they skip with the reason, and
fail under TRUSTANCHOR_REQUIRE_POSTGRES=1 (tests/conftest.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select
from support.ecosystem import CREDENTIAL_ID, Ecosystem
from support.races import (
    Outcome,
    active,
    authenticated,
    authorize_url,
    consent,
    count,
    obtain_code,
    open_wallet,
    outcome,
    post,
    push,
    race,
    redeem,
    redemption,
    refresh,
    tally,
)
from support.rp import DpopKey
from support.two_services import ServicePair, two_services

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import (
    access_tokens,
    authorization_codes,
    interactions,
    par_requests,
    refresh_tokens,
    used_jtis,
    wallet_transactions,
)

RACERS = 20  # 10 on each process


@pytest.fixture
def pair(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[ServicePair]:
    with two_services(
        tmp_path,
        database_url=database_url,
        clients=ecosystem.client_declarations(),
        anchors=[ecosystem.anchor_declaration()],
    ) as running:
        yield running


def no_server_errors(pair: ServicePair) -> None:
    """Neither process logged a traceback or an unhandled error."""
    for process in pair.processes:
        log = process.log()
        assert "Traceback" not in log, process.tail()


def test_both_processes_serve_one_issuer_from_one_database(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    """The set-up itself: two process groups, each answering for the one issuer with the one
    key set, and a token issued by one is active at the other's introspection."""
    a, b = pair.processes
    assert a.process.pid != b.process.pid and a.running and b.running
    metadata = [requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
                for base in pair.bases]  # fmt: skip
    assert metadata[0]["issuer"] == metadata[1]["issuer"] == pair.server.issuer
    jwks = [requests.get(base + "/jwks", timeout=10).json() for base in pair.bases]
    assert jwks[0] == jwks[1]
    issued = outcome(
        post(
            pair.base(0) + "/token",
            authenticated(ecosystem.ledger, pair.server.issuer, grant_type="client_credentials"),
        )
    )
    assert issued.status == 200, issued.body
    introspected = post(
        pair.base(1) + "/introspect",
        authenticated(ecosystem.ledger, pair.server.issuer, token=issued.body["access_token"]),
    )
    assert introspected.status_code == 200 and introspected.json()["active"] is True


def test_one_code_redeemed_on_both_processes_yields_exactly_one_token(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    server = pair.server
    code, verifier = obtain_code(server, ecosystem)

    def prepare(i: int) -> Callable[[], Outcome]:
        data = redemption(server.issuer, ecosystem, code, verifier)
        return lambda: outcome(post(pair.base(i) + "/token", data))

    outcomes = race(RACERS, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_grant"): RACERS - 1}
    winner = next(o for o in outcomes if o.status == 200).body
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(authorization_codes.c.consumed_at, authorization_codes.c.grant_id).where(
                authorization_codes.c.code_digest == secret_digest(code)
            )
        ).one()
        tokens = conn.execute(
            select(func.count())
            .select_from(access_tokens)
            .where(access_tokens.c.grant_id == row.grant_id)
        ).scalar_one()
    assert row.consumed_at is not None and tokens == 1
    # The losers were code reuses: the one token issued is revoked (RFC 9700 §4.3.1).
    assert active(server, ecosystem, winner["access_token"]) is False
    no_server_errors(pair)


def test_one_refresh_token_on_both_processes_rotates_once(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    server = pair.server
    code, verifier = obtain_code(server, ecosystem)
    first = redeem(server.issuer, ecosystem, code, verifier)
    assert first.status == 200, first.body
    refresh_token = first.body["refresh_token"]

    def prepare(i: int) -> Callable[[], Outcome]:
        data = authenticated(
            ecosystem.bank, server.issuer, grant_type="refresh_token", refresh_token=refresh_token
        )
        return lambda: outcome(post(pair.base(i) + "/token", data))

    outcomes = race(RACERS, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_grant"): RACERS - 1}
    winner = next(o for o in outcomes if o.status == 200).body
    assert winner["refresh_token"] != refresh_token
    with server.services.db.reader() as conn:
        grant_id = conn.execute(
            select(refresh_tokens.c.grant_id).where(
                refresh_tokens.c.token_digest == secret_digest(refresh_token)
            )
        ).scalar_one()
        rotated = conn.execute(
            select(func.count())
            .select_from(refresh_tokens)
            .where(refresh_tokens.c.grant_id == grant_id)
        ).scalar_one()
        tokens = conn.execute(
            select(func.count())
            .select_from(access_tokens)
            .where(access_tokens.c.grant_id == grant_id)
        ).scalar_one()
    assert (rotated, tokens) == (2, 2)  # the original and the one rotation
    # The reuses revoked the family: the winner's tokens are dead too.
    assert active(server, ecosystem, winner["access_token"]) is False
    assert refresh(server, ecosystem, winner["refresh_token"]).body["error"] == "invalid_grant"
    no_server_errors(pair)


def test_one_request_uri_on_both_processes_creates_one_interaction(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    server = pair.server
    pushed = push(server, ecosystem)
    url = authorize_url(server, ecosystem, pushed.request_uri)

    def prepare(i: int) -> Callable[[], requests.Response]:
        def go() -> requests.Response:
            with requests.Session() as session:
                return session.get(pair.on(i, url), allow_redirects=False, timeout=60)

        return go

    responses = race(RACERS, prepare)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [303] + [400] * (RACERS - 1)
    winner = next(r for r in responses if r.status_code == 303)
    assert "/interaction/" in winner.headers["Location"]
    assert count(server, select(func.count()).select_from(interactions)) == 1
    assert (
        count(
            server,
            select(func.count())
            .select_from(par_requests)
            .where(par_requests.c.consumed_at.is_not(None)),
        )
        == 1
    )
    no_server_errors(pair)


def test_one_dpop_proof_on_both_processes_is_accepted_once(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    """The same DPoP proof with client_credentials, each racer authenticating with its own
    assertion: the proof's jti is recorded once, so one token is issued and every replay is
    invalid_dpop_proof, whichever process it reached."""
    server = pair.server
    proof = DpopKey().proof("POST", server.issuer + "/token", iat=int(time.time()))
    before = count(server, select(func.count()).select_from(access_tokens))

    def prepare(i: int) -> Callable[[], Outcome]:
        data = authenticated(ecosystem.ledger, server.issuer, grant_type="client_credentials")

        def go() -> Outcome:
            with requests.Session() as session:
                response = session.post(
                    pair.base(i) + "/token", data=data, headers={"DPoP": proof}, timeout=60
                )
            return outcome(response)

        return go

    outcomes = race(RACERS, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_dpop_proof"): RACERS - 1}
    winner = next(o for o in outcomes if o.status == 200).body
    assert winner["token_type"] == "DPoP"
    assert count(server, select(func.count()).select_from(access_tokens)) == before + 1
    assert (
        count(
            server,
            select(func.count()).select_from(used_jtis).where(used_jtis.c.namespace == "dpop"),
        )
        == 1
    )
    no_server_errors(pair)


def test_one_wallet_state_on_both_processes_is_processed_once(
    pair: ServicePair, ecosystem: Ecosystem
) -> None:
    server = pair.server
    step = open_wallet(server, ecosystem, push(server, ecosystem))
    presentation = step.phone.wallet.present(
        step.phone.credential,
        nonce=step.request["nonce"],
        aud=step.request["client_id"],
        iat=int(time.time()),
    )
    form = {
        "vp_token": json.dumps({CREDENTIAL_ID: [presentation]}),
        "state": step.request["state"],
    }

    def prepare(i: int) -> Callable[[], Outcome]:
        return lambda: outcome(post(pair.on(i, step.request["response_uri"]), form))

    outcomes = race(RACERS, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_request"): RACERS - 1}
    assert all("already used" in o.body["error_description"] for o in outcomes if o.status == 400)
    with server.services.db.reader() as conn:
        states = conn.execute(select(interactions.c.state)).scalars().all()
        recorded = conn.execute(select(wallet_transactions.c.outcome)).scalars().all()
    assert states == ["consent"]
    assert [each["status"] for each in recorded] == ["ok"]
    assert consent(server, step)  # the one processed answer carries the login on to a code
    no_server_errors(pair)
