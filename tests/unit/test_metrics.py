"""The metrics port (trustanchor/metrics.py) and its Prometheus implementation
(trustanchor/web/metrics.py), without HTTP: fetch outcomes counted per source through the real
HTTP fetcher against a loopback server, each anchor kind's verifier fetching under its own
source, the relay forwarding to what the web layer attaches, and the text format's labels."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from trustanchor.anchors.fetcher import FetchError
from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings
from trustanchor.clock import FixedClock
from trustanchor.config import ConfigError, load_settings
from trustanchor.metrics import OIDC_PROVIDER, STATUS_LIST, MeteredFetcher, MetricsRelay, NoMetrics
from trustanchor.services.anchor_verifiers import AnchorVerifiers
from trustanchor.web.metrics import PrometheusMetrics

REPO = Path(__file__).resolve().parents[2]
FETCHES = "trustanchor_fetches_total"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, body = (200, b"ok") if self.path == "/ok" else (404, b"no")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _http_fetcher(*, loopback: bool) -> HttpFetcher:
    hosts = frozenset({"127.0.0.1"})
    settings = HttpFetcherSettings(
        timeout=0.5,
        deadline=5.0,
        cache_ttl=0,
        http_hosts=hosts,
        private_hosts=hosts if loopback else frozenset(),
    )
    return HttpFetcher(clock=FixedClock(1_760_000_000), settings=settings)


def _fetches(prometheus: PrometheusMetrics, source: str, outcome: str) -> float:
    value = prometheus.registry.get_sample_value(FETCHES, {"source": source, "outcome": outcome})
    return value or 0.0


def test_fetch_outcomes_are_counted_by_source_and_reason(server: str) -> None:
    prometheus = PrometheusMetrics()
    allowed = MeteredFetcher(_http_fetcher(loopback=True), prometheus, STATUS_LIST)
    assert allowed.get(f"{server}/ok", accept="text/plain", max_bytes=100) == b"ok"
    with pytest.raises(FetchError):
        allowed.get(f"{server}/missing", accept="text/plain", max_bytes=100)
    refused = MeteredFetcher(_http_fetcher(loopback=False), prometheus, STATUS_LIST)
    with pytest.raises(FetchError):
        refused.get(f"{server}/ok", accept="text/plain", max_bytes=100)
    assert _fetches(prometheus, STATUS_LIST, "ok") == 1
    assert _fetches(prometheus, STATUS_LIST, "http_status") == 1
    assert _fetches(prometheus, STATUS_LIST, "refused_address") == 1
    text = prometheus.counted().decode()
    assert server not in text and "/missing" not in text  # no URL in a label


def test_each_anchor_kind_fetches_under_its_own_source(server: str) -> None:
    prometheus = PrometheusMetrics()
    relay = MetricsRelay()
    settings = load_settings(REPO / "config" / "test.toml", environ={})
    verifiers = AnchorVerifiers(
        settings, _http_fetcher(loopback=True), FixedClock(1), metrics=relay
    )
    fetcher = verifiers.fetcher  # the upstream provider's (services/upstream_login.py)
    assert fetcher is not None
    fetcher.get(f"{server}/ok", accept="text/plain", max_bytes=100)  # relay: not attached yet
    relay.sink = prometheus  # what the web layer does when metrics.token is set
    fetcher.get(f"{server}/ok", accept="text/plain", max_bytes=100)
    assert _fetches(prometheus, OIDC_PROVIDER, "ok") == 1
    assert _fetches(prometheus, STATUS_LIST, "ok") == 0


def test_domain_counts_carry_only_their_bounded_labels() -> None:
    prometheus = PrometheusMetrics()
    relay = MetricsRelay(prometheus)
    relay.token_issued("refresh_token")
    relay.decision("denied", "limit_exceeded")
    relay.login("x509", "jp-card", "certificate_declined")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(prometheus.counted().decode())
        for s in family.samples
    }
    assert samples[("trustanchor_tokens_issued_total", (("grant_type", "refresh_token"),))] == 1
    decision = (("outcome", "denied"), ("reason", "limit_exceeded"))
    assert samples[("trustanchor_policy_decisions_total", decision)] == 1
    login = (("anchor", "jp-card"), ("anchor_kind", "x509"), ("outcome", "certificate_declined"))
    assert samples[("trustanchor_logins_total", login)] == 1


def test_the_lean_routes_meter_counts_by_status_and_times_once() -> None:
    prometheus = PrometheusMetrics()
    meter = prometheus.meter("POST", "/token")
    for status in (200, 200, 401):
        meter.observe(status, 0.002)
    registry = prometheus.registry
    token = {"method": "POST", "route": "/token"}
    requests = "trustanchor_http_requests_total"
    assert registry.get_sample_value(requests, {**token, "status": "200"}) == 2
    assert registry.get_sample_value(requests, {**token, "status": "401"}) == 1
    timed = "trustanchor_http_request_duration_seconds_bucket"
    assert registry.get_sample_value(timed, {**token, "le": "0.0025"}) == 3
    assert registry.get_sample_value(timed, {**token, "le": "0.001"}) == 0


def test_unusual_methods_share_one_label() -> None:
    prometheus = PrometheusMetrics()
    for method in ("BREW", "PROPFIND", "GET"):
        prometheus.request(method, "unmatched", 405, 0.001)
    requests = "trustanchor_http_requests_total"
    labels = {"route": "unmatched", "status": "405"}
    assert prometheus.registry.get_sample_value(requests, {**labels, "method": "other"}) == 2
    assert prometheus.registry.get_sample_value(requests, {**labels, "method": "GET"}) == 1


def test_no_metrics_counts_nothing() -> None:
    relay = MetricsRelay()
    assert isinstance(relay.sink, NoMetrics)
    relay.token_issued("client_credentials")  # nothing to look at, nothing raised


TEST_CONFIG = REPO / "config" / "test.toml"
GOOD_TOKEN = "7f3c1a9e4b2d8c6f0e5a7b3d9c1f4e2a"


def test_the_metrics_token_comes_from_the_environment_and_is_off_by_default() -> None:
    assert load_settings(TEST_CONFIG, environ={}).metrics.token == ""
    on = load_settings(TEST_CONFIG, environ={"TRUSTANCHOR_METRICS_TOKEN": GOOD_TOKEN})
    assert on.metrics.token == GOOD_TOKEN


@pytest.mark.parametrize("token", ["short", "x" * 31, GOOD_TOKEN[:-1] + " "])
def test_a_short_or_spaced_metrics_token_is_refused(token: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(TEST_CONFIG, environ={}, overrides={"metrics": {"token": token}})
    assert any(p.startswith("metrics.token:") for p in refused.value.problems)
    assert token not in str(refused.value)  # a secret is never repeated


def test_audit_stall_after_is_bounded() -> None:
    assert load_settings(TEST_CONFIG, environ={}).audit.stall_after == 60
    for value in (0, 4, 86_401):
        with pytest.raises(ConfigError) as refused:
            load_settings(TEST_CONFIG, environ={}, overrides={"audit": {"stall_after": value}})
        assert any(p.startswith("audit.stall_after:") for p in refused.value.problems)
