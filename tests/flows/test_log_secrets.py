"""Issue 14: nothing secret or personal in the service's logs, even at DEBUG.

Real flows over HTTP carry every kind of secret the service handles: client assertions, a
client secret, PKCE verifiers, authorization codes, request URIs, DPoP proofs, access, refresh
and ID tokens, the wallet's presentation, an upstream provider's code and session cookies; and
personal data: a wallet login (name, birth date), a card login (the signature certificate's
name, birth date and address) and an upstream provider's login (its ID token and UserInfo).
Successes and refusals alike (refusals are where details get logged). Every line the service
logged meanwhile, as JSON lines at DEBUG, must name its request when written while one was
handled, and contain none of the values seen: those of the secret-bearing parameters, JSON
members, Authorization, DPoP and cookie headers of every request and answer (each JWT part on
its own, and the ``sub`` of any JWT that names a person), the subjects of the identities the
flows recorded, the certificates and the people's names, birth dates and addresses. Database
errors, whose tracebacks are logged when a request fails unexpectedly, quote no value either.

Not the service's lines: the test's own HTTP client (``requests`` with ``urllib3`` and
``charset_normalizer``; the service's fetcher is ``http.client``, and it uses ``requests`` only
in ``trustanchor audit fetch`` for public log material), werkzeug's development server that
runs the app in process (``trustanchor serve`` runs granian with its access log off), and the
upstream OpenID Provider running in process (idpyoidc and cryptojwt behind a Flask app in
``support.idpy_op``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from support.card_app import CrlServer, fetcher_overrides, x509_anchor_declaration
from support.ecosystem import Ecosystem
from support.jpki import TestPKI
from support.logs import json_log_lines
from support.payments import ANCHOR_SETS, JP_SET, Bank, Payments
from support.rp import DpopKey, Pkce, raw_request
from support.server import RunningServer, free_port, running_server, test_settings
from support.stage import Stage
from test_certificate_login import VERIFIED_CLAIMS, X509, CardHolder, start
from test_upstream_login import (  # the fixture ``world`` too: the provider and the service
    World,
    _finish,
    _to_provider_and_back,
    _with,
    world,  # noqa: F401
)

from trustanchor import log_setup
from trustanchor.storage.database import Database
from trustanchor.storage.prepared import PreparedInsert
from trustanchor.storage.tables import identities

NOT_THE_SERVICE = ("urllib3", "charset_normalizer", "werkzeug", "idpyoidc", "cryptojwt", "support.")
# Form, query and JSON members whose values are secret (or bearer references to secrets).
SECRET_NAMES = {
    "client_assertion",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "access_token",
    "id_token",
    "token",
    "request_uri",
    "vp_token",
    "response",
    "response_code",
    "state",
    "nonce",
}
SECRET_HEADERS = {"authorization", "dpop", "cookie", "set-cookie"}
PERSONAL = ("Taro", "Yamada", "1990-04-01")


@dataclass
class Traffic:
    """Every value worth keeping out of the logs, seen on the wire."""

    secrets: set[str] = field(default_factory=set)

    def add(self, value: str) -> None:
        value = value.strip()
        if len(value) < 12:  # too short to be a secret of ours, or to find meaningfully
            return
        self.secrets.add(value)
        for part in value.replace("~", ".").split("."):  # JWT / SD-JWT parts on their own
            if len(part) >= 20:
                self.secrets.add(part)
                self._add_claims(part)

    def _add_claims(self, part: str) -> None:
        """The subject of a JWT we saw: personal (a pairwise identifier of a person)."""
        try:
            claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except ValueError:
            return
        if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
            return
        # a client's own assertion or client_credentials token: the client's id, not a person
        if claims["sub"] not in (claims.get("iss"), claims.get("client_id"), claims.get("azp")):
            self.secrets.add(claims["sub"])

    def form(self, pairs: list[tuple[str, str]]) -> None:
        for name, value in pairs:
            if name in SECRET_NAMES:
                self.add(value)

    def request(self, request: requests.PreparedRequest) -> None:
        self.form(parse_qsl(urlsplit(request.url or "").query))
        raw = request.body
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        if "=" in body and not body.lstrip().startswith("{"):
            self.form(parse_qsl(body))
        for name, header in request.headers.items():
            value = header.decode("latin-1") if isinstance(header, bytes) else header
            if name.lower() in SECRET_HEADERS:
                self.add(value.split(" ", 1)[-1])
                for cookie in value.split(";"):
                    self.add(cookie.partition("=")[2])

    def response(self, response: requests.Response) -> None:
        location = response.headers.get("Location", "")
        self.form(parse_qsl(urlsplit(location).query))
        for name, value in response.headers.items():
            if name.lower() == "set-cookie":
                self.add(value.split(";", 1)[0].partition("=")[2])
        if response.headers.get("Content-Type", "").startswith("application/json"):
            try:
                body = response.json()
            except ValueError:
                return
            if isinstance(body, dict):
                for name, value in body.items():
                    if name in SECRET_NAMES and isinstance(value, str):
                        self.add(value)


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traffic]:
    """Records what every requests.Session sends and receives (the real send underneath)."""
    seen = Traffic()
    send = requests.Session.send

    def recording(session: requests.Session, request: Any, **kwargs: Any) -> Any:
        seen.request(request)
        response = send(session, request, **kwargs)
        seen.response(response)
        return response

    monkeypatch.setattr(requests.Session, "send", recording)
    yield seen


def service_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if not line["logger"].startswith(NOT_THE_SERVICE)]


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's own lines (each written while handling a request). Not the demo parties':
    a demo eKYC provider left by an earlier test may still log from its JWKS thread, with no
    request id."""
    return [
        line
        for line in service_lines(lines)
        if line["logger"].startswith("trustanchor") and not line["logger"].startswith(DEMO)
    ]


