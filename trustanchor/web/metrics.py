"""Prometheus metrics (issue 14) with ``prometheus_client``: the implementation of
:class:`trustanchor.metrics.Metrics` the web layer attaches to the services, the request counter
and latency histogram of both stacks (the Flask app's hooks, :func:`install`; the lean
``/token`` route's :class:`RouteMeter`), and the text served at ``/metrics``.

Off unless ``metrics.token`` is set: then nothing is attached (the services keep counting
nothing) and ``/metrics`` answers 404.

Several workers: ``trustanchor serve`` gives each run a fresh directory in
``PROMETHEUS_MULTIPROC_DIR`` before granian starts its workers, so ``prometheus_client`` keeps
every worker's values in a file of its own there and ``/metrics``, answered by whichever worker,
adds them up (``MultiProcessCollector``). Only counters and histograms live there: a dead
worker's file keeps what it counted (the totals never go back), and no gauge needs
``mark_process_dead``. The audit gauges are read from the database at each scrape instead, so
they are the same whichever worker answers.

Labels: the route *template* (``/interaction/<interaction_id>/wallet``, never the path sent;
``unmatched`` for a path no route has), the method (``other`` for unusual ones), the status
code, and the bounded labels of :mod:`trustanchor.metrics`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from trustanchor.services import readiness
from trustanchor.services.container import Services

log = logging.getLogger("trustanchor.web")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Request latency buckets (seconds): the token endpoint answers in about a millisecond.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"


class PrometheusMetrics:
    """Every metric of the service, on a registry of its own (so that two services in one test
    process never share counts); in multiprocess mode the values are the worker's files."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir and values.ValueClass.__name__ != "MmapedValue":
            # prometheus_client chose its value class when first imported; a parent that
            # imported it before the directory was set and then forked would count in memory.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "trustanchor_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "trustanchor_http_request_duration_seconds",
            "Time to answer an HTTP request (the application's part), by method and route",
            ["method", "route"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "trustanchor_tokens_issued",
            "Token endpoint answers with tokens, by grant type",
            ["grant_type"],
            registry=registry,
        )
        self.decisions = Counter(
            "trustanchor_policy_decisions",
            "Policy decisions that took effect, by outcome and reason code",
            ["outcome", "reason"],
            registry=registry,
        )
        self.logins = Counter(
            "trustanchor_logins",
            "Logins that ended, by anchor kind, anchor id and outcome (ok or a reason code)",
            ["anchor_kind", "anchor", "outcome"],
            registry=registry,
        )
        self.fetches = Counter(
            "trustanchor_fetches",
            "Outbound fetches of anchor material, by source and outcome (ok or a reason)",
            ["source", "outcome"],
            registry=registry,
        )
        self._requests: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    # --- requests --------------------------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request (the Flask stack; the lean route binds its own children)."""
        key = (method if method in METHODS else "other", route, str(status))
        children = self._requests.get(key)
        if children is None:
            children = self._bind(*key)
        children[0].inc()
        children[1].observe(seconds)

    def _bind(self, method: str, route: str, status: str) -> tuple[Counter, Histogram]:
        children = (
            self.requests.labels(method, route, status),
            self.latency.labels(method, route),
        )
        self._requests[(method, route, status)] = children
        return children

    def meter(self, method: str, route: str) -> RouteMeter:
        return RouteMeter(self, method, route)

    # --- trustanchor.metrics.Metrics -------------------------------------------------------

    def token_issued(self, grant_type: str) -> None:
        self.tokens.labels(grant_type).inc()

    def decision(self, outcome: str, reason: str) -> None:
        self.decisions.labels(outcome, reason).inc()

    def login(self, anchor_kind: str, anchor_id: str, outcome: str) -> None:
        self.logins.labels(anchor_kind, anchor_id, outcome).inc()

    def fetch(self, source: str, outcome: str) -> None:
        self.fetches.labels(source, outcome).inc()

    # --- exposition ------------------------------------------------------------------------

    def exposition(self, services: Services) -> bytes:
        """The text format: :meth:`counted`, then the audit gauges read now."""
        audit = CollectorRegistry(auto_describe=False)
        audit.register(_Families(_audit_families(services)))
        return self.counted() + generate_latest(audit)

    def counted(self) -> bytes:
        """The counters and histograms in the text format: every worker's, added up
        (multiprocess mode), or this process's."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        return generate_latest(registry)


class RouteMeter:
    """One route's counter and histogram children bound once (the lean ``/token`` route): per
    request one dictionary read, one ``inc`` and one ``observe``."""

    __slots__ = ("_by_status", "_latency", "_method", "_metrics", "_route")

    def __init__(self, metrics: PrometheusMetrics, method: str, route: str) -> None:
        self._metrics = metrics
        self._method = method
        self._route = route
        self._latency = metrics.latency.labels(method, route)
        self._by_status: dict[int, Counter] = {}

    def observe(self, status: int, seconds: float) -> None:
        counter = self._by_status.get(status)
        if counter is None:
            counter = self._metrics.requests.labels(self._method, self._route, str(status))
            self._by_status[status] = counter
        counter.inc()
        self._latency.observe(seconds)


class _Families:
    """A collector of metric families computed beforehand (registered without describe)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _audit_families(services: Services) -> list[Metric]:
    try:
        state = readiness.audit_state(services)
    except Exception as exc:
        log.warning("metrics: the audit log could not be read (%s)", exc.__class__.__name__)
        return []
    now = services.clock.now()
    families: list[Metric] = [
        GaugeMetricFamily(
            "trustanchor_audit_tree_size",
            "Entries covered by the latest signed audit checkpoint",
            value=state.tree_size,
        )
    ]
    if state.checkpoint_at is not None:
        families.append(
            GaugeMetricFamily(
                "trustanchor_audit_checkpoint_age_seconds",
                "Seconds since the latest audit checkpoint was signed (an idle log signs none)",
                value=max(0, now - state.checkpoint_at),
            )
        )
    families.append(
        GaugeMetricFamily(
            "trustanchor_audit_pending_age_seconds",
            "Seconds the oldest entry not yet covered by a checkpoint has waited (0: none)",
            value=0 if state.oldest_pending_at is None else max(0, now - state.oldest_pending_at),
        )
    )
    return families


def metrics_for(services: Services) -> PrometheusMetrics | None:
    """The services' Prometheus metrics, attached on first use; None when metrics are off
    (``metrics.token`` empty). The Flask app and the lean route of one process share them."""
    if not services.settings.metrics.token:
        return None
    sink = services.metrics.sink
    if isinstance(sink, PrometheusMetrics):
        return sink
    prometheus = PrometheusMetrics(multiprocess_dir=os.environ.get(MULTIPROC_ENV) or None)
    services.metrics.sink = prometheus
    return prometheus


def route_meter(services: Services, method: str, route: str) -> RouteMeter | None:
    """A lean route's meter, or None when metrics are off."""
    prometheus = metrics_for(services)
    return None if prometheus is None else prometheus.meter(method, route)


def now() -> float:
    """The request timer: monotonic, not the service's protocol clock."""
    return time.perf_counter()
