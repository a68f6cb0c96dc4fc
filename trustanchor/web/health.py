"""``/healthz``, ``/readyz`` and ``/metrics`` (issue 14), and the Flask stack's request metrics.

- ``/healthz``: the process answers (no database, nothing else): 200 ``{"status": "ok"}``.
- ``/readyz``: :func:`trustanchor.services.readiness.readiness`: 200 when every check passes,
  else 503; the body names each check's result (``ok``, ``failed``, ``skipped``), nothing more.
- ``/metrics``: the Prometheus text (``trustanchor.web.metrics``) for a request bearing
  ``Authorization: Bearer <metrics.token>`` (compared in constant time); 401 without it or with
  another token; 404 when ``metrics.token`` is empty (metrics off, the default).

All three answer ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from trustanchor.digests import equal
from trustanchor.services import readiness
from trustanchor.services.container import Services
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.metrics import CONTENT_TYPE, UNMATCHED, PrometheusMetrics, metrics_for, now

blueprint = Blueprint("health", __name__)
blueprint.after_request(no_store)

_REALM = 'Bearer realm="trustanchor-metrics"'


@blueprint.get("/healthz")
def healthz() -> Any:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Any:
    result = readiness.readiness(current_services())
    response = jsonify(
        {"status": "ready" if result.ready else "not_ready", "checks": result.checks}
    )
    response.status_code = 200 if result.ready else 503
    return response


@blueprint.get("/metrics")
def metrics() -> Any:
    services = current_services()
    prometheus = metrics_for(services)
    if prometheus is None:
        response = jsonify({"error": "not_found"})
        response.status_code = 404
        return response
    if not _bearer_matches(request.headers.get("Authorization", ""), services):
        response = jsonify({"error": "unauthorized"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = _REALM
        return response
    return Response(prometheus.exposition(services), status=200, content_type=CONTENT_TYPE)


def _bearer_matches(authorization: str, services: Services) -> bool:
    scheme, _, token = authorization.partition(" ")
    # Compared whatever the scheme, so that the time taken says nothing about the token.
    matches = equal(token.strip(), services.settings.metrics.token)
    return scheme.lower() == "bearer" and matches


def install(app: Flask, services: Services) -> None:
    """Count and time every request the Flask app answers (when metrics are on): the timer
    starts before every other ``before_request`` and stops after every other
    ``after_request`` (error answers included: Flask runs them for those too)."""
    prometheus = metrics_for(services)
    if prometheus is None:
        return

    def start() -> None:
        g.metrics_started = now()

    def observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            _observe(prometheus, response.status_code, now() - started)
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request_funcs.setdefault(None, []).insert(0, observe)  # run in reverse: last


def _observe(prometheus: PrometheusMetrics, status: int, seconds: float) -> None:
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    prometheus.request(request.method, route, status, seconds)
