"""Issue 10, item 6: slow clients cannot stall the service. On the real server (``trustanchor
serve``: granian, one worker, the production thread count of 1 per worker on SQLite and 4 on
PostgreSQL; the werkzeug harness of the other flow tests would prove nothing here).

64 connections trickle their headers one line a second and 64 more send complete headers
declaring a 1000-byte body, then send it a byte a second; each reconnects as soon as it is cut
off, so 128 slow connections stay open through the whole measurement. Meanwhile a probe keeps
asking for the JWKS and for client_credentials tokens (private_key_jwt), one request at a time.

- every probe request is answered, and their median latency stays within a generous factor of
  the median measured in the same test before the slow clients came (no absolute timing);
- every body trickler gets ``408 Request Timeout`` and then the connection closes, between
  ``body_read_timeout`` and ``body_read_timeout_max`` plus slack after its headers;
- every header trickler's connection is closed (hyper answers nothing) within
  ``header_read_timeout`` plus slack;
- a client that sends its body slowly but above ``min_body_rate`` still gets its token: the
  deadline grows with what arrived.

Loopback only; every loop is bounded by a deadline. Run with ``-s`` for the figures.
"""

from __future__ import annotations

import secrets
import select
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests
from support.ecosystem import Party
from support.service_process import ServiceProcess, running_service

SLOW_CONNECTIONS = 64  # of each kind
LIMITS = {
    "header_read_timeout": 2,
    "body_read_timeout": 2,
    "body_read_timeout_max": 4,
    "min_body_rate": 100,
}
SLACK = 4.0  # seconds allowed beyond a bound on a loaded machine
BASELINE_SECONDS = 3.0
SLOW_SECONDS = 8.0  # the probe's window with the slow clients (several cut-offs each)
PROBE_TIMEOUT = 10.0
LATENCY_FACTOR = 10.0  # the loaded median may be this many times the unloaded one
DECLARED_BODY = 1000

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEDGER = Party("ledger")
CLIENTS = [
    {
        "client_id": LEDGER.client_id,
        "client_name": LEDGER.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": LEDGER.jwks,
        "grant_types": ["client_credentials"],
    }
]


def token_form(issuer: str) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": LEDGER.client_id,
        "sub": LEDGER.client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = jwt.encode(
        claims, LEDGER.key, algorithm="ES256", headers={"kid": f"{LEDGER.client_id}-key"}
    )
    return {
        "grant_type": "client_credentials",
        "client_id": LEDGER.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


# --- the probe ----------------------------------------------------------------------------------


@dataclass
class Probe:
    latencies: dict[str, list[float]]
    failures: list[str]

    def median(self, kind: str) -> float:
        return statistics.median(self.latencies[kind])


def probe(service: ServiceProcess, seconds: float) -> Probe:
    """JWKS and token requests, alternately, one at a time, for ``seconds``."""
    result = Probe({"jwks": [], "token": []}, [])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for kind in ("jwks", "token"):
            began = time.perf_counter()
            try:
                if kind == "jwks":
                    got = requests.get(service.url("/jwks"), timeout=PROBE_TIMEOUT)
                else:
                    form = token_form(service.issuer)
                    got = requests.post(service.url("/token"), data=form, timeout=PROBE_TIMEOUT)
            except requests.RequestException as exc:
                result.failures.append(f"{kind}: {exc.__class__.__name__}")
                continue
            if got.status_code != 200:
                result.failures.append(f"{kind}: {got.status_code} {got.text[:80]}")
                continue
            result.latencies[kind].append(time.perf_counter() - began)
    return result


# --- the slow clients ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cutoff:
    kind: str  # "body" or "headers"
    seconds: float  # from the end of the headers (body) or the connect (headers) to the cut
    status: int | None  # the answer's status; None: closed without an answer
    closed: bool  # the server closed the connection (after its answer, if any)


def _answer(sock: socket.socket, until: float) -> tuple[int | None, bool]:
    """Read what the server sends until it closes or ``until``: (status, closed)."""
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = sock.recv(4096)
        except OSError:
            return _status(data), True
        if not chunk:
            return _status(data), True
        data += chunk
    return _status(data), False


def _status(data: bytes) -> int | None:
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12])


