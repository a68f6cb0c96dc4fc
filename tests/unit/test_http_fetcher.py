"""The HTTP Fetcher against a real http.server on 127.0.0.1 (loopback explicitly allowed), and
its refusals: plain http, loopback/private/link-local targets (literal or after DNS resolution),
oversize bodies, non-200 answers, redirects, timeouts; plus the TTL cache on an injected clock."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trustanchor.anchors.fetcher import FetchError
from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings, is_public
from trustanchor.clock import FixedClock

ACCEPT = "application/statuslist+jwt"
BODY = b"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"


class _Handler(BaseHTTPRequestHandler):
    hits: list[tuple[str, str | None]] = []  # noqa: RUF012 - shared log, reset per server

    def do_GET(self) -> None:
        type(self).hits.append((self.path, self.headers.get("Accept")))
        if self.path == "/ok":
            self._send(200, BODY)
        elif self.path == "/big-no-length":
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"x" * 16384)
        elif self.path == "/big-with-length":
            self._send(200, b"x" * 200_000)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(200, BODY)
        elif self.path == "/created":
            self._send(201, BODY)
        else:
            self._send(404, b"not found")

    def do_POST(self) -> None:
        """A PAR endpoint's answer (RFC 9126: 201 Created); anything else 400 (H4b)."""
        length = int(self.headers.get("Content-Length", "0"))
        type(self).hits.append((self.path, self.rfile.read(length).decode()))
        self._send(201 if self.path == "/created" else 400, BODY)

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


LOCAL = HttpFetcherSettings(
    timeout=0.5,
    deadline=5.0,
    cache_ttl=60,
    http_hosts=frozenset({"127.0.0.1"}),
    private_hosts=frozenset({"127.0.0.1"}),
)


def fetcher(settings: HttpFetcherSettings = LOCAL, clock: FixedClock | None = None) -> HttpFetcher:
    return HttpFetcher(clock=clock or FixedClock(1_760_000_000), settings=settings)


def refused(target: HttpFetcher, url: str, reason: str, max_bytes: int = 65536) -> FetchError:
    with pytest.raises(FetchError) as caught:
        target.get(url, accept=ACCEPT, max_bytes=max_bytes)
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_fetches_from_an_explicitly_allowed_loopback_server(server: str) -> None:
    assert fetcher().get(f"{server}/ok", accept=ACCEPT, max_bytes=1024) == BODY
    assert _Handler.hits == [("/ok", ACCEPT)]


def test_loopback_is_refused_when_not_explicitly_allowed(server: str) -> None:
    only_http = HttpFetcherSettings(http_hosts=frozenset({"127.0.0.1"}))
    refused(fetcher(only_http), f"{server}/ok", "refused_address")
    assert _Handler.hits == []


def test_plain_http_is_refused_unless_the_host_is_named(server: str) -> None:
    only_private = HttpFetcherSettings(private_hosts=frozenset({"127.0.0.1"}))
    refused(fetcher(only_private), f"{server}/ok", "refused_scheme")
    assert _Handler.hits == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/status",
        "https://10.0.0.1/status",
        "https://192.168.1.10/status",
        "https://172.16.0.1/status",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/status",
        "https://0.0.0.0/status",
        "https://[::1]/status",
        "https://[fe80::1]/status",
        "https://[fd00::1]/status",
        "https://[::ffff:127.0.0.1]/status",
        "https://[::ffff:10.0.0.1]/status",
        "https://224.0.0.1/status",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(url: str) -> None:
    refused(fetcher(HttpFetcherSettings()), url, "refused_address")


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"internal.example": ["10.1.2.3"], "mixed.example": ["93.184.215.14", "127.0.0.1"]}[
            host
        ]

    target = HttpFetcher(clock=FixedClock(0), settings=HttpFetcherSettings(), resolver=resolver)
    refused(target, "https://internal.example/status", "refused_address")
    # Every address counts: one private answer is enough to refuse (DNS rebinding).
    refused(target, "https://mixed.example/status", "refused_address")


