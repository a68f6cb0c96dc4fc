"""``POST /token`` on both stacks (issue 13): through Flask, and through the lean route of
trustanchor/web/token_route.py, both behind the same :class:`WsgiOverAsgi` and the same Flask app
and services, driven as ASGI apps in process.

- every behaviour of ``trustanchor.web.cross_cutting.BEHAVIOURS`` is asserted on both stacks
  (tests marked ``@covers(id)`` take the ``stack`` fixture, which runs them on each), and
  :func:`test_every_cross_cutting_behaviour_is_tested_on_both_stacks` fails when one is not;
- a differential test sends the same requests, valid and invalid, to both and compares status,
  body (bytes for errors; JSON modulo token values for grants) and header lines;
- a property test does the same for malformed forms and headers.

The backend is SQLite only: the two stacks share the database, and what is compared is the web
layer (the storage behaviours are covered by the storage and flow suites on both backends).
"""

from __future__ import annotations

import ast
import asyncio
import base64
import dataclasses
import inspect
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from support.clock import ShiftableClock
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
from support.logs import json_log_lines
from support.own_loop import run_in_own_loop
from support.rp import JWT_BEARER, DpopKey, Pkce, RelyingParty
from support.server import free_port, running_server, test_settings
from support.stage import DPOP_BANK_REDIRECT, SHOP_AUDIENCE, SHOP_REDIRECT, Stage, _client
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from trustanchor import log_setup
from trustanchor.audit.entries import Refusal, parse_entry
from trustanchor.services import token as token_service
from trustanchor.services.refusals import RefusalBudget
from trustanchor.storage.database import StorageUnavailable
from trustanchor.storage.tables import audit_leaves
from trustanchor.web import cross_cutting, token_route
from trustanchor.web.app import create_app
from trustanchor.web.app import security_headers as app_security_headers
from trustanchor.web.errors import json_bytes
from trustanchor.web.forms import mimetype, urlencoded_form
from trustanchor.web.metrics import metrics_for
from trustanchor.web.serving import BodyDeadline, WsgiOverAsgi
from trustanchor.web.token_route import MAX_ESCAPES, MAX_FIELDS, TokenRoute, lean_routes

FORM = "application/x-www-form-urlencoded"
STACKS = ("flask", "lean")
SECRET_CLIENT = "secret-client"
SECRET = "s3cret/+:value"
TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")

Headers = Sequence[tuple[str, str]]

# -- which behaviour each test covers -------------------------------------------------------------

COVERED: dict[str, list[Callable[..., Any]]] = {}


