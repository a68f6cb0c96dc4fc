"""``trustanchor identities check-status``: the real CLI against a SQLite database made by
``init``, with the issuer's status list served over HTTP on 127.0.0.1 and fetched by the real
HttpFetcher (loopback allowed through ``[fetcher]`` settings, as an operator would for a test)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.credentials import Issuer
from support.holdings import bind_accounts_and_grant, log_in, subject_of

from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings
from trustanchor.cli.main import cli
from trustanchor.clock import FixedClock
from trustanchor.domain.identity import Identity
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database

REPO = Path(__file__).resolve().parents[2]
ANCHOR_ID = "jp-pid"

CONFIG = """
[service]
mode = "test"
issuer = "http://127.0.0.1:8000"
database_url = "sqlite:///{db}"
keys_dir = "{keys}"

[fetcher]
http_hosts = ["127.0.0.1"]
private_hosts = ["127.0.0.1"]

[[anchors]]
id = "jp-pid"
kind = "sd_jwt_vc"
display_name = {{ en = "PID wallet" }}
assurance_level = "high"
[anchors.sd_jwt_vc]
issuer = "{issuer}"
jwks_file = "issuer.jwks.json"
vct = ["{vct}"]
subject_claim = "sub"
claims = {{ given_name = "given_name" }}
trust_framework = "jp_my_number_card"
status_check = "required"
"""


class _StatusList(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        body = type(self).body
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def status_server() -> Iterator[str]:
    _StatusList.body = b""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StatusList)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/status/1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


@dataclass
class Installed:
    config: Path
    issuer: Issuer
    uri: str
    now: int

    def publish(self, statuses: list[int]) -> None:
        token = self.issuer.status_list_token(self.uri, statuses, iat=self.now - 10)
        _StatusList.body = token.encode("ascii")


@pytest.fixture
def installed(tmp_path: Path, status_server: str) -> Installed:
    """``init`` run with the anchor declared; its issuer's status list served (all valid)."""
    issuer = Issuer.generate()
    (tmp_path / "issuer.jwks.json").write_text(json.dumps(issuer.jwks()))
    config = tmp_path / "service.toml"
    config.write_text(
        CONFIG.format(
            db=tmp_path / "db.sqlite", keys=tmp_path / "keys", issuer=issuer.issuer, vct=issuer.vct
        )
    )
    initialised = run(config, "init")
    assert initialised.exit_code == 0, initialised.output
    service = Installed(config, issuer, status_server, int(time.time()))
    service.publish([0] * 16)
    return service


def logged_in(service: Installed, *, with_holdings: bool) -> Identity:
    """A login through the anchor (status list fetched over HTTP), recorded in the database."""
    database = Database(f"sqlite:///{service.config.parent / 'db.sqlite'}")
    try:
        anchor = AnchorRepository(database).get(ANCHOR_ID)
        assert anchor is not None
        loopback = frozenset({"127.0.0.1"})
        fetcher = HttpFetcher(
            clock=FixedClock(service.now),
            settings=HttpFetcherSettings(http_hosts=loopback, private_hosts=loopback),
        )
        at = service.now - 5
        identity = log_in(
            database, anchor, service.issuer, fetcher, "taro", status=(service.uri, 3), at=at
        )
        if with_holdings:
            bind_accounts_and_grant(database, identity, ANCHOR_ID, at=at)
        return identity
    finally:
        database.dispose()


def test_check_status_reports_a_revocation_and_its_cascade_without_personal_data(
    installed: Installed,
) -> None:
    identity = logged_in(installed, with_holdings=True)
    installed.publish([0, 0, 0, 1] + [0] * 12)

    revoked = run(installed.config, "identities", "check-status")

    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout.splitlines() == [
        "checked 1 identity",
        "changed: revoked 1",
        f"  {identity.id}: valid -> revoked",
        "unknown (no verified answer): 0",
        "1 transfer grant(s) revoked; 2 account(s) and 1 link(s) flagged for re-verification",
    ]
    # Progress goes to stderr (not a terminal here: the start and the end, one line each).
    assert revoked.stderr.splitlines() == [
        "checking identities: 0/1",
        "checking identities: 1/1",
    ]
    assert subject_of("taro") not in revoked.output and "Taro" not in revoked.output

    again = run(installed.config, "identities", "check-status", "--limit", "5")
    assert again.exit_code == 0, again.output
    assert "checked 0 identities" in again.output and "changed: none" in again.output


def test_check_status_reports_an_unreachable_list_as_unknown(installed: Installed) -> None:
    identity = logged_in(installed, with_holdings=False)
    _StatusList.body = b""  # the issuer's endpoint now answers 404

    result = run(installed.config, "identities", "check-status")

    assert result.exit_code == 0, result.output
    assert f"  {identity.id}: valid -> unknown" in result.output
    assert f"  {ANCHOR_ID} {installed.uri}: status_unavailable (" in result.output


def test_check_status_fails_when_the_database_is_not_usable(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        CONFIG.split("[[anchors]]")[0].format(db=tmp_path / "never-initialised.sqlite", keys="k")
    )

    result = run(config, "identities", "check-status")

    assert result.exit_code != 0
    assert "cannot use the database" in result.output and "trustanchor init" in result.output
