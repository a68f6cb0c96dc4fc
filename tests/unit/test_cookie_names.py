"""The cookies that say who a browser is carry the ``__Host-`` prefix on https issuers, so no
sibling subdomain and no http page of the host can plant them (a planted SSO session would log
the victim in as the attacker: session fixation, attack session of 2026-12-07)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from trustanchor.web import cookies


def _services(issuer: str) -> Any:
    return SimpleNamespace(settings=SimpleNamespace(issuer=issuer))


@pytest.mark.parametrize(
    ("issuer", "session", "binding"),
    [
        ("https://login.example.jp", "__Host-ta_session", "__Host-ta_interaction"),
        ("http://127.0.0.1:8000", "ta_session", "ta_interaction"),
    ],
)
def test_names_by_scheme(issuer: str, session: str, binding: str) -> None:
    services = _services(issuer)
    assert cookies.session_cookie(services) == session
    assert cookies.interaction_cookie(services) == binding


def test_on_https_only_the_prefixed_session_cookie_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    services = _services("https://login.example.jp")
    monkeypatch.setattr(cookies, "current_services", lambda: services)
    app = Flask(__name__)
    planted = {"HTTP_COOKIE": "ta_session=planted; ta_interaction=planted"}
    with app.test_request_context("/", environ_base=planted):
        assert cookies.sso_session_id() is None
        assert cookies.browser_secret() is None
    own = {"HTTP_COOKIE": "__Host-ta_session=mine; __Host-ta_interaction=ours"}
    with app.test_request_context("/", environ_base=own):
        assert cookies.sso_session_id() == "mine"
        assert cookies.browser_secret() == "ours"
