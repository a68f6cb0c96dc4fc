"""Concurrency and crashes (SECURITY-CASES.md), against a real server over HTTP.

Races: many clients, each on its own HTTP connection with its own private_key_jwt assertion (a
fresh ``jti``), fire at the same instant (a barrier) at one one-time artefact: an authorization
code, a refresh token, a request_uri, a wallet transaction's state. Exactly one may win, the rest
get the protocol error, none a 500.

Crashes: the service runs in a child process that is SIGKILLed at a chosen instant (between
consuming a code and committing, or after committing but before answering); afterwards the
database must never hold a token without the code consumed. The pause points are installed by
this module only (a SQLAlchemy ``after_cursor_execute`` listener on the child's engine, and a
WSGI wrapper), so production code carries no test hook.

Lost connections (PostgreSQL only): the server's backends are terminated with
``pg_terminate_backend`` between requests, in the middle of a redemption, and while requests
run; the failing request gets 503 ``temporarily_unavailable``, nothing half-done is left, and the
next request succeeds without restarting the app.

Run as a script (``python test_concurrency.py CONFIG.json``) this module is that child server.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Connection, create_engine, event, func, select, text
from sqlalchemy.engine import Engine
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
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.digests import secret_digest
from trustanchor.storage.tables import (
    access_tokens,
    authorization_codes,
    interactions,
    wallet_transactions,
)

HERE = Path(__file__).resolve()
TESTS_DIR = HERE.parents[1]
REPO = HERE.parents[2]


# --- races ------------------------------------------------------------------------------------


def test_fifty_parallel_redemptions_of_one_code_yield_exactly_one_token(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """One code, 50 redemptions at once (own connection, own assertion each): one 200, 49
    invalid_grant, no 500. The code-reuse rule (RFC 9700 §4.3.1 / SECURITY-CASES) says a second
    redemption revokes what the first one got — so the 49 losers, which all arrive after the
    winner committed (the conditional UPDATE serialises them behind its row lock), revoke the
    grant: the single token that was issued is inactive afterwards, its refresh token too."""
    code, verifier = obtain_code(server, ecosystem)

    def prepare(_: int) -> Callable[[], Outcome]:
        data = redemption(server.issuer, ecosystem, code, verifier)
        return lambda: outcome(post(server.url("/token"), data))

    outcomes = race(50, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_grant"): 49}
    winner = next(o for o in outcomes if o.status == 200).body
    assert winner["access_token"] and winner["refresh_token"] and winner["id_token"]
    assert count(server, select(func.count()).select_from(access_tokens)) == 1
    assert active(server, ecosystem, winner["access_token"]) is False
    assert refresh(server, ecosystem, winner["refresh_token"]).body["error"] == "invalid_grant"


def test_parallel_refreshes_of_one_refresh_token_yield_one_success_and_revoke_the_family(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """A rotated refresh token presented again → invalid_grant and the whole family revoked:
    of 20 simultaneous refreshes one rotates the token, the 19 others are reuses, so the
    new tokens the winner received are revoked as well as the original ones."""
    code, verifier = obtain_code(server, ecosystem)
    first = redeem(server.issuer, ecosystem, code, verifier)
    assert first.status == 200, first.body
    refresh_token = first.body["refresh_token"]

    def prepare(_: int) -> Callable[[], Outcome]:
        data = authenticated(
            ecosystem.bank, server.issuer, grant_type="refresh_token", refresh_token=refresh_token
        )
        return lambda: outcome(post(server.url("/token"), data))

    outcomes = race(20, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_grant"): 19}
    winner = next(o for o in outcomes if o.status == 200).body
    assert winner["refresh_token"] != refresh_token
    assert active(server, ecosystem, winner["access_token"]) is False
    assert active(server, ecosystem, first.body["access_token"]) is False
    assert refresh(server, ecosystem, winner["refresh_token"]).body["error"] == "invalid_grant"


def test_parallel_use_of_one_request_uri_creates_exactly_one_interaction(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    pushed = push(server, ecosystem)
    url = authorize_url(server, ecosystem, pushed.request_uri)

    def prepare(_: int) -> Callable[[], requests.Response]:
        def go() -> requests.Response:
            with requests.Session() as session:
                return session.get(url, allow_redirects=False, timeout=60)

        return go

    responses = race(20, prepare)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [303] + [400] * 19
    winner = next(r for r in responses if r.status_code == 303)
    assert "/interaction/" in winner.headers["Location"]
    assert count(server, select(func.count()).select_from(interactions)) == 1


def test_parallel_direct_posts_of_one_wallet_state_are_processed_once(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
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

    def prepare(_: int) -> Callable[[], Outcome]:
        return lambda: outcome(post(step.request["response_uri"], form))

    outcomes = race(20, prepare)

    assert tally(outcomes) == {(200, "ok"): 1, (400, "invalid_request"): 19}
    assert all("already used" in o.body["error_description"] for o in outcomes if o.status == 400)
    with server.services.db.reader() as conn:
        states = conn.execute(select(interactions.c.state)).scalars().all()
        outcomes_recorded = conn.execute(select(wallet_transactions.c.outcome)).scalars().all()
    assert states == ["consent"]
    assert [recorded["status"] for recorded in outcomes_recorded] == ["ok"]
    # The one processed response carries the login on to consent and a code.
    assert consent(server, step)


# --- a worker killed mid-redemption -----------------------------------------------------------

PAUSED_AFTER_CONSUME = "after_consume"
PAUSED_AFTER_COMMIT = "after_commit"


def _serve_until_killed(config_path: str) -> None:
    """The child server: like tests/support/server.py, plus one pause point where it waits to be
    killed. ``after_consume``: right after the code's conditional UPDATE, inside the transaction.
    ``after_commit``: after the token endpoint returned (transaction committed), before a byte
    of the response is sent."""
    from werkzeug.serving import make_server

    from trustanchor.services.container import build_services
    from trustanchor.storage.database import Database
    from trustanchor.web.app import create_app

    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    settings = test_settings(
        Path(config["tmp_path"]),
        config["database_url"],
        port=config["port"],
        anchors=config["anchors"],
        clients=config["clients"],
    )
    marker = Path(config["marker"])
    db = Database(settings.service.database_url)
    app = create_app(services=build_services(settings, db=db))

    def pause(note: str) -> None:
        written = marker.with_suffix(".tmp")
        written.write_text(note, encoding="utf-8")
        written.replace(marker)  # atomically: the test never reads a half-written note
        time.sleep(300)  # until SIGKILL

    if config["pause"] == PAUSED_AFTER_CONSUME:

        @event.listens_for(db.engine, "after_cursor_execute")
        def _after(conn: Connection, cursor: Any, statement: str, *_args: Any, **_kw: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE AUTHORIZATION_CODES"):
                pause("consumed, not committed")

        wsgi: Any = app
    else:

        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            started: list[Any] = []

            def capture(status: str, headers: list[Any], exc_info: Any = None) -> Any:
                started.append((status, headers))
                return lambda _data: None

            body = b"".join(app(environ, capture))
            if environ["PATH_INFO"] == "/token":
                pause(f"committed, answering {started[0][0]}")
            start_response(*started[0])
            return [body]

    make_server("127.0.0.1", config["port"], wsgi, threaded=True).serve_forever()


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    issuer: str
    marker: Path


@contextmanager
def child_server(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem, pause: str
) -> Iterator[Child]:
    """Start the child server (sharing the database and keys of the in-process one) and wait
    until it answers; kill it on the way out whatever happened."""
    port = free_port()
    marker = tmp_path / f"paused-{pause}"
    config = {
        "tmp_path": str(tmp_path),
        "database_url": database_url,
        "port": port,
        "anchors": [ecosystem.anchor_declaration()],
        "clients": ecosystem.client_declarations(),
        "marker": str(marker),
        "pause": pause,
    }
    config_path = tmp_path / f"child-{pause}.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    paths = [str(TESTS_DIR), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    log_path = tmp_path / f"child-{pause}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(HERE), str(config_path)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"child server exited: {log_path.read_text()[-2000:]}")
            try:
                if requests.get(issuer + "/jwks", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("child server did not start")
            time.sleep(0.05)
        yield Child(process, issuer, marker)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for(predicate: Callable[[], bool], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def code_state(server: RunningServer, code: str) -> tuple[bool, int]:
    """Whether the code is consumed, and how many access tokens its grant has on record."""
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
    return row.consumed_at is not None, int(tokens)


@pytest.mark.parametrize("pause", [PAUSED_AFTER_CONSUME, PAUSED_AFTER_COMMIT])
def test_worker_killed_mid_redemption_never_leaves_a_token_without_the_code_consumed(
    server: RunningServer,
    ecosystem: Ecosystem,
    tmp_path: Path,
    database_url: str,
    pause: str,
) -> None:
    """SIGKILL the worker redeeming a code, at the instant chosen by ``pause``. Killed before
    the commit, the transaction dies with it: the client has no token and the code is still
    unused, redeemable exactly once by another worker. Killed after the commit, the token is on
    record and the code consumed (a later redemption is a reuse). Never a token without the code
    consumed."""
    code, verifier = obtain_code(server, ecosystem)
    got: dict[str, Any] = {}
    with child_server(tmp_path, database_url, ecosystem, pause) as child:
        data = redemption(child.issuer, ecosystem, code, verifier)

        def call() -> None:
            try:
                got["response"] = post(child.issuer + "/token", data)
            except requests.ConnectionError as exc:
                got["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        wait_for(child.marker.exists, seconds=20)
        note = child.marker.read_text(encoding="utf-8")
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.wait(timeout=10)
        caller.join(timeout=30)

    assert "response" not in got and isinstance(got["error"], requests.ConnectionError)
    consumed, tokens = code_state(server, code)
    if pause == PAUSED_AFTER_CONSUME:
        assert note == "consumed, not committed"
        assert (consumed, tokens) == (False, 0)
        assert redeem(server.issuer, ecosystem, code, verifier).status == 200
        assert code_state(server, code) == (True, 1)
    else:
        assert note == "committed, answering 200 OK"
        assert (consumed, tokens) == (True, 1)
    again = redeem(server.issuer, ecosystem, code, verifier)
    assert (again.status, again.body["error"]) == (400, "invalid_grant")


# --- lost database connections (PostgreSQL) ---------------------------------------------------

ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@dataclass
class PgServer:
    server: RunningServer
    admin: Engine
    application_name: str

    def terminate_backends(self) -> int:
        """Kill every PostgreSQL backend serving the app and wait until they are gone (the
        timeout argument of pg_terminate_backend needs PostgreSQL 14 or later)."""
        with self.admin.connect() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                    "FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.application_name},
            ).scalar_one()
        return int(killed)


@pytest.fixture
def pg_server(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[PgServer]:
    """The server on PostgreSQL with an application_name of its own, so that its backends (and
    only they) can be found in pg_stat_activity."""
    name = "ta_test_" + secrets.token_hex(4)
    sep = "&" if "?" in database_url else "?"
    settings = test_settings(
        tmp_path,
        f"{database_url}{sep}application_name={name}",
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=ecosystem.client_declarations(),
    )
    admin = create_engine(database_url)
    try:
        with running_server(settings) as running:
            yield PgServer(running, admin, name)
    finally:
        admin.dispose()


def client_credentials(server: RunningServer, ecosystem: Ecosystem) -> Outcome:
    data = authenticated(ecosystem.ledger, server.issuer, grant_type="client_credentials")
    return outcome(post(server.url("/token"), data))


@ON_POSTGRES
def test_connections_dropped_between_requests_are_replaced_without_restart(
    pg_server: PgServer, ecosystem: Ecosystem
) -> None:
    server = pg_server.server
    before = client_credentials(server, ecosystem)
    assert before.status == 200
    assert active(server, ecosystem, before.body["access_token"]) is True

    assert pg_server.terminate_backends() >= 1

    after = client_credentials(server, ecosystem)
    assert after.status == 200, after.body
    assert active(server, ecosystem, after.body["access_token"]) is True
    assert active(server, ecosystem, before.body["access_token"]) is True


@ON_POSTGRES
def test_connection_dropped_mid_redemption_is_503_leaves_the_code_unused_and_recovers(
    pg_server: PgServer, ecosystem: Ecosystem
) -> None:
    """The backend dies right after the code's conditional UPDATE, inside the transaction: the
    request gets 503 temporarily_unavailable (JSON, not a 500), the UPDATE is lost with the
    transaction (no partial state), and the very next request on the same app succeeds."""
    server = pg_server.server
    code, verifier = obtain_code(server, ecosystem)
    armed = threading.Event()
    armed.set()

    def drop(conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
        if armed.is_set() and statement.lstrip().upper().startswith("UPDATE AUTHORIZATION_CODES"):
            armed.clear()
            pid = cursor.connection.info.backend_pid
            with pg_server.admin.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    engine = server.services.db.engine
    event.listen(engine, "after_cursor_execute", drop)
    try:
        failed = post(server.url("/token"), redemption(server.issuer, ecosystem, code, verifier))
    finally:
        event.remove(engine, "after_cursor_execute", drop)

    assert not armed.is_set()  # the drop happened where intended
    assert failed.status_code == 503
    assert failed.headers["Content-Type"] == "application/json"
    assert failed.json() == {"error": "temporarily_unavailable"}
    assert code_state(server, code) == (False, 0)
    assert redeem(server.issuer, ecosystem, code, verifier).status == 200
    assert code_state(server, code) == (True, 1)


@ON_POSTGRES
def test_connections_dropped_while_requests_run_give_503_never_500(
    pg_server: PgServer, ecosystem: Ecosystem
) -> None:
    """Backends killed repeatedly under load: each request either succeeds or gets 503
    temporarily_unavailable; once the killing stops, requests succeed again."""
    server = pg_server.server
    stop = threading.Event()
    seen: list[Outcome] = []
    lock = threading.Lock()

    def load() -> None:
        while not stop.is_set():
            result = client_credentials(server, ecosystem)
            with lock:
                seen.append(result)

    workers = [threading.Thread(target=load) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(8):
            time.sleep(0.1)
            pg_server.terminate_backends()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

    statuses = {o.status for o in seen}
    assert statuses <= {200, 503}, tally(seen)
    assert all(o.body == {"error": "temporarily_unavailable"} for o in seen if o.status == 503)
    assert 200 in statuses
    assert client_credentials(server, ecosystem).status == 200


if __name__ == "__main__":
    _serve_until_killed(sys.argv[1])
