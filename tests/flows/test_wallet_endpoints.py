"""The wallet-facing endpoints of OpenID4VP over real HTTP: the request object by reference, the
direct_post response endpoint (malformed input, replays, wallet-declared errors), a suspended
anchor, and the same-device return with its one-time response_code."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jws
from joserfc.jwk import KeySet
from support.credentials import Wallet
from support.ecosystem import CREDENTIAL_ID, Browser, Ecosystem
from support.html import parse
from support.server import RunningServer
from test_login_interaction import (
    Login,
    WalletPage,
    fetch_request,
    is_consent_page,
    is_login_page,
    open_wallet,
    post_presentation,
    post_response,
    presentation,
    start,
    status,
    wallet_login,
)


def _at_qr_page(server: RunningServer, ecosystem: Ecosystem) -> tuple[Login, WalletPage]:
    login = start(server, ecosystem)
    return login, open_wallet(login, ecosystem.anchor_id)


def _ready(server: RunningServer, ecosystem: Ecosystem) -> tuple[Login, dict[str, Any]]:
    """An interaction whose QR code the phone has read: the request object's claims."""
    login, wallet_page = _at_qr_page(server, ecosystem)
    return login, fetch_request(server, wallet_page.request_uri)


def _refusal(answer: requests.Response, status_code: int = 400) -> dict[str, Any]:
    assert answer.status_code == status_code, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = answer.json()
    return body


def _now_at_login_page(server: RunningServer, login: Login) -> requests.Response:
    page = login.browser.get(server.url(login.path))
    assert is_login_page(page)
    return page


# ---------------------------------------------------------------------------- replays


def test_a_presentation_is_accepted_once(server: RunningServer, ecosystem: Ecosystem) -> None:
    login, request = _ready(server, ecosystem)
    vp = presentation(ecosystem, request)
    assert post_presentation(request, vp).status_code == 200
    again = _refusal(post_presentation(request, vp))
    assert again == {
        "error": "invalid_request",
        "error_description": "unknown, expired or already used state",
    }
    assert is_consent_page(login.browser.get(server.url(login.path)))


