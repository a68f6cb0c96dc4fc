"""README's "PAR only" paragraph (issue 14) is true: discovery says it supports neither request
parameter, requires PAR, and /authorize takes a PAR request_uri only (RFC 9126 section 5): a
request_uri the client hosts and a request object by value are refused without a redirect."""

from __future__ import annotations

from pathlib import Path

import requests
from support.rp import Pkce
from support.stage import Stage

REPO = Path(__file__).resolve().parents[2]


def test_discovery_and_authorize_are_as_the_readme_says(stage: Stage) -> None:
    meta = requests.get(stage.server.url("/.well-known/openid-configuration"), timeout=10).json()
    assert meta["require_pushed_authorization_requests"] is True
    assert meta["request_uri_parameter_supported"] is False
    assert meta["request_parameter_supported"] is False
    assert meta["pushed_authorization_request_endpoint"] == stage.server.url("/par")

    hosted = requests.get(
        stage.server.url("/authorize"),
        params={"client_id": "bank", "request_uri": "https://bank.example/request.jwt"},
        allow_redirects=False,
        timeout=10,
    )
    by_value = requests.get(
        stage.server.url("/authorize"),
        params={"client_id": "bank", "request": "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
        allow_redirects=False,
        timeout=10,
    )
    for refused in (hosted, by_value):
        assert refused.status_code == 400
        assert "Location" not in refused.headers
    pushed = stage.bank.request_uri(Pkce.generate())
    assert pushed.startswith("urn:ietf:params:oauth:request_uri:")
    opened = requests.get(stage.bank.authorization_url(pushed), allow_redirects=False, timeout=10)
    assert opened.status_code in (200, 302, 303)

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`request_uri_parameter_supported: false`" in readme
    assert "RFC 9126 §5" in readme
