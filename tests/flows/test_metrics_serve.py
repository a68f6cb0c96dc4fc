"""``/metrics`` under ``trustanchor serve --workers 2`` (issue 14): each worker counts in files
of its own in the run's ``PROMETHEUS_MULTIPROC_DIR``, and every scrape, whichever worker answers
it, adds up both workers' counts.

The requests are sent from several threads at once until both workers have answered some (the
kernel hands connections to whichever worker accepts first); each worker's own share is read
from its files alone, with prometheus_client's collector over a copy of them."""

from __future__ import annotations

import base64
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from support.service_process import running_service

TOKEN = "metrics-token-0123456789abcdef0123456789abcdef"
CLIENT, SECRET = "secret-client", "s3cret-value"
CLIENTS = [
    {
        "client_id": CLIENT,
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": SECRET,
        "grant_types": ["client_credentials"],
    }
]
BASIC = "Basic " + base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
ISSUED = "trustanchor_tokens_issued_total"
REQUESTS = "trustanchor_http_requests_total"


def _issued(text: str) -> tuple[float, float]:
    """(tokens issued by client_credentials, POST /token answered 200) in a scrape."""
    issued = answered = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == ISSUED and sample.labels == {"grant_type": "client_credentials"}:
                issued = sample.value
            if sample.name == REQUESTS and sample.labels == {
                "method": "POST",
                "route": "/token",
                "status": "200",
            }:
                answered = sample.value
    return issued, answered


def _per_worker(directory: Path, scratch: Path) -> dict[int, tuple[float, float]]:
    """Each worker's own counts, from its files alone (``<kind>_<pid>.db``)."""
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("*_*.db")}
    counts = {}
    for pid in pids:
        alone = scratch / str(pid)
        alone.mkdir(parents=True)
        for path in directory.glob(f"*_{pid}.db"):
            shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts[pid] = _issued(generate_latest(registry).decode())
    return counts


def _token(url: str) -> int:
    answer = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": BASIC, "Connection": "close"},
        timeout=30,
    )
    return answer.status_code


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_workers_add_up(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_tmp = tmp_path / "tmp"
    run_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(run_tmp))  # where serve makes the run's metrics directory
    with running_service(
        tmp_path / "service",
        database_url=database_url,
        clients=CLIENTS,
        workers=2,
        overrides={"metrics": {"token": TOKEN}},
    ) as service:
        [directory] = run_tmp.glob("trustanchor-metrics-*")
        sent = 0
        with ThreadPoolExecutor(8) as pool:
            for _ in range(10):
                statuses = list(pool.map(_token, [service.url("/token")] * 16))
                assert statuses == [200] * 16
                sent += 16
                workers = _per_worker(directory, tmp_path / f"scratch-{sent}")
                if len([c for c in workers.values() if c[0] > 0]) == 2:
                    break
        assert len([c for c in workers.values() if c[0] > 0]) == 2, workers
        assert sum(c[0] for c in workers.values()) == sent
        assert sum(c[1] for c in workers.values()) == sent
        for _ in range(6):  # whichever worker answers the scrape: the sum of both
            scrape = requests.get(
                service.url("/metrics"),
                headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
                timeout=30,
            )
            assert scrape.status_code == 200, scrape.text
            assert _issued(scrape.text) == (sent, sent)
        assert requests.get(service.url("/metrics"), timeout=30).status_code == 401
