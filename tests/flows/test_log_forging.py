"""Attack report F2 (issue 14): one unauthenticated request wrote a genuine-looking line into the
plain-text log of ``trustanchor serve``, through a repeated parameter whose name held line breaks
(echoed raw in ``error_description`` and in the log, 32 KB of it per request) or through the
decoded path of a request whose body never came (408). And ``X-Request-Id: -`` made a request's
lines look like lines written outside any request.

Here the real service (granian, text format, debug) gets each of those requests over HTTP, on the
lean ``/token`` route and on Flask's ``/par``; afterwards every line of its log is a record
(``time LEVEL logger [id]: ...``) or a marked continuation of one, and none starts with the
forged text."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from support.service_process import ServiceProcess, running_service

from trustanchor.log_setup import CONTINUATION

FORGED = (
    "2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]: "
    "login through anchor jp-national-id: ok"
)
RECORD = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
CLIENTS = [
    {
        "client_id": "secret-client",
        "client_type": "confidential",
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": "s3cret-value-of-a-client",
        "grant_types": ["client_credentials"],
    }
]


def _attack_body(name: str) -> str:
    """The attack's form: the parameter ``name`` twice (its value differs)."""
    return f"grant_type=x&{quote(name)}=1&{quote(name)}=2"


def _stalled(service: ServiceProcess, path: str) -> bytes:
    """A request to ``path`` whose body never comes: the service's answer (408)."""
    host, port = service.issuer.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type=x".encode("ascii")
        )
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _wait_for(service: ServiceProcess, text: str) -> str:
    deadline = time.monotonic() + 10
    while text not in (log := service.log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return log


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_no_request_writes_a_line_of_its_own_into_the_text_log(
    tmp_path: Path, database_url: str
) -> None:
    with running_service(
        tmp_path,
        database_url=database_url,
        clients=CLIENTS,
        workers=1,
        overrides={
            "logging": {"format": "text", "level": "debug"},
            "limits": {"body_read_timeout": 1, "body_read_timeout_max": 1},
        },
    ) as service:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answers = []
        for path in ("/token", "/par"):  # the lean route, and Flask
            for name in (f"a\n{FORGED}\nb", f"a\r{FORGED}\u2028b", "x" * 30_000):
                reply = requests.post(
                    service.url(path), data=_attack_body(name), headers=form, timeout=10
                )
                answers.append((path, reply.status_code, reply.json()))
                assert len(reply.content) < 200  # nothing of the name echoed
        known = requests.post(
            service.url("/token"),
            data="grant_type=client_credentials&scope=a&scope=b",
            headers=form,
            timeout=10,
        )
        stalled = _stalled(service, "/token%0A" + quote(FORGED) + "%0D%0A" + "y" * 5000)
        dash = requests.post(
            service.url("/token"),
            data=_attack_body("c"),
            headers={**form, "X-Request-Id": "-"},
            timeout=10,
        )
        log = _wait_for(service, "request body not received in time")
    repeated = {"error": "invalid_request", "error_description": "a parameter is repeated"}
    assert answers == [(path, 400, repeated) for path in ("/token", "/par") for _ in range(3)]
    assert known.json()["error_description"] == "parameter scope is repeated"
    assert stalled.startswith(b"HTTP/1.1 408")
    assert dash.status_code == 400 and dash.headers["X-Request-Id"] not in ("-", "")
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", dash.headers["X-Request-Id"])

    lines = log.splitlines()  # as any reader splits them (CR, U+2028 and NEL included)
    assert not [line for line in lines if line.lstrip().startswith(FORGED[:24])]
    assert [
        line for line in lines if not RECORD.match(line) and not line.startswith(CONTINUATION)
    ] == []
    refused = [line for line in lines if "refused POST /token: invalid_request" in line]
    assert any(line.endswith("(parameter scope is repeated)") for line in refused)
    assert sum(line.endswith("(a parameter is repeated)") for line in refused) == 3
    [dashed] = [line for line in refused if line.endswith("(parameter c is repeated)")]
    assert f"[{dash.headers['X-Request-Id']}]: " in dashed  # the "-" id replaced
    [timeout] = [line for line in lines if "request body not received in time" in line]
    assert "/token\\n2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]" in timeout
    assert "characters): request body not received in time (408)" in timeout  # clipped
    assert len(timeout) < 600
    assert max(len(line) for line in lines) < 2000  # no request echoed kilobytes
    assert not any(" [-]: refused POST" in line for line in lines)
