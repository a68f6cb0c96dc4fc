"""The demo ledger's page (``GET /ledger/``) as people read it: amounts as the bank's pages write
them (``170,000 JPY``, in Japanese ``170,000円``), times in a ``<time data-local>`` element that
the service's local-time.js, served from the parties' own origin, rewrites in the viewer's zone,
and a refused transfer with the anchor set its token named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from trustanchor.clock import FixedClock
from trustanchor.demo.ledger_book import Booking, LedgerBook
from trustanchor.demo.parties_app import create_app
from trustanchor.demo.prepare import prepare
from trustanchor.demo.site import DemoSite
from trustanchor.domain.money import Amount, parse_amount

AT = 1_800_000_000  # 2027-01-15 08:00:00 UTC
HANAKO = "acc_HanakoWallet0000000001"
TARO = "acc_TaroWallet00000000002"
REPO_SCRIPT = Path(__file__).resolve().parents[2] / "trustanchor" / "web" / "static"


def jpy(amount: str) -> Amount:
    return parse_amount(amount, "JPY")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    prepare(tmp_path / "keys")  # the bank's client key the app loads; no service is asked
    site = DemoSite(
        service_url="http://127.0.0.1:9",
        parties_url="http://127.0.0.1:8",
        keys_dir=tmp_path / "keys",
        state_dir=tmp_path / "state",
        clock=FixedClock(AT),
    )
    app = create_app(site)
    book: LedgerBook = app.extensions["demo_bank"].book
    book.open_account(
        HANAKO, owner="hanako", label="CBDC wallet ****7701", opening_balance=jpy("50000")
    )
    book.open_account(
        TARO, owner="taro", label="CBDC wallet ****7702", opening_balance=jpy("170000")
    )
    book.book(
        Booking(
            amount=jpy("10000"),
            debtor_account=HANAKO,
            creditor_account=TARO,
            anchor_set="jp-cbdc",
            token_jti="jti-1",
        )
    )
    book.record_refusal(
        "insufficient_funds",
        amount="50000",
        currency="JPY",
        debtor_account=HANAKO,
        creditor_account=TARO,
        anchor_set="jp-cbdc",
    )
    yield app
    app.extensions["demo_engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_amounts_are_written_as_the_bank_writes_them(client: FlaskClient) -> None:
    english = client.get("/ledger/?lang=en").get_data(as_text=True)
    assert "180,000 JPY" in english and "10,000 JPY" in english and "50,000 JPY" in english
    japanese = client.get("/ledger/?lang=ja").get_data(as_text=True)
    assert "180,000円" in japanese and "10,000円" in japanese and "50,000円" in japanese
    assert "JPY" not in japanese


def test_times_are_marked_for_the_viewers_time_zone(client: FlaskClient) -> None:
    page = client.get("/ledger/?lang=ja").get_data(as_text=True)
    stamp = '<time datetime="2027-01-15T08:00:00Z" data-local>2027-01-15 08:00:00 UTC</time>'
    assert page.count(stamp) == 2  # the transfer and the refusal
    assert '<script src="/ledger/local-time.js" defer></script>' in page
    script = client.get("/ledger/local-time.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert script.get_data() == (REPO_SCRIPT / "local-time.js").read_bytes()
    # The page's policy lets the script of its own origin run, and no other.
    policy = client.get("/ledger/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy


def test_a_refused_transfer_shows_the_anchor_set_its_token_named(client: FlaskClient) -> None:
    page = client.get("/ledger/?lang=en").get_data(as_text=True)
    journal = page.split('id="journal"', 1)[1].split("</ul>", 1)[0]
    refused, executed = journal.split("</li>")[:2]
    assert "insufficient_funds" in refused and "<code>jp-cbdc</code>" in refused
    assert "Executed" in executed and "<code>jp-cbdc</code>" in executed