DEMO = "trustanchor.demo"


def assert_clean(lines: list[dict[str, Any]], traffic: Traffic, personal: tuple[str, ...]) -> None:
    assert len(traffic.secrets) > 20, traffic.secrets  # the flows did carry secrets
    for line in service_lines(lines):
        text = json.dumps(line, ensure_ascii=False)
        leaked = [s for s in (*traffic.secrets, *personal) if s in text]
        assert not leaked, f"{leaked} in {text}"


def identity_subjects(server: RunningServer) -> set[str]:
    """The subjects of the identities recorded: who a person is at an anchor."""
    with server.services.db.reader() as conn:
        return {row.subject for row in conn.execute(select(identities.c.subject))}


def userinfo(stage: Stage, access_token: str, key: DpopKey) -> requests.Response:
    url = stage.server.url("/userinfo")
    proof = key.proof("GET", url, iat=stage.clock.now(), access_token=access_token)
    return raw_request("GET", url, [("Authorization", f"DPoP {access_token}"), ("DPoP", proof)])


def test_no_secret_or_personal_value_is_logged_at_debug(
    stage: Stage, ecosystem: Ecosystem, traffic: Traffic
) -> None:
    bank, ledger = stage.bank, stage.ledger
    key = DpopKey()
    with json_log_lines("debug") as lines:
        person = stage.person()
        # the wallet login (name, birth date), consent, a DPoP-bound code redemption
        tokens = stage.tokens(bank, dpop_key=key, person=person, scope="openid profile")
        assert userinfo(stage, tokens["access_token"], key).status_code == 200
        assert ledger.introspect(tokens["access_token"])["active"] is True
        refreshed = bank.refresh(tokens["refresh_token"], dpop=bank.proof(key, "/token"))
        assert refreshed.status_code == 200, refreshed.text
        # refusals, each with its operator detail: refresh token reuse, code reuse, a wrong
        # verifier, a replayed assertion, a forged signature, a bad proof, a bad token, Basic
        reused = bank.refresh(tokens["refresh_token"], dpop=bank.proof(key, "/token"))
        assert reused.status_code == 400
        pkce = Pkce.generate()
        code = stage.code(bank, pkce, person=person)
        assert bank.redeem(code, "x" * 43, dpop=bank.proof(key, "/token")).status_code == 400
        code = stage.code(bank, pkce, person=person)
        assert bank.redeem(code, pkce.verifier, dpop=bank.proof(key, "/token")).status_code == 200
        assert bank.redeem(code, pkce.verifier, dpop=bank.proof(key, "/token")).status_code == 400
        assertion = bank.assertion()
        grant = {"grant_type": "client_credentials"}
        for _ in range(2):  # the second is a replay
            bank.post("/token", [*grant.items(), *bank.credentials(assertion)], authenticate=False)
        forged = assertion[:-8] + ("A" * 8 if not assertion.endswith("A" * 8) else "B" * 8)
        assert bank.post(
            "/token", [*grant.items(), *bank.credentials(forged)], authenticate=False
        ).status_code in (400, 401)
        bad_proof = key.proof("POST", stage.server.url("/elsewhere"), iat=stage.clock.now())
        assert bank.post("/token", grant, dpop=bad_proof).status_code == 400
        assert userinfo(stage, tokens["access_token"][:-6] + "AAAAAA", key).status_code == 401
        basic = base64.b64encode(b"bank:a-client-secret-of-some-length").decode()
        assert (
            bank.post(
                "/token", grant, authenticate=False, headers={"Authorization": f"Basic {basic}"}
            ).status_code
            == 401
        )
        # revocation, then the revoked token at userinfo
        refresh = refreshed.json()["refresh_token"]
        assert bank.post("/revoke", {"token": refresh}).status_code == 200
        assert ledger.introspect(refreshed.json()["access_token"])["active"] is False
    traffic.add("a-client-secret-of-some-length")
    for subject in identity_subjects(stage.server):
        traffic.add(subject)
    assert_clean(lines, traffic, PERSONAL)
    refusals = [line for line in service_lines(lines) if line["message"].startswith("refused ")]
    assert len(refusals) >= 8, [line["message"] for line in service_lines(lines)]
    assert all(line["request_id"] for line in refusals)


CARD_PERSONAL = ("山田 太郎", "山田", "太郎", "1980-01-02", "19800102", "霞が関", "千代田区")


