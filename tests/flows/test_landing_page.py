"""Issue 5, the service's root page: in demo mode it lists every part of the demo with one
sentence each (the demo wallet, bank and ledger at ``demo.parties_url``, the auditor console, the
holders' account links, discovery, JWKS) and the demo trust anchors with their anchor sets, in
English and Japanese; outside demo mode it stays the short page it was. Over real HTTP."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from markupsafe import escape
from support.payments import ANCHOR_SETS, Payments
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.web.i18n import catalog

PARTIES = "http://127.0.0.1:18001"


def text_of(key: str, lang: str, **values: object) -> str:
    text = catalog(lang)[key]
    return str(escape(text.format(**values) if values else text))


@pytest.fixture
def serve(tmp_path: Path, database_url: str, payments: Payments) -> Iterator[Any]:
    """Start the service with issue 4's anchors and sets under the given settings sections."""
    running: list[Any] = []

    def start(overrides: dict[str, dict[str, Any]]) -> RunningServer:
        settings = test_settings(
            tmp_path,
            database_url,
            port=free_port(),
            anchors=[anchor.declaration() for anchor in payments.anchors.values()],
            clients=payments.clients(),
            overrides=overrides,
        )
        settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
        context = running_server(settings)
        server = context.__enter__()
        running.append(context)
        return server

    yield start
    for context in running:
        context.__exit__(None, None, None)


def get(server: RunningServer, path: str) -> requests.Response:
    response = requests.get(server.url(path), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    return response


def hrefs(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', html)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_demo_landing_lists_every_part_with_one_sentence(serve: Any, lang: str) -> None:
    server = serve({"service": {"mode": "demo"}, "demo": {"parties_url": PARTIES}})
    page = get(server, f"/?lang={lang}")
    html = page.text
    assert f'<html lang="{lang}">' in html
    assert f"<title>{text_of('landing.title', lang)} · trustanchor</title>" in html
    assert text_of("landing.heading", lang) in html
    expected = {
        "wallet": f"{PARTIES}/wallet/",
        "card": f"{PARTIES}/card/",
        "bank": f"{PARTIES}/bank/",
        "ledger": f"{PARTIES}/ledger/",
        "branch": f"{PARTIES}/branch/",
        "auditor": "/auditor/",
        "my_links": "/my/links",
        "discovery": "/.well-known/openid-configuration",
        "jwks": "/jwks",
    }
    links = hrefs(html)
    for key, url in expected.items():
        assert url in links, key
        item = re.search(rf'<li id="part-{key}">(.*?)</li>', html, re.DOTALL)
        assert item, key
        assert text_of(f"landing.parts.{key}.name", lang) in item.group(1)
        assert text_of(f"landing.parts.{key}.sentence", lang) in item.group(1)
    # The walk a newcomer can follow, and the anchors with the sets that decide transfers.
    steps = ("try_bank", "try_link", "try_allowed", "try_refused", "try_card", "try_branch")
    for step in (*steps, "try_auditor"):
        assert text_of(f"landing.{step}", lang) in html
    japan = "日本 CBDC 実証" if lang == "ja" else "Japan CBDC pilot"
    high = text_of("levels.high", lang)
    assert (
        text_of(
            "landing.anchor",
            lang,
            anchor=f"eu-pid{'（テスト）' if lang == 'ja' else ' (test)'}",
            level=high,
            sets="EU デジタル ID ウォレット" if lang == "ja" else "EU digital identity wallets",
        )
        in html
    )
    assert japan in html
    # Still a page of the service: its CSP, no script, every link to it or to the parties.
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html
    assert all(url.startswith(("/", "?", PARTIES + "/")) for url in links), links


def test_the_language_switch_of_the_landing_page_leads_to_the_other_language(serve: Any) -> None:
    server = serve({"service": {"mode": "demo"}, "demo": {"parties_url": PARTIES}})
    english = get(server, "/")
    switch = re.search(r'id="switch-language" href="([^"]+)"', english.text)
    assert switch and switch.group(1) == "?lang=ja"
    japanese = get(server, "/" + switch.group(1))
    assert '<html lang="ja">' in japanese.text and "デモウォレット" in japanese.text


def test_demo_mode_without_parties_says_how_to_start_them(serve: Any) -> None:
    server = serve({"service": {"mode": "demo"}})
    html = get(server, "/").text
    assert text_of("landing.parties_missing", "en") in html
    assert "/wallet/" not in html and "/bank/" not in html
    for url in ("/auditor/", "/my/links", "/.well-known/openid-configuration", "/jwks"):
        assert url in hrefs(html)


def test_outside_demo_mode_the_root_page_stays_as_it_was(serve: Any) -> None:
    server = serve({})
    html = get(server, "/").text
    assert text_of("landing.heading", "en") not in html
    assert "part-wallet" not in html and "part-bank" not in html
    assert hrefs(html)[1:] == ["/.well-known/openid-configuration", "/jwks", "/my/links"]