def covers(*behaviours: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        for behaviour in behaviours:
            COVERED.setdefault(behaviour, []).append(test)
        return test

    return mark


# -- an ASGI client -------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        assert len(values) <= 1, values
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_request(
    app: WsgiOverAsgi,
    method: str,
    path: str,
    headers: Headers = (),
    body: bytes = b"",
    *,
    query: bytes = b"",
    root_path: str = "",
    chunks: Sequence[bytes] | None = None,
    stall: bool = False,
) -> Reply:
    """One request through the ASGI app: the body in one message, or in ``chunks``; ``stall``
    leaves the body unfinished (the client sends nothing more)."""
    raw_path = (root_path + path).encode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": raw_path + (b"?" + query if query else b""),
        "root_path": root_path,
        "query_string": query,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
    }
    parts = list(chunks) if chunks is not None else [body]
    messages = [
        {"type": "http.request", "body": part, "more_body": stall or i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[Mapping[str, Any]] = []

    async def receive() -> Mapping[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    run_in_own_loop(app(scope, receive, send))  # type: ignore[arg-type]
    start, end = sent
    return Reply(
        start["status"],
        [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in start["headers"]],
        end["body"],
    )


# -- the two stacks ---------------------------------------------------------------------------


class CountingWsgi:
    """The Flask app, counting the requests that reach it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.app(environ, start_response)


@dataclass
class Stacks:
    stage: Stage
    flask: WsgiOverAsgi
    lean: WsgiOverAsgi
    wsgi: CountingWsgi
    ensured: list[int] = field(default_factory=list)

    def app(self, stack: str) -> WsgiOverAsgi:
        return self.flask if stack == "flask" else self.lean

    def post(
        self,
        stack: str,
        params: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        *,
        headers: Headers = (),
        body: bytes | None = None,
        content_type: str | None = FORM,
        **options: Any,
    ) -> Reply:
        items = list(params.items()) if isinstance(params, Mapping) else list(params)
        lines = [("Content-Type", content_type)] if content_type is not None else []
        lines += list(headers)
        data = body if body is not None else urlencode(items).encode("ascii")
        if "chunks" not in options and not options.get("stall"):
            lines.append(("Content-Length", str(len(data))))
        return asgi_request(self.app(stack), "POST", "/token", lines, data, **options)


def security_headers(stage: Stage) -> dict[str, str]:
    return app_security_headers(stage.server.services)


async def _shutdown(app: WsgiOverAsgi) -> None:
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> Mapping[str, Any]:
        return messages.pop(0)

    async def send(message: Mapping[str, Any]) -> None:
        pass

    await app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]


@contextmanager
def running_stacks(
    tmp_path: Path, database_url: str, overrides: dict[str, dict[str, Any]] | None = None
) -> Iterator[Stacks]:
    """The service (support/stage.py's clients plus a client_secret_basic one) on werkzeug's
    server for the flows that lead to a code, and the two ASGI stacks over one more Flask app on
    the same services, with its own audit integrator (its ensure_running calls are counted)."""
    ecosystem, clock = Ecosystem(), ShiftableClock()
    shop, dpop_bank = Party("shop"), Party("dpop-bank")
    clients = [
        *ecosystem.client_declarations(),
        _client(
            shop,
            SHOP_REDIRECT,
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            audiences=[SHOP_AUDIENCE],
        ),
        _client(dpop_bank, DPOP_BANK_REDIRECT, dpop_bound_access_tokens=True),
        {
            "client_id": SECRET_CLIENT,
            "client_type": "confidential",
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret": SECRET,
            "grant_types": ["client_credentials"],
        },
    ]
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=clients,
        overrides=overrides,
    )
    with running_server(settings, clock=clock) as server:
        stage = Stage(
            server=server,
            clock=clock,
            ecosystem=ecosystem,
            bank=RelyingParty(server, ecosystem.bank, clock, redirect_uri=BANK_REDIRECT),
            ledger=RelyingParty(server, ecosystem.ledger, clock, redirect_uri=""),
            shop=RelyingParty(server, shop, clock, redirect_uri=SHOP_REDIRECT),
            dpop_bank=RelyingParty(server, dpop_bank, clock, redirect_uri=DPOP_BANK_REDIRECT),
        )
        services = server.services
        flask_app = create_app(services=services)
        integrator = flask_app.extensions["trustanchor.audit_integrator"]
        ensured: list[int] = []
        ensure_running = integrator.ensure_running

        def counted() -> None:
            ensured.append(1)
            ensure_running()

        integrator.ensure_running = counted
        wsgi = CountingWsgi(flask_app)
        limits = settings.limits
        deadline = BodyDeadline(
            initial=0.3, maximum=1.0, min_rate=limits.min_body_rate, max_bytes=limits.max_body_bytes
        )
        route = TokenRoute(
            services, security_headers=security_headers(stage), integrator=integrator
        )
        flask_stack = WsgiOverAsgi(wsgi, threads=1, deadline=deadline)
        lean_stack = WsgiOverAsgi(
            wsgi, threads=1, deadline=deadline, lean_routes={("POST", "/token"): route}
        )
        try:
            yield Stacks(stage, flask_stack, lean_stack, wsgi, ensured)
        finally:
            integrator.stop()
            for app in (flask_stack, lean_stack):
                run_in_own_loop(_shutdown(app))


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """SQLite only (see the module docstring), on /dev/shm when it can be written."""
    shm = Path("/dev/shm")  # noqa: S108 - only as mkdtemp's parent
    if not (shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)):
        yield f"sqlite:///{tmp_path / 'trustanchor.db'}"
        return
    directory = Path(tempfile.mkdtemp(prefix="trustanchor-test-", dir=shm))
    try:
        yield f"sqlite:///{directory / 'trustanchor.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def stacks(tmp_path: Path, database_url: str) -> Iterator[Stacks]:
    with running_stacks(tmp_path, database_url) as running:
        yield running


@pytest.fixture
def nonce_stacks(tmp_path: Path, database_url: str) -> Iterator[Stacks]:
    with running_stacks(tmp_path, database_url, {"dpop": {"require_nonce": True}}) as running:
        yield running


METRICS_TOKEN = "metrics-token-0123456789abcdef0123456789abcdef"


@pytest.fixture
def metrics_stacks(tmp_path: Path, database_url: str) -> Iterator[Stacks]:
    with running_stacks(tmp_path, database_url, {"metrics": {"token": METRICS_TOKEN}}) as running:
        yield running


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def refusals(stacks: Stacks) -> list[tuple[str | None, str]]:
    services = stacks.stage.server.services
    with services.db.reader() as conn:
        rows = conn.execute(select(audit_leaves.c.entry).order_by(audit_leaves.c.id)).all()
    entries = [parse_entry(row.entry.encode("utf-8")) for row in rows]
    return [(e.client_id, e.reason) for e in entries if isinstance(e, Refusal)]


def assert_error(reply: Reply, status: int, body: Mapping[str, str]) -> None:
    assert reply.status == status, reply
    assert reply.header("content-type") == "application/json"
    assert reply.body == json_bytes(dict(body)), reply.body
    assert reply.header("content-length") == str(len(reply.body))


def assert_common_headers(stacks: Stacks, reply: Reply) -> None:
    assert reply.header("cache-control") == "no-store"
    assert reply.header("pragma") == "no-cache"
    for name, value in security_headers(stacks.stage).items():
        assert reply.header(name) == value, name


# -- the cross-cutting behaviours, each on both stacks ----------------------------------------


@covers("body_limit")
def test_a_body_over_the_limit_is_413_declared_or_streamed(stacks: Stacks, stack: str) -> None:
    limit = stacks.stage.server.settings.limits.max_body_bytes
    body = urlencode({"grant_type": "client_credentials", "pad": "x" * limit}).encode()
    declared = stacks.post(stack, body=body)
    assert_error(declared, 413, {"error": "invalid_request"})
    assert_common_headers(stacks, declared)
    streamed = stacks.post(stack, body=body, chunks=[body[:1000], body[1000:]])
    assert_error(streamed, 413, {"error": "invalid_request"})
    assert refusals(stacks) == []


@covers("body_deadline")
def test_a_body_not_received_in_time_is_408_before_any_app_code(stacks: Stacks, stack: str) -> None:
    before, ensured = stacks.wsgi.calls, len(stacks.ensured)
    reply = stacks.post(stack, body=b"grant_type=client", stall=True)
    assert reply.status == 408
    assert reply.header("connection") == "close"
    assert (stacks.wsgi.calls, len(stacks.ensured)) == (before, ensured)


@covers("nul_refusal")
def test_a_nul_in_path_query_or_form_is_400(stacks: Stacks, stack: str) -> None:
    nul = {"error": "invalid_request", "error_description": "a parameter contains a NUL character"}
    grant = [("grant_type", "client_credentials"), *stacks.stage.bank.credentials()]
    in_form = stacks.post(stack, [*grant, ("scope", "a\x00b")])
    assert_error(in_form, 400, nul)
    assert_common_headers(stacks, in_form)
    in_name = stacks.post(stack, [*grant, ("x\x00", "1")])
    assert_error(in_name, 400, nul)
    in_query = stacks.post(stack, grant, query=b"a=%00")
    assert_error(in_query, 400, nul)
    path = asgi_request(stacks.app(stack), "POST", "/token%00", [("Content-Type", FORM)])
    assert path.status == 400 and path.json()["error"] == "invalid_request"
    assert refusals(stacks) == []  # refused by the web layer, never parsed


@covers("oauth_error")
def test_refusals_are_the_same_oauth_errors(stacks: Stacks, stack: str) -> None:
    unknown = stacks.post(stack, {"grant_type": "client_credentials", "client_id": "nobody"})
    assert unknown.status == 401 and unknown.json()["error"] == "invalid_client"
    assert unknown.header("www-authenticate") is None
    wrong_secret = stacks.post(
        stack,
        {"grant_type": "client_credentials"},
        headers=[("Authorization", basic(SECRET_CLIENT, "wrong"))],
    )
    assert wrong_secret.status == 401 and wrong_secret.json()["error"] == "invalid_client"
    assert wrong_secret.header("www-authenticate") == 'Basic realm="trustanchor"'
    assert_common_headers(stacks, wrong_secret)
    wrong_type = stacks.post(stack, body=b'{"grant_type": "x"}', content_type="application/json")
    assert_error(
        wrong_type,
        400,
        {"error": "invalid_request", "error_description": f"the request body must be {FORM}"},
    )


@covers("oauth_error", "dpop_nonce")
def test_with_nonces_every_answer_hands_out_one(nonce_stacks: Stacks, stack: str) -> None:
    stage = nonce_stacks.stage
    key = DpopKey()
    grant = [("grant_type", "client_credentials")]
    first = nonce_stacks.post(
        stack,
        [*grant, *stage.ledger.credentials()],
        headers=[("DPoP", stage.ledger.proof(key, "/token"))],
    )
    assert first.status == 400 and first.json()["error"] == "use_dpop_nonce"
    nonce = first.header("dpop-nonce")
    assert nonce
    url = stage.server.url("/token")
    proof = key.proof("POST", url, iat=stage.clock.now(), claims={"nonce": nonce})
    second = nonce_stacks.post(
        stack, [*grant, *stage.ledger.credentials()], headers=[("DPoP", proof)]
    )
    assert second.status == 200, second.body
    assert second.json()["token_type"] == "DPoP"
    assert second.header("dpop-nonce")  # the next one
    refused = nonce_stacks.post(stack, {"grant_type": "client_credentials", "client_id": "x"})
    assert refused.status == 401 and refused.header("dpop-nonce")
    assert_common_headers(nonce_stacks, refused)


@covers("storage_unavailable")
def test_a_storage_failure_is_503(
    stacks: Stacks, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("connection pool exhausted")

    monkeypatch.setattr(token_service, "_token", unavailable)
    reply = stacks.post(stack, {"grant_type": "client_credentials"})
    assert_error(reply, 503, {"error": "temporarily_unavailable"})
    assert_common_headers(stacks, reply)


@covers("unexpected_failure")
def test_an_unexpected_failure_is_logged_and_500(
    stacks: Stacks, stack: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(token_service, "_token", broken)
    caplog.set_level(logging.ERROR)
    reply = stacks.post(stack, {"grant_type": "client_credentials"})
    assert_error(reply, 500, {"error": "server_error"})
    assert_common_headers(stacks, reply)
    [record] = [r for r in caplog.records if r.exc_info and "a bug" in str(r.exc_info[1])]
    assert "Exception on /token [POST]" in record.getMessage()


@covers("no_store", "security_headers")
def test_grants_and_refusals_are_not_stored_and_carry_the_security_headers(
    stacks: Stacks, stack: str
) -> None:
    stage = stacks.stage
    granted = stacks.post(stack, [("grant_type", "client_credentials"), *stage.bank.credentials()])
    assert granted.status == 200, granted.body
    refused = stacks.post(stack, {"grant_type": "nope", "client_id": "nobody"})
    assert refused.status == 401
    for reply in (granted, refused):
        assert_common_headers(stacks, reply)
        assert reply.header("dpop-nonce") is None  # nonces are off here


@covers("refusal_audit")
def test_refusals_are_recorded_within_the_budget(stacks: Stacks, stack: str) -> None:
    stage = stacks.stage
    stage.server.services.refusal_budget = RefusalBudget(burst=1, per_second=0)
    for _ in range(2):
        stacks.post(stack, {"grant_type": "client_credentials", "client_id": "nobody"})
    stacks.post(stack, [("grant_type", "authorization_code"), *stage.bank.credentials()])
    stacks.post(stack, body=b"{}", content_type="application/json")  # before parsing: none
    assert refusals(stacks) == [(None, "unknown_client"), ("bank", "parameter_missing")]


@covers("request_id")
def test_every_answer_and_its_log_lines_carry_the_request_id(
    stacks: Stacks, stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant = [("grant_type", "client_credentials"), *stacks.stage.bank.credentials()]
    with json_log_lines() as lines:
        mine = stacks.post(stack, grant, headers=[("X-Request-Id", "rp-4711.a_B")])
        refused = stacks.post(
            stack,
            {"grant_type": "client_credentials", "client_id": "nobody"},
            headers=[("X-Request-Id", "refused-1")],
        )
    assert mine.status == 200 and mine.header("x-request-id") == "rp-4711.a_B"
    assert refused.status == 401 and refused.header("x-request-id") == "refused-1"
    [line] = [line for line in lines if line["message"].startswith("refused POST /token")]
    assert line["request_id"] == "refused-1" and line["logger"] == "trustanchor.web"
    # an id that is not short and safe is replaced by a new one; none given: a new one
    generated = set()
    for sent in ("x" * 65, "a b", "r\u00e9", "a\nb", "", None):
        headers = [("X-Request-Id", sent)] if sent is not None else []
        reply = stacks.post(stack, grant, headers=headers)
        rid = reply.header("x-request-id")
        assert rid and rid != sent and log_setup.acceptable_request_id(rid) == rid
        generated.add(rid)
    assert len(generated) == 6
    # a refusal before any app code (408), and a failure (500) with its logged traceback
    with json_log_lines() as lines:
        late = stacks.post(stack, body=b"grant_type=x", stall=True, headers=[("X-Request-Id", "l")])
    assert late.status == 408 and late.header("x-request-id") == "l"
    [line] = [line for line in lines if "request body not received in time" in line["message"]]
    assert line["request_id"] == "l"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(token_service, "_token", broken)
    with json_log_lines() as lines:
        failed = stacks.post(stack, grant, headers=[("X-Request-Id", "bug-1")])
    assert failed.status == 500 and failed.header("x-request-id") == "bug-1"
    [line] = [line for line in lines if "a bug" in line.get("exception", "")]
    assert line["request_id"] == "bug-1" and line["level"] == "ERROR"
    assert log_setup.request_id.get() is None  # nothing left behind on this thread


@covers("metrics")
def test_every_request_is_counted_and_timed_by_route_and_status(
    metrics_stacks: Stacks, stack: str
) -> None:
    prometheus = metrics_for(metrics_stacks.stage.server.services)
    assert prometheus is not None  # one registry for the Flask app and the lean route

    def counts() -> dict[str, float]:
        registry = prometheus.registry
        token = {"method": "POST", "route": "/token"}
        found = {
            status: registry.get_sample_value(
                "trustanchor_http_requests_total", {**token, "status": status}
            )
            for status in ("200", "400", "401", "413")
        }
        found["timed"] = registry.get_sample_value(
            "trustanchor_http_request_duration_seconds_count", token
        )
        found["issued"] = registry.get_sample_value(
            "trustanchor_tokens_issued_total", {"grant_type": "client_credentials"}
        )
        return {name: value or 0.0 for name, value in found.items()}

    before = counts()
    stage = metrics_stacks.stage
    granted = metrics_stacks.post(stack, [CC, *stage.bank.credentials()])
    assert granted.status == 200
    assert metrics_stacks.post(stack, {"grant_type": "client_credentials"}).status == 401
    assert metrics_stacks.post(stack, body=b"{}", content_type="application/json").status == 400
    limit = stage.server.settings.limits.max_body_bytes
    assert metrics_stacks.post(stack, [CC, ("pad", "x" * limit)]).status == 413
    after = counts()
    assert {name: after[name] - before[name] for name in after} == {
        "200": 1,
        "400": 1,
        "401": 1,
        "413": 1,
        "timed": 4,
        "issued": 1,
    }


def test_client_secrets_stay_out_of_the_logs_on_both_stacks(stacks: Stacks) -> None:
    wrong = "wrong-" + SECRET
    with json_log_lines() as lines:
        for stack in STACKS:
            for secret, status in ((SECRET, 200), (wrong, 401)):
                reply = stacks.post(
                    stack,
                    {"grant_type": "client_credentials"},
                    headers=[("Authorization", basic(SECRET_CLIENT, secret))],
                )
                assert reply.status == status, reply.body
    assert any(line["message"].startswith("refused POST /token") for line in lines)
    encoded = {basic(SECRET_CLIENT, s).split(" ")[1] for s in (SECRET, wrong)}
    for line in lines:
        text = json.dumps(line, ensure_ascii=False)
        assert not any(value in text for value in (SECRET, wrong, quote(SECRET), *encoded))


@covers("audit_integrator")
def test_every_request_keeps_the_audit_integrator_running(stacks: Stacks, stack: str) -> None:
    before = len(stacks.ensured)
    stacks.post(stack, [("grant_type", "client_credentials"), *stacks.stage.bank.credentials()])
    stacks.post(stack, {"grant_type": "client_credentials", "client_id": "nobody"})
    assert len(stacks.ensured) == before + 2


def test_every_cross_cutting_behaviour_is_tested_on_both_stacks() -> None:
    existing, pending = cross_cutting.ids(), cross_cutting.ids(pending=True)
    assert set(COVERED) <= set(existing), "a test covers an unknown or pending behaviour"
    for behaviour in existing:
        tests = COVERED.get(behaviour, [])
        assert tests, f"{behaviour}: no test on both stacks"
        for test in tests:
            assert "stack" in inspect.signature(test).parameters, test.__name__
    assert not set(pending) & set(COVERED)


def test_the_lean_stack_answers_token_itself_and_leaves_the_rest_to_flask(
    stacks: Stacks,
) -> None:
    stage = stacks.stage
    before = stacks.wsgi.calls
    granted = stacks.post("lean", [("grant_type", "client_credentials"), *stage.bank.credentials()])
    assert granted.status == 200
    under_root = asgi_request(
        stacks.lean,
        "POST",
        "/token",
        [("Content-Type", FORM)],
        urlencode([("grant_type", "client_credentials"), *stage.bank.credentials()]).encode(),
        root_path="/base",
    )
    assert under_root.status == 200, under_root.body
    assert stacks.wsgi.calls == before
    # multipart and streamed bodies, other methods and paths: Flask
    multipart = stacks.post("lean", body=b"", content_type="multipart/form-data; boundary=x")
    assert multipart.status == 400
    assert asgi_request(stacks.lean, "GET", "/token").status == 405
    assert asgi_request(stacks.lean, "POST", "/token/", [("Content-Type", FORM)]).status == 404
    assert stacks.wsgi.calls == before + 3
    # a body of more than MAX_FIELDS fields is parsed by Flask in a request thread, not on the
    # event loop; it is answered as Flask answers it (unknown parameters are ignored)
    many = [("grant_type", "client_credentials"), *stage.bank.credentials()]
    many += [(f"x{i}", "1") for i in range(MAX_FIELDS)]
    assert stacks.post("lean", many).status == 200
    assert stacks.wsgi.calls == before + 4
    few = [("grant_type", "client_credentials"), *stage.bank.credentials()]
    few += [(f"x{i}", "1") for i in range(MAX_FIELDS - len(few))]  # exactly MAX_FIELDS fields
    assert stacks.post("lean", few).status == 200
    assert stacks.wsgi.calls == before + 4
    for extra, calls in ((0, before + 4), (1, before + 5)):  # MAX_ESCAPES: lean; one more: Flask
        escaped = [("grant_type", "client_credentials"), *stage.bank.credentials()]
        already = urlencode(escaped).count("%")
        padding = ("x", "%" * (MAX_ESCAPES - already + extra))  # each "%" sent as "%25"
        assert stacks.post("lean", [*escaped, padding]).status == 200
        assert stacks.wsgi.calls == calls


def test_lean_routes_follow_the_setting(stacks: Stacks) -> None:
    services = stacks.stage.server.services
    assert list(lean_routes(services, security_headers={}, integrator=None)) == [("POST", "/token")]
    off = dataclasses.replace(
        services.settings,
        service=dataclasses.replace(services.settings.service, lean_token_endpoint=False),
    )
    services_off = dataclasses.replace(services, settings=off)
    assert lean_routes(services_off, security_headers={}, integrator=None) == {}


# -- the same requests to both stacks ---------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    params: Sequence[tuple[str, str]] = ()
    headers: Headers = ()
    body: bytes | None = None
    content_type: str | None = FORM
    query: bytes = b""


Case = Callable[[Stage], Sent]


def _code_redemption(stage: Stage, *, dpop: bool) -> Sent:
    pkce = Pkce.generate()
    code = stage.code(stage.bank, pkce)
    params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", BANK_REDIRECT),
        ("code_verifier", pkce.verifier),
        *stage.bank.credentials(),
    ]
    headers = [("DPoP", stage.bank.proof(DpopKey(), "/token"))] if dpop else []
    return Sent(params, headers)


def _refresh(stage: Stage) -> Sent:
    tokens = stage.tokens(stage.bank)
    return Sent(
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"]),
            *stage.bank.credentials(),
        ]
    )


CC = ("grant_type", "client_credentials")
FORGED_NAME = "a\n2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]: login: ok\nb"
CASES: dict[str, Case] = {
    "cc_private_key_jwt": lambda s: Sent([CC, *s.bank.credentials()]),
    "cc_private_key_jwt_dpop": lambda s: Sent(
        [CC, *s.bank.credentials()], [("DPoP", s.bank.proof(DpopKey(), "/token"))]
    ),
    "cc_client_secret_basic": lambda s: Sent(
        [CC], [("Authorization", basic(SECRET_CLIENT, SECRET))]
    ),
    "cc_charset_and_case": lambda s: Sent(
        [CC, *s.bank.credentials()], content_type="Application/X-WWW-Form-URLEncoded; charset=UTF-8"
    ),
    "cc_query_ignored": lambda s: Sent([CC, *s.bank.credentials()], query=b"grant_type=x"),
    "code": lambda s: _code_redemption(s, dpop=False),
    "code_dpop": lambda s: _code_redemption(s, dpop=True),
    "refresh": _refresh,
    "missing_grant_type": lambda s: Sent(s.bank.credentials()),
    "duplicate_grant_type": lambda s: Sent([CC, CC, *s.bank.credentials()]),
    "json_body": lambda s: Sent(
        body=b'{"grant_type":"client_credentials"}', content_type="application/json"
    ),
    "no_content_type": lambda s: Sent([CC], content_type=None),
    "bad_grant_type": lambda s: Sent([("grant_type", "password"), *s.bank.credentials()]),
    "unknown_client": lambda s: Sent([CC, ("client_id", "nobody")]),
    "no_client": lambda s: Sent([CC]),
    "bad_assertion": lambda s: Sent(
        [CC, ("client_assertion_type", JWT_BEARER), ("client_assertion", "a.b.c")]
    ),
    "assertion_replayed_shape": lambda s: Sent([CC, *s.bank.credentials(), *s.bank.credentials()]),
    # issue 14: descriptions that say what to change, and never who is registered
    "assertion_aud_token_url": lambda s: Sent(
        [CC, *s.bank.credentials(s.bank.assertion(claims={"aud": s.server.url("/token")}))]
    ),
    "assertion_expired": lambda s: Sent(
        [CC, *s.bank.credentials(s.bank.assertion(claims={"iat": 1, "exp": 61}))]
    ),
    "assertion_unknown_client": lambda s: Sent(
        [CC, *s.bank.credentials(s.bank.assertion(claims={"iss": "ghost", "sub": "ghost"}))]
    ),
    "assertion_wrong_key": lambda s: Sent(
        [CC, *RelyingParty(s.server, Party("bank"), s.bank.clock, redirect_uri="").credentials()]
    ),
    "basic_wrong_secret": lambda s: Sent([CC], [("Authorization", basic(SECRET_CLIENT, "x"))]),
    "basic_unknown_client": lambda s: Sent([CC], [("Authorization", basic("ghost", SECRET))]),
    "dpop_htu_mismatch": lambda s: Sent(
        [CC, *s.bank.credentials()], [("DPoP", s.bank.proof(DpopKey(), "/par"))]
    ),
    "bad_dpop_proof": lambda s: Sent([CC, *s.bank.credentials()], [("DPoP", "not-a-jws")]),
    "two_dpop_proofs": lambda s: Sent(
        [CC, *s.bank.credentials()],
        [("DPoP", s.bank.proof(DpopKey(), "/token")), ("DPoP", s.bank.proof(DpopKey(), "/token"))],
    ),
    "two_authorizations": lambda s: Sent(
        [CC], [("Authorization", basic(SECRET_CLIENT, SECRET)), ("Authorization", "Basic eA==")]
    ),
    "basic_and_assertion": lambda s: Sent(
        [CC, *s.bank.credentials()], [("Authorization", basic(SECRET_CLIENT, SECRET))]
    ),
    "malformed_basic": lambda s: Sent([CC], [("Authorization", "Basic !!!")]),
    "bearer_authorization": lambda s: Sent([CC], [("Authorization", "Bearer x")]),
    "empty_authorization": lambda s: Sent([CC], [("Authorization", "")]),
    "oversized": lambda s: Sent([CC, ("pad", "x" * s.server.settings.limits.max_body_bytes)]),
    "nul_in_form": lambda s: Sent([CC, ("scope", "\x00")]),
    "nul_in_query": lambda s: Sent([CC], query=b"x=%00"),
    "invalid_utf8_body": lambda s: Sent(body=b"grant_type=client_credentials&x=\xff"),
    "invalid_utf8_percent": lambda s: Sent(body=b"grant_type=%ff&client_id=%c3"),
    "invalid_utf8_query": lambda s: Sent([CC], query=b"a=\xff"),
    "invalid_utf8_body_naming_a_client": lambda s: Sent(
        body=b"grant_type=client_credentials&client_id=nobody&x=\xff"
    ),
    "nbsp_before_content_type": lambda s: Sent(
        [CC, *s.bank.credentials()], content_type="\xa0" + FORM
    ),
    "empty_body": lambda s: Sent(body=b""),
    "blank_values": lambda s: Sent(body=b"grant_type&client_id=&&=x"),
    "underscore_header": lambda s: Sent([CC], [("Content_Type", "text/plain")]),
    # attack report F2: a repeated parameter's name is the caller's; never echoed unless plain
    "repeated_forged_name": lambda s: Sent(
        [("grant_type", "x"), (FORGED_NAME, "1"), (FORGED_NAME, "2")]
    ),
    "repeated_long_name": lambda s: Sent([CC, ("x" * 30_000, "1"), ("x" * 30_000, "2")]),
    "repeated_plain_name": lambda s: Sent([CC, *s.bank.credentials(), ("k", "1"), ("k", "2")]),
}


def normalised(reply: Reply) -> tuple[int, list[tuple[str, str]], Any]:
    """What must be equal across stacks: token values, nonces and hence lengths may differ."""
    headers = [
        (name, "<varies>" if name in ("content-length", "dpop-nonce", "x-request-id") else value)
        for name, value in reply.headers
    ]
    assert dict(reply.headers)["content-length"] == str(len(reply.body))
    if reply.status != 200:
        return reply.status, headers, reply.body
    body = reply.json()
    assert reply.body == json_bytes(body)  # jsonify's exact encoding
    for name in TOKEN_FIELDS:
        if name in body:
            body[name] = "<token>"
    return reply.status, headers, body


@pytest.mark.parametrize("stack", STACKS)
def test_neither_stack_tells_who_is_registered(stacks: Stacks, stack: str) -> None:
    """Issue 14: an unknown client and a wrong key (or secret) get byte-identical answers."""
    for group in (
        ("assertion_unknown_client", "assertion_wrong_key"),
        ("basic_unknown_client", "basic_wrong_secret"),
    ):
        answers = set()
        for case in group:
            sent = CASES[case](stacks.stage)
            reply = stacks.post(stack, sent.params, headers=sent.headers)
            assert reply.status == 401
            status, headers, body = normalised(reply)
            answers.add((status, tuple(headers), body))
        assert len(answers) == 1, answers


@pytest.mark.parametrize("case", list(CASES))
def test_both_stacks_answer_alike(stacks: Stacks, case: str) -> None:
    replies = {}
    for stack in STACKS:
        sent = CASES[case](stacks.stage)
        replies[stack] = stacks.post(
            stack,
            sent.params,
            headers=sent.headers,
            body=sent.body,
            content_type=sent.content_type,
            query=sent.query,
        )
    flask, lean = (normalised(replies[s]) for s in STACKS)
    assert lean == flask


@pytest.mark.parametrize("stack", STACKS)
def test_a_repeated_parameter_is_named_only_when_plain(stacks: Stacks, stack: str) -> None:
    """Attack report F2: the name of a repeated parameter went raw into error_description and the
    log (line breaks, 32 KB per request); it is named only when short and plain."""
    for case, description in (
        ("repeated_forged_name", "a parameter is repeated"),
        ("repeated_long_name", "a parameter is repeated"),
        ("repeated_plain_name", "parameter k is repeated"),
    ):
        sent = CASES[case](stacks.stage)
        reply = stacks.post(stack, sent.params, headers=sent.headers)
        assert_error(reply, 400, {"error": "invalid_request", "error_description": description})


@pytest.mark.parametrize("case", ["cc_private_key_jwt", "unknown_client", "use_nonce"])
def test_both_stacks_answer_alike_with_nonces(nonce_stacks: Stacks, case: str) -> None:
    replies = {}
    for stack in STACKS:
        stage = nonce_stacks.stage
        if case == "use_nonce":
            sent = Sent(
                [CC, *stage.bank.credentials()], [("DPoP", stage.bank.proof(DpopKey(), "/token"))]
            )
        else:
            sent = CASES[case](stage)
        replies[stack] = nonce_stacks.post(stack, sent.params, headers=sent.headers)
    flask, lean = (normalised(replies[s]) for s in STACKS)
    assert lean == flask


_TEXT = st.text(alphabet=st.sampled_from("ab=&%+0fFc3\x00é _-;,"), max_size=12)
_NAMES = st.sampled_from(
    ["grant_type", "client_id", "client_assertion", "client_assertion_type", "scope", "code"]
)
_PARAM = st.tuples(st.one_of(_NAMES, _TEXT), st.one_of(_TEXT, st.just("client_credentials")))
_CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(
        [
            FORM,
            FORM + ";charset=latin-1",
            " " + FORM.upper() + "\t;",
            FORM + ",text/plain",
            "text/plain",
            "\xa0" + FORM,
            "",
        ]
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.lists(_PARAM, max_size=5),
    raw=st.one_of(st.none(), st.binary(max_size=40)),
    content_type=_CONTENT_TYPES,
    authorization=st.lists(st.sampled_from(["Basic eDp5", "", "Bearer a,b", "basic"]), max_size=2),
    dpop=st.lists(st.sampled_from(["a.b.c", "x,y", ""]), max_size=2),
    query=st.sampled_from([b"", b"a", b"a=%00", b"%zz=1&&", b"\xc3\xa9=1"]),
)
def test_both_stacks_answer_malformed_requests_alike(
    stacks: Stacks,
    params: list[tuple[str, str]],
    raw: bytes | None,
    content_type: str | None,
    authorization: list[str],
    dpop: list[str],
    query: bytes,
) -> None:
    headers = [("Authorization", a) for a in authorization] + [("DPoP", d) for d in dpop]
    replies = [
        stacks.post(
            stack,
            params,
            headers=headers,
            body=raw,
            content_type=content_type,
            query=query,
        )
        for stack in STACKS
    ]
    flask, lean = (normalised(reply) for reply in replies)
    assert lean == flask


# -- the framework-free readers against werkzeug's, without a server -------------------------

_URLENCODED = st.one_of(
    st.binary(max_size=60),
    st.text(alphabet=st.sampled_from("ab=&%+;0fFc389\x00é _-"), max_size=40).map(str.encode),
)


@settings(max_examples=300, deadline=None)
@given(body=_URLENCODED)
def test_the_form_reader_reads_what_werkzeug_reads(body: bytes) -> None:
    _, parsed, _ = FormDataParser().parse(io.BytesIO(body), FORM, len(body))
    assert urlencoded_form(body) == {key: parsed.getlist(key) for key in parsed}


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(alphabet=st.sampled_from(" \t\xa0\x85;,=\"'aA/-xX" + FORM.upper()), max_size=30)
)
def test_the_media_type_is_werkzeugs_mimetype(value: str) -> None:
    assert mimetype(value) == parse_options_header(value)[0].lower()
    assert mimetype(None) == parse_options_header(None)[0].lower()


def test_the_lean_route_imports_neither_flask_nor_werkzeug() -> None:
    tree = ast.parse(Path(token_route.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert not imported & {"flask", "werkzeug"}
