"""docs/WALLETS.md is true to the code: its worked example is a demo wallet login (the demo's
anchors and credentials, the demo wallet's protocol side ``trustanchor.demo.holder``) and this
test runs that login again over real HTTP, recording what went over the wire, and compares the
doc's example with it: the same JOSE header members and claims, the same constant values
(``typ``, ``aud``, ``client_id`` = the issuer with no prefix, ``response_mode``, the DCQL query
and its id, the Key Binding JWT's ``aud`` and ``nonce``), the same answer shapes and refusals.

``TRUSTANCHOR_WALLET_EXAMPLE=<file>`` writes the recorded exchange to <file> (JSON), with the
service at http://127.0.0.1:8400 and the wallet at :8401: how the doc's example was made.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import test_demo_wallet
from support.credentials import decode_segment
from test_demo_wallet import DemoWorld, demo_world, start_login, the_service

from trustanchor.clock import SystemClock
from trustanchor.demo.holder import Holder
from trustanchor.openid4vp.request_object import REQUEST_OBJECT_TYP, STATIC_DISCOVERY_AUDIENCE
from trustanchor.randomness import SystemRandomness
from trustanchor.services.wallet_login import CREDENTIAL_ID

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "WALLETS.md"
_BLOCK = re.compile(r"<!-- example: ([a-z0-9-]+) -->\s*```[a-z]*\n(.*?)```", re.S)


class RecordingSession(requests.Session):
    """The phone's HTTP client: a requests session that keeps every exchange."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        response = super().request(str(method), str(url), *args, **kwargs)
        content = response.content  # read now: the holder reads it again from _content
        self.exchanges.append(
            {
                "method": str(method),
                "url": str(url),
                "form": dict(kwargs.get("data") or {}),
                "status": response.status_code,
                "content_type": response.headers.get("Content-Type", ""),
                "body": content.decode("utf-8"),
            }
        )
        return response


def _jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, body, _ = token.split(".")
    return decode_segment(head), decode_segment(body)


def record_login(world: DemoWorld) -> dict[str, Any]:
    """Hanako logs in at the demo bank's request through the demo wallet's protocol side."""
    browser = requests.Session()
    login = start_login(world, browser, anchor="jp-national-id")
    link = login["same_device"]
    with RecordingSession() as phone:
        holder = Holder(
            http=phone,
            clock=SystemClock(),
            randomness=SystemRandomness(),
            verifiers=[the_service(world)],
            allow_http_loopback=True,
        )
        request = holder.fetch_request(link)
        proposal = holder.propose(request, world.credentials("hanako"))
        redirect_uri = holder.present(proposal)
        fetched = next(e for e in phone.exchanges if "/wallet/request/" in e["url"])
        posted = next(e for e in phone.exchanges if e["url"].endswith("/wallet/response"))
    header, claims = _jwt_parts(fetched["body"])
    vp_token = json.loads(posted["form"]["vp_token"])
    (presentation,) = vp_token[CREDENTIAL_ID]
    kb_header, kb_claims = _jwt_parts(presentation.rsplit("~", 1)[1])
    issuer_jwt = presentation.split("~", 1)[0]
    credential_header, _ = _jwt_parts(issuer_jwt)
    assert redirect_uri is not None
    back = browser.get(redirect_uri, allow_redirects=False, timeout=10)
    # Refusals a wallet meets: the request object and the answer are single-use.
    again = requests.get(fetched["url"], timeout=10)
    reposted = requests.post(posted["url"], data=posted["form"], timeout=10)
    return {
        "issuer": world.server.issuer,
        "wallet_link": link,
        "request_uri": fetched["url"],
        "request_object_content_type": fetched["content_type"],
        "request_object": fetched["body"],
        "request_object_header": header,
        "request_object_claims": claims,
        "direct_post_form_names": sorted(posted["form"]),
        "state": posted["form"]["state"],
        "vp_token_keys": sorted(vp_token),
        "credential_header": credential_header,
        "disclosures": len(presentation.split("~")) - 2,
        "kb_jwt_header": kb_header,
        "kb_jwt_claims": kb_claims,
        "answer_status": posted["status"],
        "answer": json.loads(posted["body"]),
        "return_status": back.status_code,
        "return_location": back.headers.get("Location", ""),
        "request_object_again": [again.status_code, again.json()],
        "response_again": [reposted.status_code, reposted.json()],
    }


def doc_examples() -> dict[str, str]:
    return {name: text.strip() for name, text in _BLOCK.findall(DOC.read_text(encoding="utf-8"))}


def doc_json(name: str) -> Any:
    return json.loads(doc_examples()[name])


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[DemoWorld]:
    with demo_world(tmp_path, database_url) as running:
        yield running


@pytest.fixture
def recorded(world: DemoWorld) -> dict[str, Any]:
    return record_login(world)


