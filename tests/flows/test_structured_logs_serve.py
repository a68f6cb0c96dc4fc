"""Issue 14: ``trustanchor serve`` with ``logging.format = "json"`` writes nothing but JSON lines
(its own start-up, Alembic's migration lines, granian's main process and workers, the app's),
and the lines written while a request is handled carry the id its answer carried in
``X-Request-Id``, on the lean ``/token`` route and on Flask's routes alike."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from support.service_process import running_service

GIVEN = "it-14.serve_given"
CLIENTS = [
    {
        "client_id": "secret-client",
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": "s3cret-value-of-a-client",
        "grant_types": ["client_credentials"],
    }
]


def _lines(text: str) -> list[dict[str, Any]]:
    parsed = []
    for raw in text.splitlines():
        if not raw.strip():
            continue
        line = json.loads(raw)  # every line, or the test fails here naming it
        assert isinstance(line, dict), raw
        assert {"time", "level", "logger", "message", "request_id"} <= set(line), raw
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), raw
        parsed.append(line)
    return parsed


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_serve_writes_json_lines_with_the_request_ids(tmp_path: Path, database_url: str) -> None:
    with running_service(
        tmp_path,
        database_url=database_url,
        clients=CLIENTS,
        workers=2,
        overrides={"logging": {"format": "json", "level": "debug"}},
    ) as service:
        form = {"grant_type": "client_credentials", "client_id": "nobody"}
        lean = requests.post(
            service.url("/token"), data=form, headers={"X-Request-Id": GIVEN}, timeout=10
        )
        assert lean.status_code == 401 and lean.headers["X-Request-Id"] == GIVEN
        flask = requests.get(
            service.url("/userinfo"),
            headers={"Authorization": "Bearer not-a-token", "X-Request-Id": "bad id!"},
            timeout=10,
        )
        assert flask.status_code == 401
        generated = flask.headers["X-Request-Id"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", generated)
        page = requests.get(service.url("/"), timeout=10)
        assert page.headers["X-Request-Id"] not in (GIVEN, generated)
        deadline = time.monotonic() + 10
        while "refused GET /userinfo" not in service.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = _lines(service.log())
    by_logger = {line["logger"] for line in lines}
    assert "_granian" in by_logger  # granian's own lines (main process and workers)
    assert "alembic.runtime.migration" in by_logger  # the migrations at start
    assert "trustanchor.cli" in by_logger  # serve's own start-up lines
    assert any("Spawning worker-2" in line["message"] for line in lines)
    # service.event_loop "auto": uvloop, a dependency of trustanchor (cli/lifecycle.py)
    assert any(line["message"].endswith("(uvloop event loop)") for line in lines)
    [token] = [line for line in lines if line["message"].startswith("refused POST /token")]
    assert token["request_id"] == GIVEN and token["level"] == "INFO"
    [userinfo] = [line for line in lines if line["message"].startswith("refused GET /userinfo")]
    assert userinfo["request_id"] == generated
    assert all(line["request_id"] is None for line in lines if line["logger"] == "_granian")
    assert not any("not-a-token" in json.dumps(line) for line in lines)