@pytest.fixture
def card_server(
    tmp_path: Path, database_url: str, payments: Payments
) -> Iterator[tuple[RunningServer, TestPKI]]:
    """An x509 anchor (the JPKI model) in the payments ecosystem, its CRLs served over HTTP."""
    pki = TestPKI.generate(now=int(time.time()))
    with CrlServer(pki).running() as crls:
        settings = test_settings(
            tmp_path,
            database_url,
            port=free_port(),
            anchors=[
                *(a.declaration() for a in payments.anchors.values()),
                x509_anchor_declaration(pki, crls.urls, anchor_id=X509, anchor_sets=[JP_SET]),
            ],
            clients=payments.clients(),
            overrides=fetcher_overrides(),
        )
        settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
        with running_server(settings) as running:
            yield running, pki


def test_a_card_login_logs_no_certificate_or_personal_value(
    card_server: tuple[RunningServer, TestPKI], payments: Payments, traffic: Traffic
) -> None:
    server, pki = card_server
    bank = Bank(server, payments)
    card = pki.person(label="taro", name="山田 太郎", birthdate="19800102")
    with json_log_lines("debug") as lines:
        holder = CardHolder(server, card)
        page, pkce = start(bank, holder, claims=VERIFIED_CLAIMS)
        consent = holder.log_in(page)  # enrolment: both certificates, signed challenge
        tokens = bank.redeem(holder.decide(consent)["code"], pkce)
        answer = requests.get(
            server.url("/userinfo"),
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
            timeout=10,
        )
        assert answer.json()["verified_claims"]["claims"]["name"] == "山田 太郎"
        # a second answer to the used transaction: refused, with its reason logged
        again = CardHolder(server, card)
        page, _ = start(bank, again)
        qr = again.choose(page)
        request = again.app.request(qr.link)
        assert again.app.answer(request).status_code == 200
        assert again.app.answer(request).status_code == 400
    for certificate in (card.authentication, card.signature):  # the card's, and its holder's
        traffic.add(certificate.x5c)
        traffic.add(certificate.x5c[200:240])
        traffic.add(f"{certificate.serial:x}")
        traffic.add(str(certificate.serial))
    for subject in identity_subjects(server):
        traffic.add(subject)
    assert_clean(lines, traffic, CARD_PERSONAL)
    logged = request_lines(lines)
    assert [line["message"] for line in logged].count("login through anchor jp-jpki: ok") == 2
    assert all(line["request_id"] for line in logged)


def test_database_errors_name_no_values(database: Database) -> None:
    """A failing statement's error (logged with its traceback when a request fails
    unexpectedly) names the statement, never the values: a token digest, a person's claims."""
    table = Table("log_probe", MetaData(), Column("value", String(100), unique=True))
    secret = "a-secret-value-never-in-an-error"
    with database.engine.begin() as conn:
        table.create(conn)
        conn.execute(insert(table).values(value=secret))
    with pytest.raises(IntegrityError) as core, database.engine.begin() as conn:
        conn.execute(insert(table).values(value=secret))
    prepared = PreparedInsert(table, ("value",))
    with pytest.raises(IntegrityError) as raw, database.engine.begin() as conn:
        prepared.run(conn, {"value": secret})
    for error in (core.value, raw.value):
        assert "INSERT INTO log_probe" in str(error) and "parameters hidden" in str(error)
        record = logging.LogRecord("t", logging.ERROR, "", 0, "failed", None, _info(error))
        for formatter in (log_setup.JsonFormatter(), log_setup.TextFormatter()):
            logged = formatter.format(record)
            assert "INSERT INTO log_probe" in logged and "IntegrityError" in logged
            assert secret not in logged  # PostgreSQL quotes it in a DETAIL line: redacted


def _info(error: BaseException) -> Any:
    return (type(error), error, error.__traceback__)


UPSTREAM_PERSONAL = ("Taro", "Yamada", "1990-04-01", "1-1 Chiyoda, Tokyo")


def test_an_upstream_login_logs_no_token_or_personal_value(
    request: pytest.FixtureRequest, database_url: str, traffic: Traffic
) -> None:
    """The provider's code, ID token and UserInfo (name, birth date, address) pass through the
    service; a refused answer (wrong ``iss``) logs its reason."""
    upstream: World = request.getfixturevalue("world")  # test_upstream_login's fixture
    with json_log_lines("debug") as lines:
        attempt = _to_provider_and_back(upstream)
        consent = _finish(attempt)
        decision = attempt.browser.submit(consent.text, "/consent", decision="approve")
        assert decision.status_code == 303
        refused = _to_provider_and_back(upstream)
        page = _finish(refused, _with(refused.callback_url, iss="https://attacker.example"))
        assert "/consent" not in page.text
    for subject in identity_subjects(upstream.server):
        traffic.add(subject)
    assert_clean(lines, traffic, UPSTREAM_PERSONAL)
    logged = request_lines(lines)
    messages = [line["message"] for line in logged]
    assert any("response_issuer_mismatch" in message for message in messages), messages
    assert all(line["request_id"] for line in logged), logged