def trickle_once(port: int, kind: str, stop: threading.Event, give_up: float) -> Cutoff | None:
    """One slow connection until the server cuts it (a Cutoff), or until ``stop`` (None while
    still within every bound; a Cutoff with closed=False beyond them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if kind == "body":
            sock.sendall(
                b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % DECLARED_BODY
            )
            piece = b"g"
        else:
            sock.sendall(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            piece = b"X-Slow: 1\r\n"
        began = time.monotonic()
        while True:
            waited = time.monotonic() - began
            if stop.is_set() or time.monotonic() > give_up:
                bound = LIMITS["body_read_timeout_max" if kind == "body" else "header_read_timeout"]
                return Cutoff(kind, waited, None, False) if waited > bound + SLACK else None
            ready, _, _ = select.select([sock], [], [], 1.0)
            if ready:
                status, closed = _answer(sock, time.monotonic() + SLACK)
                return Cutoff(kind, time.monotonic() - began, status, closed)
            try:
                sock.sendall(piece)
            except OSError:
                return Cutoff(kind, time.monotonic() - began, None, True)


@dataclass
class SlowClients:
    port: int
    stop: threading.Event
    cutoffs: list[Cutoff]
    threads: list[threading.Thread]
    errors: list[str]

    def run(self, kind: str, give_up: float) -> None:
        while not self.stop.is_set() and time.monotonic() < give_up:
            try:
                cutoff = trickle_once(self.port, kind, self.stop, give_up)
            except OSError as exc:  # the service refused the connection or its headers
                self.errors.append(f"{kind}: {exc!r}")
                time.sleep(0.1)
                continue
            if cutoff is not None:
                self.cutoffs.append(cutoff)


@pytest.fixture
def slow_clients() -> Iterator[list[SlowClients]]:
    made: list[SlowClients] = []
    yield made
    for clients in made:
        clients.stop.set()
        for thread in clients.threads:
            thread.join(timeout=SLACK + 2)


def start_slow_clients(service: ServiceProcess, made: list[SlowClients]) -> SlowClients:
    port = urlsplit(service.issuer).port
    assert port is not None
    clients = SlowClients(port, threading.Event(), [], [], [])
    give_up = time.monotonic() + SLOW_SECONDS + 2 * SLACK
    for kind in ("body", "headers"):
        for _ in range(SLOW_CONNECTIONS):
            thread = threading.Thread(target=clients.run, args=(kind, give_up), daemon=True)
            clients.threads.append(thread)
    made.append(clients)
    for thread in clients.threads:
        thread.start()
    return clients


def slow_but_steady_token(service: ServiceProcess) -> int:
    """A token request whose body arrives slowly (about 2.5 s for ~700 bytes, 10 bytes every
    35 ms) yet faster than min_body_rate: the deadline keeps growing, so it is answered."""
    port = urlsplit(service.issuer).port
    assert port is not None
    body = urlencode(token_form(service.issuer)).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for offset in range(0, len(body), 10):
            sock.sendall(body[offset : offset + 10])
            time.sleep(0.035)
        status, _ = _answer(sock, time.monotonic() + PROBE_TIMEOUT)
    assert status is not None, "no answer to a slow but steady body"
    return status


# --- the test -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_slow_clients_get_408_or_are_closed_and_others_keep_normal_latency(
    tmp_path: Path, database_url: str, slow_clients: list[SlowClients]
) -> None:
    with running_service(
        tmp_path,
        database_url=database_url,
        clients=CLIENTS,
        workers=1,  # service.workers' default
        overrides={"limits": LIMITS},
    ) as service:
        before = probe(service, BASELINE_SECONDS)
        assert before.failures == [], before.failures

        assert slow_but_steady_token(service) == 200

        clients = start_slow_clients(service, slow_clients)
        time.sleep(0.5)  # every slow connection is open and has begun to trickle
        during = probe(service, SLOW_SECONDS)
        clients.stop.set()
        for thread in clients.threads:
            thread.join(timeout=SLACK + 2)
        assert service.running, service.tail()

    cutoffs = list(clients.cutoffs)
    body = [c for c in cutoffs if c.kind == "body"]
    headers = [c for c in cutoffs if c.kind == "headers"]
    print(
        f"\nprobe median ms before/with slow clients: "
        f"jwks {1000 * before.median('jwks'):.1f} / "
        f"{1000 * during.median('jwks') if during.latencies['jwks'] else float('nan'):.1f}, "
        f"token {1000 * before.median('token'):.1f} / "
        f"{1000 * during.median('token') if during.latencies['token'] else float('nan'):.1f}; "
        f"{sum(len(v) for v in during.latencies.values())} answered, "
        f"{len(during.failures)} failed; cut-offs: {len(body)} bodies "
        f"(408: {sum(c.status == 408 for c in body)}), {len(headers)} header blocks"
    )

    # Other requests keep answering, at about their usual latency.
    assert during.failures == [], (
        f"{len(during.failures)} probe requests failed: {during.failures[:5]}"
    )
    for kind in ("jwks", "token"):
        assert len(during.latencies[kind]) >= 10, f"too few {kind} answers: {during.latencies}"
        assert during.median(kind) <= LATENCY_FACTOR * before.median(kind), (
            f"{kind}: median {during.median(kind):.4f} s with slow clients, "
            f"{before.median(kind):.4f} s without"
        )

    assert clients.errors == [], f"slow connections refused: {clients.errors[:5]}"

    # Each slow body is answered 408 and its connection closed, within the bound.
    assert len(body) >= SLOW_CONNECTIONS, f"only {len(body)} body trickler(s) were cut off"
    for cut in body:
        assert cut.status == 408 and cut.closed, cut
        assert LIMITS["body_read_timeout"] - 0.2 <= cut.seconds, cut
        assert cut.seconds <= LIMITS["body_read_timeout_max"] + SLACK, cut

    # Each trickled header block is closed within the bound (hyper sends no answer).
    assert len(headers) >= SLOW_CONNECTIONS, f"only {len(headers)} header trickler(s) were cut"
    for cut in headers:
        assert cut.closed and cut.status in (None, 408), cut
        assert cut.seconds <= LIMITS["header_read_timeout"] + SLACK, cut


# --- connections that send headers and no body (attack session of 2026-12-07, F1) -------------

PLACES = {
    "body_read_timeout": 30,
    "body_read_timeout_max": 30,
    "requests_per_worker": 64,  # granian's backpressure for the one worker
    "waiting_bodies_per_worker": 16,
}
SILENT_CONNECTIONS = 100  # more than the worker's places


def headers_without_body(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % DECLARED_BODY
    )
    return sock


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_connections_sending_headers_and_no_body_never_take_every_place(
    tmp_path: Path, database_url: str
) -> None:
    """More connections than the worker has places declare a body and send none. Before, each
    kept its place until its body deadline (30 s here) and every other request waited that
    long. Now at most ``waiting_bodies_per_worker`` wait: each newcomer cuts off the one that
    has waited longest (408, long before the deadline), and other requests are answered."""
    with running_service(
        tmp_path,
        database_url=database_url,
        clients=CLIENTS,
        workers=1,
        overrides={"limits": PLACES},
    ) as service:
        port = urlsplit(service.issuer).port
        assert port is not None
        sockets = [headers_without_body(port) for _ in range(SILENT_CONNECTIONS)]
        try:
            time.sleep(1.0)
            began = time.monotonic()
            jwks = requests.get(service.url("/jwks"), timeout=PROBE_TIMEOUT)
            token = requests.post(
                service.url("/token"), data=token_form(service.issuer), timeout=PROBE_TIMEOUT
            )
            probe_seconds = time.monotonic() - began
            until = time.monotonic() + SLACK
            answers = [_answer(sock, until) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        assert service.running, service.tail()
    print(f"\nprobe answered in {probe_seconds:.2f} s with {SILENT_CONNECTIONS} silent connections")
    assert (jwks.status_code, token.status_code) == (200, 200), (jwks.text, token.text)
    assert probe_seconds < PLACES["body_read_timeout"] / 3
    cut_off = [status for status, closed in answers if status == 408 and closed]
    # all but the newest waiting_bodies_per_worker were cut off, well before their deadline
    assert len(cut_off) >= SILENT_CONNECTIONS - PLACES["waiting_bodies_per_worker"], answers


@pytest.mark.timeout(60)
def test_the_server_speaks_http_1_1_only(tmp_path: Path, database_url: str) -> None:
    """The slow-client bounds are HTTP/1's: an HTTP/2 request may omit Content-Length (and so
    escape the count of requests waiting for a body) and granian's header deadline is HTTP/1's.
    A client opening HTTP/2 over cleartext (prior knowledge) gets no HTTP/2 answer."""
    with running_service(
        tmp_path, database_url=database_url, clients=CLIENTS, workers=1
    ) as service:
        port = urlsplit(service.issuer).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            )
            sock.settimeout(5)
            try:
                first = sock.recv(9)
            except (TimeoutError, ConnectionResetError):
                first = b""
        # an HTTP/2 server's first frame is SETTINGS: type 0x4 in the fourth byte
        assert not (len(first) >= 4 and first[3] == 0x04), first
        assert requests.get(service.url("/jwks"), timeout=10).status_code == 200
