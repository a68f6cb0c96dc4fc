"""``/healthz``, ``/readyz`` and ``/metrics`` over real HTTP (issue 14).

- readiness: ready on a working service; 503 naming the failed check when the database does
  not answer (a SQLite file in a directory that does not exist, a PostgreSQL port nobody
  listens on) and when an audit entry has waited for a checkpoint beyond ``audit.stall_after``
  (the injected clock moved on, no integrator running), ready again once it is integrated;
- metrics: after real requests (a whole code flow with a wallet login, client credentials, a
  refusal, a path no route has), the Prometheus text counts tokens by grant, requests by route
  template and status, logins by anchor; no client id, subject or path in any label;
- protection: 404 when ``metrics.token`` is empty (the default), 401 without the token, with
  another one or another scheme.

Two workers adding up under ``trustanchor serve`` are in test_metrics_serve.py.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support import templates
from support.clock import ShiftableClock
from support.ecosystem import Ecosystem
from support.payments import EU_HIGH, JP_HIGH, Bank, Holder, Payments, link, transfer
from support.rp import Pkce
from support.server import RunningServer, free_port, serving, test_settings
from support.stage import Stage

from trustanchor.bootstrap import initialise
from trustanchor.config import Settings
from trustanchor.services.container import Services, build_services
from trustanchor.storage.database import Database
from trustanchor.web.app import create_app
from trustanchor.web.metrics import PrometheusMetrics

TOKEN = "metrics-token-0123456789abcdef0123456789abcdef"
METRICS_ON = {"metrics": {"token": TOKEN}}
CLIENT, SECRET = "secret-client", "s3cret-value"
SECRET_CLIENTS = [
    {
        "client_id": CLIENT,
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": SECRET,
        "grant_types": ["client_credentials"],
    }
]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclasses.dataclass
class Served:
    server: RunningServer
    clock: ShiftableClock
    services: Services

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.server.url(path), timeout=10, **kwargs)


@contextmanager
def service_without_integrator(settings: Settings, *, services_for: Any = None) -> Iterator[Served]:
    """The app on werkzeug's server with no audit integrator (the test integrates), on a clock
    the test moves; ``services_for`` may swap parts of the services (another database)."""
    clock = ShiftableClock()
    templates.migrated(settings.service.database_url)
    db = Database(settings.service.database_url)
    initialise(settings, db, now=clock.now(), generate_keys=True)
    services = build_services(settings, clock=clock, db=db)
    if services_for is not None:
        services = services_for(services)
    app = create_app(services=services, audit_integrator=False)
    try:
        with serving(app, int(settings.issuer.rsplit(":", 1)[1])):
            yield Served(RunningServer(settings, services), clock, services)
    finally:
        db.dispose()


def _settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        clients=SECRET_CLIENTS,
        overrides=overrides or None,
    )


def _client_credentials(served: Served, secret: str = SECRET) -> requests.Response:
    return requests.post(
        served.server.url("/token"),
        data={"grant_type": "client_credentials"},
        auth=(CLIENT, secret),
        timeout=10,
    )


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _scrape(url: str) -> str:
    response = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    return response.text


# -- health and readiness ---------------------------------------------------------------------


def test_healthz_and_readyz_answer_on_a_working_service(tmp_path: Path, database_url: str) -> None:
    with service_without_integrator(_settings(tmp_path, database_url)) as served:
        health = served.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert health.headers["Cache-Control"] == "no-store"
        ready = served.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {
                "database": "ok",
                "signing_key": "ok",
                "audit_key": "ok",
                "audit_integrator": "ok",
            },
        }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_readyz_is_503_when_the_database_does_not_answer(
    tmp_path: Path, database_url: str, backend: str
) -> None:
    if backend == "sqlite":
        unreachable = f"sqlite:///{tmp_path / 'no-such-directory' / 'trustanchor.db'}"
    else:  # nothing listens on a free port
        unreachable = f"postgresql+psycopg://trustanchor@127.0.0.1:{free_port()}/test"

    def elsewhere(services: Services) -> Services:
        return dataclasses.replace(services, db=Database(unreachable))

    settings = _settings(tmp_path, database_url)
    with service_without_integrator(settings, services_for=elsewhere) as served:
        assert served.get("/healthz").status_code == 200  # the process is up
        ready = served.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "not_ready",
            "checks": {
                "database": "failed",
                "signing_key": "ok",
                "audit_key": "ok",
                "audit_integrator": "skipped",
            },
        }
        assert "127.0.0.1" not in ready.text and "sqlite" not in ready.text


def test_readyz_is_503_while_an_audit_entry_waits_beyond_the_bound(
    tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tmp_path, database_url, audit={"stall_after": 30})
    with service_without_integrator(settings) as served:
        served.services.audit.integrate_pending()  # what initialise recorded
        assert _client_credentials(served).status_code == 200  # one token_issued leaf waits
        # the clock is the wall clock plus the shift: a second may pass between the two
        served.clock.shift(20)
        assert served.get("/readyz").status_code == 200  # within the bound: not stalled
        served.clock.shift(20)
        stalled = served.get("/readyz")
        assert stalled.status_code == 503
        assert stalled.json()["checks"]["audit_integrator"] == "failed"
        assert [n for n, r in stalled.json()["checks"].items() if r != "ok"] == ["audit_integrator"]
        served.services.audit.integrate_pending()
        assert served.get("/readyz").status_code == 200


# -- metrics ------------------------------------------------------------------------------


def test_metrics_are_not_served_by_default(tmp_path: Path, database_url: str) -> None:
    with service_without_integrator(_settings(tmp_path, database_url)) as served:
        assert _client_credentials(served).status_code == 200
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            answer = served.get("/metrics", headers=headers)
            assert answer.status_code == 404
            assert answer.json() == {"error": "not_found"}


def test_metrics_need_the_token(tmp_path: Path, database_url: str) -> None:
    settings = _settings(tmp_path, database_url, **METRICS_ON)
    with service_without_integrator(settings) as served:
        for headers in (
            {},
            {"Authorization": "Bearer " + TOKEN[:-1] + "X"},
            {"Authorization": "Bearer " + TOKEN[:-1]},
            {"Authorization": "Basic " + TOKEN},
            {"Authorization": TOKEN},
        ):
            answer = served.get("/metrics", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="trustanchor-metrics"'
            assert TOKEN not in answer.text
        assert "trustanchor_http_requests_total" in _scrape(served.server.url("/metrics"))


def test_metrics_count_real_requests_without_personal_data(
    tmp_path: Path, database_url: str
) -> None:
    ecosystem = Ecosystem()
    with Stage.running(tmp_path, database_url, ecosystem, overrides=METRICS_ON) as stage:
        url = stage.server.url
        tokens = stage.tokens(stage.bank)  # a wallet login, consent, a code redeemed
        subject = _claims(tokens["id_token"])["sub"]
        for _ in range(2):
            granted = requests.post(
                url("/token"),
                data=[("grant_type", "client_credentials"), *stage.shop.credentials()],
                timeout=10,
            )
            assert granted.status_code == 200, granted.text
        refused = requests.post(
            url("/token"),
            data={"grant_type": "client_credentials", "client_id": "nobody"},
            timeout=10,
        )
        assert refused.status_code == 401
        assert requests.get(url("/no/such/path"), timeout=10).status_code == 404
        text = _scrape(url("/metrics"))
        samples = _samples(text)
        routes = {
            rule.rule for rule in create_app(services=stage.server.services).url_map.iter_rules()
        }

    issued = "trustanchor_tokens_issued_total"
    assert _value(samples, issued, grant_type="authorization_code") == 1
    assert _value(samples, issued, grant_type="client_credentials") == 2
    requests_total = "trustanchor_http_requests_total"
    assert _value(samples, requests_total, method="POST", route="/token", status="200") == 3
    assert _value(samples, requests_total, method="POST", route="/token", status="401") == 1
    assert _value(samples, requests_total, method="GET", route="unmatched", status="404") == 1
    assert _value(samples, requests_total, method="POST", route="/par", status="201") == 1
    latency = "trustanchor_http_request_duration_seconds_count"
    assert _value(samples, latency, method="POST", route="/token") == 4
    logins = "trustanchor_logins_total"
    anchor = {"anchor_kind": "sd_jwt_vc", "anchor": ecosystem.anchor_id}
    assert _value(samples, logins, **anchor, outcome="ok") == 1
    assert _value(samples, "trustanchor_audit_tree_size") >= 0
    assert ("trustanchor_audit_pending_age_seconds", ()) in samples
    # the login's interaction pages are counted under their route templates
    seen = {dict(labels).get("route") for (name, labels) in samples if name == requests_total}
    assert "/interaction/<interaction_id>" in seen
    assert seen <= routes | {"unmatched"}
    # no client id, subject or path sent in any label
    values = {value for (_, labels) in samples for _, value in labels}
    for personal in (stage.bank.client_id, stage.shop.client_id, "nobody", subject):
        assert personal not in values
        assert f'"{personal}"' not in text
    assert "/no/such/path" not in text


def _claims(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def test_decisions_and_logins_are_counted_by_outcome_reason_and_anchor(
    payment_server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Issue 4's payments: two links allowed, a transfer across anchor sets denied by policy.
    The Prometheus metrics are attached to the running services as the web layer does."""
    prometheus = PrometheusMetrics()
    payment_server.services.metrics.sink = prometheus
    linked = {}
    for subject, anchor in (("taro", JP_HIGH), ("pierre", EU_HIGH)):
        person = Holder(payment_server, payments, subject)
        deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
        wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
        pkce = Pkce.generate()
        consent = person.log_in(
            person.open(bank.authorization_url([link(deposit, wallet)], pkce)), anchor
        )
        bank.redeem(person.decide(consent, "approve")["code"], pkce)
        linked[subject] = (person, wallet)
    taro, taro_wallet = linked["taro"]
    pkce = Pkce.generate()
    across = transfer(taro_wallet, linked["pierre"][1], "5000")
    consent = taro.open(bank.authorization_url([across], pkce))
    assert taro.decide(consent, "deny")["error"] == "access_denied"

    registry = prometheus.registry
    decisions = "trustanchor_policy_decisions_total"
    assert registry.get_sample_value(decisions, {"outcome": "allowed", "reason": "allowed"}) == 2
    denied = {"outcome": "denied", "reason": "no_common_anchor_set"}
    assert registry.get_sample_value(decisions, denied) == 1
    logins = "trustanchor_logins_total"
    for anchor in (JP_HIGH, EU_HIGH):
        ok = {"anchor_kind": "sd_jwt_vc", "anchor": anchor, "outcome": "ok"}
        assert registry.get_sample_value(logins, ok) == 1
    issued = "trustanchor_tokens_issued_total"
    assert registry.get_sample_value(issued, {"grant_type": "authorization_code"}) == 2
    text = prometheus.exposition(payment_server.services).decode()
    for personal in ("taro", "pierre", bank.party.client_id):  # subjects, accounts, client
        assert f'"{personal}' not in text
