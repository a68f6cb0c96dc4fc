"""``trustanchor serve`` (granian, trustanchor.web.asgi:app) with ``service.lean_token_endpoint``
on and off: the same /token requests get the same answers, so asgi.py wires the lean route with
the app's own security headers and integrator (tests/flows/test_token_stacks.py compares the two
stacks request by request in process)."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from support.service_process import running_service

FORM = b"application/x-www-form-urlencoded"
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
VARYING = {"date", "server", "content-length", "dpop-nonce", "x-request-id"}


def _request(port: int, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + head
            + b"\r\n"
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header_block, _, content = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, content


def _requests(port: int) -> list[tuple[int, dict[str, str], bytes]]:
    basic = base64.b64encode(f"{CLIENT}:{SECRET}".encode()).decode()
    grant = b"grant_type=client_credentials"
    sent = [
        (b"Content-Type: %s\r\nAuthorization: Basic %s\r\n" % (FORM, basic.encode()), grant),
        (b"Content-Type: %s\r\n" % FORM, grant + b"&client_id=nobody"),
        (b"Content-Type: application/json\r\n", b"{}"),
        (b"Content-Type: %s\r\n" % FORM, grant + b"&scope=%00"),
        (b"Content-Type: %s\r\nContent-Length: 10000000\r\n" % FORM, b""),
    ]
    answers = []
    for head, body in sent:
        if b"Content-Length" not in head:
            head += b"Content-Length: %d\r\n" % len(body)
        status, headers, content = _request(port, head, body)
        assert headers["x-request-id"]  # a new one per request (no X-Request-Id sent)
        if status == 200:
            content = b"<grant>" if b'"access_token"' in content else content
        answers.append((status, {k: v for k, v in headers.items() if k not in VARYING}, content))
    return answers


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_serve_answers_token_alike_with_and_without_the_lean_route(
    tmp_path: Path, database_url: str
) -> None:
    answers = {}
    for lean in (False, True):
        with running_service(
            tmp_path / f"lean-{lean}",
            database_url=database_url,
            clients=CLIENTS,
            workers=1,
            overrides={"service": {"lean_token_endpoint": lean}},
        ) as service:
            port = int(service.url("/").rsplit(":", 1)[1].strip("/"))
            answers[lean] = _requests(port)
    assert [a[0] for a in answers[True]] == [200, 401, 400, 400, 413]
    assert answers[True] == answers[False]