def test_localhost_by_name_is_refused() -> None:
    refused(fetcher(HttpFetcherSettings()), "https://localhost/status", "refused_address")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://issuer.example/list", "refused_scheme"),
        ("file:///etc/passwd", "refused_scheme"),
        ("//issuer.example/list", "refused_scheme"),
        ("https://user:secret@issuer.example/list", "invalid_url"),
        ("https:///list", "invalid_url"),
        ("https://issuer.example:99999/list", "invalid_url"),
        ("https://issuer.example/li st", "invalid_url"),
        ("https://issuér.example/list", "invalid_url"),
    ],
)
def test_invalid_urls_are_refused(url: str, reason: str) -> None:
    refused(fetcher(HttpFetcherSettings()), url, reason)


def test_oversize_body_without_content_length_is_cut_off(server: str) -> None:
    error = refused(fetcher(), f"{server}/big-no-length", "too_large", max_bytes=50_000)
    assert "50000" in str(error)


def test_oversize_body_announced_by_content_length_is_refused(server: str) -> None:
    refused(fetcher(), f"{server}/big-with-length", "too_large", max_bytes=50_000)


def test_non_200_is_an_error(server: str) -> None:
    refused(fetcher(), f"{server}/missing", "http_status")


def test_a_post_may_be_answered_201_created_but_a_get_may_not(server: str) -> None:
    """RFC 9126: a PAR endpoint answers 201; any other answer but 200 is still an error."""
    body = fetcher().post(
        f"{server}/created",
        body=b"a=1",
        content_type="application/x-www-form-urlencoded",
        accept="application/json",
        max_bytes=1024,
    )
    assert body == BODY and _Handler.hits == [("/created", "a=1")]
    refused(fetcher(), f"{server}/created", "http_status")
    with pytest.raises(FetchError, match="http_status"):
        fetcher().post(
            f"{server}/other",
            body=b"a=1",
            content_type="application/x-www-form-urlencoded",
            accept="application/json",
            max_bytes=1024,
        )


def test_redirects_are_not_followed(server: str) -> None:
    refused(fetcher(), f"{server}/redirect", "http_status")
    assert [path for path, _ in _Handler.hits] == ["/redirect"]


def test_slow_server_times_out(server: str) -> None:
    started = time.perf_counter()
    refused(fetcher(), f"{server}/slow", "timeout")
    assert time.perf_counter() - started < 1.4


def test_connection_refused_is_a_network_error(server: str) -> None:
    refused(fetcher(), f"http://127.0.0.1:{unused_port()}/ok", "network")


def test_cache_serves_until_the_ttl_on_the_injected_clock(server: str) -> None:
    clock = FixedClock(1_760_000_000)
    target = fetcher(clock=clock)
    url = f"{server}/ok"
    assert target.get(url, accept=ACCEPT, max_bytes=1024) == BODY
    clock.advance(59)
    assert target.get(url, accept=ACCEPT, max_bytes=1024) == BODY
    assert len(_Handler.hits) == 1
    clock.advance(1)
    assert target.get(url, accept=ACCEPT, max_bytes=1024) == BODY
    assert len(_Handler.hits) == 2


def test_cache_never_returns_more_than_the_caller_accepts(server: str) -> None:
    target = fetcher()
    url = f"{server}/ok"
    target.get(url, accept=ACCEPT, max_bytes=1024)
    refused(target, url, "too_large", max_bytes=len(BODY) - 1)


def test_errors_are_not_cached(server: str) -> None:
    target = fetcher()
    refused(target, f"{server}/missing", "http_status")
    refused(target, f"{server}/missing", "http_status")
    assert len(_Handler.hits) == 2


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.1.1", False),
        ("::1", False),
        ("::ffff:192.168.0.1", False),
        ("::ffff:93.184.215.14", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("ff02::1", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def unused_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