def _shape(value: Any) -> Any:
    """Member names all the way down, values only where they are not per-run."""
    if isinstance(value, Mapping):
        return {name: _shape(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_the_request_object_is_as_the_doc_says(recorded: dict[str, Any]) -> None:
    header, claims = recorded["request_object_header"], recorded["request_object_claims"]
    assert header["typ"] == REQUEST_OBJECT_TYP == doc_json("request-object-header")["typ"]
    assert set(header) == set(doc_json("request-object-header")) == {"alg", "typ", "kid"}
    assert header["alg"] == doc_json("request-object-header")["alg"] == "ES256"
    documented = doc_json("request-object-claims")
    assert _shape(claims) == _shape(documented)
    assert claims["aud"] == documented["aud"] == STATIC_DISCOVERY_AUDIENCE
    # client_id: the issuer identifier itself, no Client Identifier Prefix (pre-registered)
    assert claims["client_id"] == claims["iss"] == recorded["issuer"]
    assert documented["client_id"] == documented["iss"] == doc_examples()["issuer"]
    for name in ("response_type", "response_mode", "dcql_query"):
        assert claims[name] == documented[name], name
    assert claims["dcql_query"]["credentials"][0]["id"] == CREDENTIAL_ID
    assert claims["response_uri"] == recorded["issuer"] + "/wallet/response"
    assert documented["response_uri"] == documented["client_id"] + "/wallet/response"
    assert claims["state"] == recorded["state"]
    assert recorded["request_uri"] == recorded["issuer"] + "/wallet/request/" + claims["state"]
    assert documented["exp"] - documented["iat"] == 300  # fetched at once
    assert 0 < claims["exp"] - claims["iat"] <= 300  # interaction.wallet_transaction_lifetime
    assert recorded["request_object_content_type"] == "application/oauth-authz-req+jwt"


def test_the_wallet_link_is_as_the_doc_says(recorded: dict[str, Any]) -> None:
    for link in (recorded["wallet_link"], doc_examples()["wallet-link"]):
        params = parse_qs(urlsplit(link).query)
        assert set(params) == {"client_id", "request_uri"}
    documented = parse_qs(urlsplit(doc_examples()["wallet-link"]).query)
    assert documented["client_id"] == [doc_examples()["issuer"]]
    doc_claims = doc_json("request-object-claims")
    assert documented["request_uri"] == [
        doc_examples()["issuer"] + "/wallet/request/" + doc_claims["state"]
    ]


def test_the_presentation_is_as_the_doc_says(recorded: dict[str, Any]) -> None:
    kb_header, kb_claims = recorded["kb_jwt_header"], recorded["kb_jwt_claims"]
    claims = recorded["request_object_claims"]
    assert kb_header == doc_json("kb-jwt-header") == {"alg": "ES256", "typ": "kb+jwt"}
    documented = doc_json("kb-jwt-claims")
    assert set(kb_claims) == set(documented) == {"iat", "aud", "nonce", "sd_hash"}
    assert kb_claims["aud"] == claims["client_id"] and kb_claims["nonce"] == claims["nonce"]
    doc_claims = doc_json("request-object-claims")
    assert documented["aud"] == doc_claims["client_id"]
    assert documented["nonce"] == doc_claims["nonce"]
    assert recorded["direct_post_form_names"] == ["state", "vp_token"]
    assert recorded["vp_token_keys"] == [CREDENTIAL_ID]
    assert recorded["credential_header"]["typ"] == "dc+sd-jwt"
    doc_form = parse_qs(doc_examples()["direct-post"])
    assert sorted(doc_form) == ["state", "vp_token"]
    assert list(json.loads(doc_form["vp_token"][0])) == [CREDENTIAL_ID]
    assert doc_form["state"] == [doc_claims["state"]]


def test_the_answers_are_as_the_doc_says(recorded: dict[str, Any]) -> None:
    assert recorded["answer_status"] == 200
    (redirect_uri,) = recorded["answer"].values()
    assert list(recorded["answer"]) == list(doc_json("direct-post-answer")) == ["redirect_uri"]
    prefix = f"{recorded['issuer']}/wallet/done/{recorded['state']}?response_code="
    assert redirect_uri.startswith(prefix)
    doc_claims = doc_json("request-object-claims")
    assert doc_json("direct-post-answer")["redirect_uri"].startswith(
        f"{doc_examples()['issuer']}/wallet/done/{doc_claims['state']}?response_code="
    )
    assert recorded["return_status"] == 303
    assert recorded["return_location"].startswith("/interaction/")
    text = DOC.read_text(encoding="utf-8")
    status, body = recorded["request_object_again"]
    assert status == 404 and body["error"] == "invalid_request_uri"
    assert f"`{body['error_description']}`" in text
    status, body = recorded["response_again"]
    assert status == 400 and body["error"] == "invalid_request"
    assert f"`{body['error_description']}`" in text


def test_the_doc_names_the_constants_of_the_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    for constant in (
        REQUEST_OBJECT_TYP,
        STATIC_DISCOVERY_AUDIENCE,
        CREDENTIAL_ID,
        "application/oauth-authz-req+jwt",
        "direct_post",
        "urn:trustanchor:transaction:value_transfer:1",
        "urn:trustanchor:transaction:funding:1",
        "urn:trustanchor:transaction:standing_funding:1",
        "invalid_transaction_data",
        "access_denied",
    ):
        assert constant in text, constant


@pytest.mark.skipif(
    not os.environ.get("TRUSTANCHOR_WALLET_EXAMPLE"), reason="writes the doc's example on demand"
)
def test_write_the_example(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter((8400, 8401))
    monkeypatch.setattr(test_demo_wallet, "free_port", lambda: next(ports))
    with demo_world(tmp_path, database_url) as running:
        recorded = record_login(running)
    Path(os.environ["TRUSTANCHOR_WALLET_EXAMPLE"]).write_text(
        json.dumps(recorded, indent=2, ensure_ascii=False), encoding="utf-8"
    )