def test_a_refused_response_uses_up_the_transaction(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, request = _ready(server, ecosystem)
    wrong = presentation(ecosystem, request, nonce="x" * 32)
    assert _refusal(post_presentation(request, wrong))["error_description"] == "kb_nonce_mismatch"
    right = presentation(ecosystem, request)
    assert _refusal(post_presentation(request, right))["error_description"] == (
        "unknown, expired or already used state"
    )
    assert status(login, server) == {"done": True, "state": "failed"}
    _now_at_login_page(server, login)


def test_a_presentation_made_for_one_transaction_fails_at_another(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    victim, request_a = _ready(server, ecosystem)
    attacker, request_b = _ready(server, ecosystem)
    vp_for_a = presentation(ecosystem, request_a)
    moved = post_presentation({**request_a, "state": request_b["state"]}, vp_for_a)
    assert _refusal(moved)["error_description"] == "kb_nonce_mismatch"
    assert status(attacker, server) == {"done": True, "state": "failed"}
    # Transaction A itself was not touched.
    assert status(victim, server) == {"done": False, "state": "login"}
    assert post_presentation(request_a, vp_for_a).status_code == 200


# ---------------------------------------------------------------------------- suspended anchor


def _suspend(server: RunningServer, anchor_id: str) -> None:
    server.services.anchors.set_status(anchor_id, "suspended", server.services.clock.now())


def test_anchor_suspended_after_the_qr_page_refuses_the_request_object(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, wallet_page = _at_qr_page(server, ecosystem)
    _suspend(server, ecosystem.anchor_id)
    refused = _refusal(requests.get(wallet_page.request_uri, timeout=10), 404)
    assert refused == {"error": "invalid_request_uri", "error_description": "anchor_suspended"}
    assert status(login, server) == {"done": True, "state": "failed"}
    page = _now_at_login_page(server, login)
    assert "this trust anchor is suspended at the moment" in page.text
    # No longer offered.
    assert "National ID (test)" not in page.text
    assert "No trust anchor can satisfy this request at the moment" in page.text


def test_anchor_suspended_before_the_presentation_refuses_it(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, request = _ready(server, ecosystem)
    _suspend(server, ecosystem.anchor_id)
    answer = post_presentation(request, presentation(ecosystem, request))
    assert _refusal(answer) == {
        "error": "invalid_request",
        "error_description": "anchor_suspended",
    }
    assert "this trust anchor is suspended" in _now_at_login_page(server, login).text


def test_choosing_an_anchor_suspended_meanwhile_returns_to_the_list(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    _suspend(server, ecosystem.anchor_id)
    chosen = login.browser.submit(login.page.text, "/wallet", anchor=ecosystem.anchor_id)
    assert chosen.status_code == 303
    assert chosen.headers["Location"] == login.path
    page = _now_at_login_page(server, login)
    assert "National ID (test)" not in page.text


def test_the_qr_page_of_a_suspended_anchor_returns_to_the_list(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, wallet_page = _at_qr_page(server, ecosystem)
    _suspend(server, ecosystem.anchor_id)
    again = login.browser.get(wallet_page.page.url)
    assert again.status_code == 303
    assert again.headers["Location"] == login.path


# ---------------------------------------------------------------------------- request object


def test_unknown_transaction_has_no_request_object(server: RunningServer) -> None:
    for method in ("GET", "POST"):
        answer = requests.request(method, server.url("/wallet/request/no-such-tx"), timeout=10)
        assert _refusal(answer, 404)["error"] == "invalid_request_uri"


def test_request_object_is_a_signed_uncached_jar(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    _login, wallet_page = _at_qr_page(server, ecosystem)
    answer = requests.get(wallet_page.request_uri, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/oauth-authz-req+jwt"
    assert answer.headers["Cache-Control"] == "no-store"
    jwks = KeySet.import_key_set(requests.get(server.url("/jwks"), timeout=10).json())
    token = jws.deserialize_compact(answer.text, jwks, algorithms=["ES256"])
    assert token.headers()["typ"] == "oauth-authz-req+jwt"
    claims = json.loads(token.payload)
    query = parse_qs(urlsplit(wallet_page.link).query)
    assert claims["client_id"] == query["client_id"][0]
    assert claims["response_type"] == "vp_token"
    assert claims["response_mode"] == "direct_post"
    assert claims["response_uri"] == server.url("/wallet/response")
    assert claims["state"] == wallet_page.transaction_id
    assert len(claims["nonce"]) >= 22
    assert claims["exp"] > claims["iat"]


def test_request_object_post_echoes_wallet_nonce(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    _login, wallet_page = _at_qr_page(server, ecosystem)
    answer = requests.post(
        wallet_page.request_uri, data={"wallet_nonce": "qPmxiNFCR3QTm19POc8u"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/oauth-authz-req+jwt"
    jwks = KeySet.import_key_set(requests.get(server.url("/jwks"), timeout=10).json())
    claims = json.loads(jws.deserialize_compact(answer.text, jwks, algorithms=["ES256"]).payload)
    assert claims["wallet_nonce"] == "qPmxiNFCR3QTm19POc8u"
    repeated = requests.post(
        wallet_page.request_uri, data=[("wallet_nonce", "a"), ("wallet_nonce", "b")], timeout=10
    )
    assert _refusal(repeated)["error"] == "invalid_request"


def test_no_request_object_once_the_login_is_finished(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, wallet_page = _at_qr_page(server, ecosystem)
    request = fetch_request(server, wallet_page.request_uri)
    assert post_presentation(request, presentation(ecosystem, request)).status_code == 200
    assert _refusal(requests.get(wallet_page.request_uri, timeout=10), 404)["error"] == (
        "invalid_request_uri"
    )
    del login


# ---------------------------------------------------------------------------- response endpoint


def _vp_token(value: Any) -> str:
    return json.dumps({CREDENTIAL_ID: value})


# (form builder given the request and a valid presentation, expected error_description,
#  whether the transaction is used up by it)
MALFORMED = [
    pytest.param(
        lambda r, vp: {"vp_token": "{not json", "state": r["state"]},
        "vp_token_not_json",
        True,
        id="vp-token-not-json",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": json.dumps([vp]), "state": r["state"]},
        "vp_token_not_object",
        True,
        id="vp-token-array",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": json.dumps({"other": [vp]}), "state": r["state"]},
        "missing_credential",
        True,
        id="vp-token-other-credential",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token(vp), "state": r["state"]},
        "presentations_not_array",
        True,
        id="vp-token-bare-string",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token([vp, vp]), "state": r["state"]},
        "multiple_presentations",
        True,
        id="two-presentations",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token([{"jwt": vp}]), "state": r["state"]},
        "presentation_not_string",
        True,
        id="presentation-object",
    ),
    pytest.param(
        lambda r, vp: {"state": r["state"]},
        "missing_vp_token",
        True,
        id="nothing-but-state",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token([vp])},
        "missing_state",
        False,
        id="missing-state",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token([vp]), "state": "A" * 32},
        "unknown, expired or already used state",
        False,
        id="unknown-state",
    ),
    pytest.param(
        lambda r, vp: [("vp_token", _vp_token([vp])), ("state", r["state"]), ("state", "B" * 32)],
        "repeated_parameter",
        False,
        id="repeated-state",
    ),
    pytest.param(
        lambda r, vp: [
            ("vp_token", _vp_token([vp])),
            ("vp_token", _vp_token([vp])),
            ("state", r["state"]),
        ],
        "repeated_parameter",
        True,
        id="repeated-vp-token",
    ),
    pytest.param(
        lambda r, vp: {"vp_token": _vp_token([vp]), "state": "<script>"},
        "invalid_state",
        False,
        id="state-with-markup",
    ),
]


@pytest.mark.parametrize(("form", "reason", "uses_up"), MALFORMED)
def test_malformed_wallet_responses_are_400_json(
    server: RunningServer, ecosystem: Ecosystem, form: Any, reason: str, uses_up: bool
) -> None:
    login, request = _ready(server, ecosystem)
    vp = presentation(ecosystem, request)
    answer = post_response(request["response_uri"], form(request, vp))
    assert _refusal(answer) == {"error": "invalid_request", "error_description": reason}
    if uses_up:
        # The first response consumed the transaction; the person reads why on the login page.
        assert status(login, server) == {"done": True, "state": "failed"}
        assert (
            "the wallet&#39;s answer was not understood" in _now_at_login_page(server, login).text
        )
        assert post_presentation(request, vp).status_code == 400
    else:
        assert status(login, server) == {"done": False, "state": "login"}
        assert post_presentation(request, vp).status_code == 200


def test_a_json_body_is_refused(server: RunningServer, ecosystem: Ecosystem) -> None:
    _login, request = _ready(server, ecosystem)
    vp = presentation(ecosystem, request)
    answer = post_response(
        request["response_uri"], None, json={"vp_token": {CREDENTIAL_ID: [vp]}, "state": "x"}
    )
    assert _refusal(answer) == {
        "error": "invalid_request",
        "error_description": "form body expected",
    }


def test_wallet_declared_error_is_acknowledged_and_shown(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, request = _ready(server, ecosystem)
    answer = post_response(
        request["response_uri"],
        {"error": "access_denied", "error_description": "user declined", "state": request["state"]},
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json() == {}
    assert status(login, server) == {"done": True, "state": "failed"}
    page = _now_at_login_page(server, login)
    assert "Your credential was not accepted: you declined to share it in your wallet" in page.text
    page_ja = login.browser.get(server.url(login.path + "?lang=ja"))
    assert "ウォレットで共有を断りました" in page_ja.text


# ---------------------------------------------------------------------------- same-device return


def _presented(server: RunningServer, ecosystem: Ecosystem) -> tuple[Login, str]:
    login, request = _ready(server, ecosystem)
    answer = post_presentation(request, presentation(ecosystem, request))
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    redirect_uri: str = answer.json()["redirect_uri"]
    assert redirect_uri.startswith(server.url(f"/wallet/done/{request['state']}?response_code="))
    return login, redirect_uri


def test_same_device_return_resumes_the_login_once(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, redirect_uri = _presented(server, ecosystem)
    back = login.browser.get(redirect_uri)
    assert back.status_code == 303
    assert back.headers["Location"] == login.path
    assert is_consent_page(login.browser.follow(back))
    used = login.browser.get(redirect_uri)
    assert used.status_code == 400
    assert "This link from your wallet has expired or was already used" in used.text


def test_same_device_return_in_another_browser_says_continue_elsewhere(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, redirect_uri = _presented(server, ecosystem)
    phone_browser = Browser(server)
    elsewhere = phone_browser.follow(phone_browser.get(redirect_uri))
    assert elsewhere.status_code == 200 and elsewhere.url == server.url("/wallet/elsewhere")
    assert "Continue on the device where you started" in elsewhere.text
    assert login.interaction_id not in elsewhere.text
    # The link is used up: forwarded to the browser that showed the QR code (perhaps an
    # attacker's, who relayed it), it makes nothing local. That browser goes on by its poll.
    assert login.browser.get(redirect_uri).status_code == 400
    assert status(login, server) == {"done": True, "state": "consent"}
    assert is_consent_page(login.browser.get(server.url(login.path)))


def test_same_device_return_needs_the_response_code(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, redirect_uri = _presented(server, ecosystem)
    bare = redirect_uri.split("?")[0]
    for url in (bare, bare + "?response_code=" + "A" * 43, redirect_uri + "&response_code=x"):
        refused = login.browser.get(url)
        assert refused.status_code == 400, url
        assert "Location" not in refused.headers
    # Cross-device: the browser's poll still moves on without the code.
    assert status(login, server) == {"done": True, "state": "consent"}
    assert is_consent_page(login.browser.get(server.url(login.path)))


def test_a_failed_presentation_has_no_return_link(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login, request = _ready(server, ecosystem)
    answer = post_presentation(request, presentation(ecosystem, request, nonce="z" * 32))
    assert "redirect_uri" not in _refusal(answer)
    done = login.browser.get(server.url(f"/wallet/done/{request['state']}"))
    assert done.status_code == 400


def test_full_login_then_consent_page_names_the_anchor(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    login = start(server, ecosystem)
    consent = wallet_login(server, ecosystem, login, wallet=Wallet.generate())
    assert "You were verified by National ID (test)" in consent.text
    assert parse(consent.text).form_with("/consent").fields["csrf"]


def test_ids_that_are_not_ours_never_reach_the_database(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    """A NUL byte (PostgreSQL refuses it in text), markup or an overlong id: a clean 4xx (the
    app may refuse a NUL in the path before routing), never a 500."""
    login, wallet_page = _at_qr_page(server, ecosystem)
    for bad in ("%00", "a%00b", "%3Cscript%3E", "x" * 65):
        request_object = requests.get(server.url(f"/wallet/request/{bad}"), timeout=10)
        assert request_object.status_code in (400, 404)
        assert request_object.json()["error"] in ("invalid_request_uri", "invalid_request")
        done = requests.get(server.url(f"/wallet/done/{bad}?response_code=x"), timeout=10)
        assert done.status_code == 400
        browser = Browser(server)
        browser.session.cookies.set("ta_interaction", bad)
        assert browser.get(server.url(f"/interaction/{bad}")).status_code == 400
        poll = browser.get(server.url(f"/interaction/{bad}/status"))
        assert poll.status_code in (200, 400)
        assert poll.headers["Content-Type"].startswith("application/json")
        own = login.browser.get(server.url(f"{login.path}/wallet/{bad}"))
        assert own.status_code == 400
    assert login.browser.get(wallet_page.page.url).status_code == 200
