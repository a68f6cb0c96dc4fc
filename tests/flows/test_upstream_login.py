"""Login through an upstream OpenID Provider (anchor kind ``oidc``) end to end over HTTP, against
OpenID Providers nobody here wrote, each a real local HTTP server: idpyoidc's server side
(tests/support/idpy_op.py) and node-oidc-provider (tests/support/node_op/upstream_op.mjs, where
Node and bench/peer/node-oidc-provider's npm packages are present; skipped with the reason
otherwise). An intermediary (requests-oauth2client) pushes its request to us, the person picks the
provider on our login page, the browser goes to the provider and back to that provider's own
redirect URI, and the intermediary gets its tokens; an account link goes the same way.

The security cases drive the same flow and break one thing each: the state replayed (also ten
times at once), the state brought to another browser, the answer delivered at another provider's
redirect URI (mix-up), a wrong or missing RFC 9207 ``iss``, ``error=access_denied``, a nonce that
is not the one we sent, a UserInfo for another ``sub``, an ID token signed with a key the provider
does not publish, an anchor suspended meanwhile, and a step-up whose ``max_age`` the provider's
``auth_time`` no longer meets. Each refusal is checked on the page, on the transaction, in the
audit log (exactly once) and as used up. Runs on SQLite and PostgreSQL (``database_url``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from requests_oauth2client import DPoPKey, OAuth2Client, PrivateKeyJwt
from sqlalchemy import update
from support.clock import ShiftableClock
from support.ecosystem import BANK_REDIRECT, Browser
from support.html import parse
from support.idpy_op import IdpyProvider, running_provider
from support.payments import ANCHOR_SETS, JP_SET, Bank, Payments, link
from support.person import authorization_response
from support.rp import Pkce
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.storage.tables import wallet_transactions

ANCHOR = "bank-idp"
OTHER = "other-idp"
DOWN = "down-idp"  # declared, but nothing listens at its issuer
CLIENT_AT_OP = "trustanchor-rp"
OTHER_CLIENT_AT_OP = "trustanchor-rp-other"


PASSWORD_ACR = "urn:oasis:names:tc:SAML:2.0:ac:classes:InternetProtocolPassword"


def _anchor(
    anchor_id: str,
    issuer: str,
    client_id: str,
    name: str,
    level: str = "high",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": anchor_id,
        "kind": "oidc",
        "display_name": {"en": name, "ja": name},
        "assurance_level": level,
        "anchor_sets": [JP_SET],
        "oidc": {
            "issuer": issuer,
            "client_id": client_id,
            "trust_framework": "jp_aml",
            "scopes": ["openid", "profile"],
            "claims": {
                "given_name": "given_name",
                "family_name": "family_name",
                "birthdate": "birthdate",
            },
            "acr_levels": {PASSWORD_ACR: level},
            # every mapped claim asked inside verified_claims (OpenID Connect for Identity
            # Assurance): taken from there only, with the anchor's trust framework
            "verified_claims": True,
            "userinfo": True,
            # idpyoidc 5 resolves a pushed request only when the redirect repeats redirect_uri,
            # so PAR is exercised against node-oidc-provider instead.
            "par": "never",
            **extra,
        },
    }


@dataclass
class World:
    server: RunningServer
    provider: IdpyProvider
    payments: Payments
    clock: ShiftableClock


FETCHER = {"fetcher": {"http_hosts": ["127.0.0.1"], "private_hosts": ["127.0.0.1"]}}


def _payments() -> Payments:
    """Issue 4's intermediary and anchor sets; our upstream anchors join ``jp-cbdc``."""
    payments = Payments()
    payments.anchors.clear()  # only the upstream anchors log people in here
    return payments


def _clients(payments: Payments) -> list[dict[str, Any]]:
    clients = payments.clients()
    clients[0] = {**clients[0], "scope": "openid profile accounts"}
    return clients


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    clock = ShiftableClock()
    payments = _payments()
    with running_provider(free_port(), tmp_path / "op") as provider:
        settings = test_settings(
            tmp_path,
            database_url,
            port=free_port(),
            anchors=[
                _anchor(ANCHOR, provider.issuer, CLIENT_AT_OP, "Test Bank ID"),
                _anchor(
                    OTHER,
                    provider.issuer,
                    OTHER_CLIENT_AT_OP,
                    "Other ID",
                    "substantial",
                    client_assertion_alg="RS256",
                ),
                _anchor(DOWN, f"http://127.0.0.1:{free_port()}", "nobody", "Down ID"),
            ],
            clients=_clients(payments),
            overrides=FETCHER,
        )
        settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
        with running_server(settings, clock=clock) as server:
            # The provider's operator registers us: one redirect URI per provider, and the JWKS
            # we publish for it (fetched over HTTP like a real registration would).
            for anchor_id, client_id in ((ANCHOR, CLIENT_AT_OP), (OTHER, OTHER_CLIENT_AT_OP)):
                jwks = requests.get(server.url(f"/upstream/{anchor_id}/jwks.json"), timeout=5)
                assert jwks.status_code == 200
                provider.register_client(
                    client_id, [server.url(f"/upstream/{anchor_id}/callback")], jwks.json()
                )
            yield World(server, provider, payments, clock)


def _rp(world: World) -> OAuth2Client:
    server, bank = world.server, world.payments.bank
    return OAuth2Client.from_discovery_endpoint(
        server.url("/.well-known/openid-configuration"),
        issuer=server.issuer,
        testing=True,
        auth=PrivateKeyJwt(bank.client_id, bank.private_jwk, aud=server.issuer),
        redirect_uri=BANK_REDIRECT,
        id_token_signed_response_alg="ES256",
        dpop_bound_access_tokens=True,
    )


@dataclass
class Attempt:
    browser: Browser
    login_page: str
    callback_url: str  # where the provider sent the browser back (not followed yet)


def _to_provider_and_back(world: World, *, anchor: str = ANCHOR, url: str | None = None) -> Attempt:
    """The person opens the intermediary's request, picks ``anchor`` and the provider answers."""
    browser = Browser(world.server)
    if url is None:
        client = _rp(world)
        url = str(
            client.pushed_authorization_request(
                client.authorization_request(scope="openid profile", dpop_key=_dpop())
            ).uri
        )
    page = browser.follow(browser.get(url))
    assert page.status_code == 200, page.text
    started = browser.submit(page.text, "/upstream", anchor=anchor)
    assert started.status_code == 303, started.text
    assert started.headers["Location"].startswith(world.provider.issuer + "/authorization?")
    answer = browser.session.get(started.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    return Attempt(browser, page.text, answer.headers["Location"])


def _dpop() -> DPoPKey:
    return DPoPKey.generate(alg="ES256")


def _finish(attempt: Attempt, callback_url: str | None = None) -> requests.Response:
    back = attempt.browser.get(callback_url or attempt.callback_url)
    assert back.status_code == 303, back.text
    return attempt.browser.follow(back)


def _with(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def _state(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


def _failure_text(page: requests.Response) -> str:
    assert page.status_code == 200, page.text
    return parse(page.text).text


def _outcome(world: World, state: str) -> dict[str, Any] | None:
    from trustanchor.storage import wallet_repo

    with world.server.services.db.reader() as conn:
        tx = wallet_repo.get(conn, state, method="upstream")
    assert tx is not None
    return tx.outcome


# -- the working flow ----------------------------------------------------------------------------


def test_login_through_an_upstream_provider_end_to_end(world: World) -> None:
    client = _rp(world)
    dpop_key = _dpop()
    auth_request = client.authorization_request(
        scope="openid profile",
        dpop_key=dpop_key,
        claims=json.dumps(
            {
                "userinfo": {
                    "verified_claims": {
                        "verification": {"trust_framework": None},
                        "claims": {"given_name": None, "birthdate": None},
                    }
                }
            }
        ),
    )
    par = client.pushed_authorization_request(auth_request)
    attempt = _to_provider_and_back(world, url=str(par.uri))
    query = parse_qs(urlsplit(attempt.callback_url).query)
    assert attempt.callback_url.startswith(world.server.url(f"/upstream/{ANCHOR}/callback?"))
    assert query["iss"] == [world.provider.issuer]  # RFC 9207, from the provider itself
    consent = _finish(attempt)
    text = parse(consent.text).text
    assert "Yamada T." in text and "Test Bank ID" in text, text  # who, and through which anchor
    decision = attempt.browser.submit(consent.text, "/consent", decision="approve")
    assert decision.status_code == 303
    response = auth_request.validate_callback(decision.headers["Location"])
    token = client.authorization_code(response, dpop_key=dpop_key, validate=False)
    id_token = _claims(world, str(token.id_token))
    assert id_token["acr"] == "urn:trustanchor:acr:high"  # the provider's acr, mapped
    userinfo = client.userinfo(token)
    assert userinfo["sub"] == id_token["sub"]
    assert userinfo["given_name"] == "Taro"  # from the provider's UserInfo, through ours
    verified = userinfo["verified_claims"]  # the provider's verified_claims, mapped
    assert verified["verification"]["trust_framework"] == "jp_aml"
    assert verified["claims"] == {"given_name": "Taro", "birthdate": "1990-04-01"}
    outcome = _outcome(world, _state(attempt.callback_url))
    assert outcome is not None and outcome["status"] == "ok"


def test_our_client_key_is_private_on_disk_and_only_its_public_half_is_served(
    world: World,
) -> None:
    path = Path(world.server.settings.service.keys_dir) / "upstream" / f"{ANCHOR}.private.jwk"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    served = requests.get(world.server.url(f"/upstream/{ANCHOR}/jwks.json"), timeout=5).json()
    (key,) = served["keys"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
    assert key["kid"] and key["alg"] == "ES256"
    other = requests.get(world.server.url(f"/upstream/{OTHER}/jwks.json"), timeout=5).json()
    assert other["keys"][0]["kid"] != key["kid"]  # a key per provider
    assert other["keys"][0]["alg"] == "RS256" and other["keys"][0]["kty"] == "RSA"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & other["keys"][0].keys()
    missing = requests.get(world.server.url("/upstream/no-such-anchor/jwks.json"), timeout=5)
    assert missing.status_code == 404


def test_a_provider_taking_rsa_client_assertions(world: World) -> None:
    """OTHER's key is RS256 (client_assertion_alg): the provider takes its assertion."""
    attempt = _to_provider_and_back(world, anchor=OTHER)
    assert "/consent" in _finish(attempt).text


def test_an_unreachable_provider_fails_before_the_browser_leaves(world: World) -> None:
    browser = Browser(world.server)
    client = _rp(world)
    url = client.pushed_authorization_request(
        client.authorization_request(scope="openid profile", dpop_key=_dpop())
    ).uri
    page = browser.follow(browser.get(str(url)))
    started = browser.submit(page.text, "/upstream", anchor=DOWN)
    assert started.status_code == 303
    assert started.headers["Location"].startswith("/interaction/")  # not to any provider
    text = _failure_text(browser.follow(started))
    assert "cannot be reached right now" in text
    from trustanchor.storage import wallet_repo

    interaction_id = started.headers["Location"].rsplit("/", 1)[-1]
    with world.server.services.db.reader() as conn:
        latest = wallet_repo.latest_for_interaction(conn, interaction_id)
    assert latest is not None and latest.method == "upstream"
    assert latest.outcome == {"status": "failed", "reason": "provider_unreachable"}
    assert latest.consumed_at is not None  # no answer can ever name it


# -- the security cases ------------------------------------------------------------------------


def test_a_state_is_used_once(world: World) -> None:
    attempt = _to_provider_and_back(world)
    assert "/consent" in _finish(attempt).text
    again = attempt.browser.get(attempt.callback_url)
    assert again.status_code == 400  # the interaction pages' refusal, nothing resumed
    assert [e[:2] for e in _logins(world)] == [(ANCHOR, "ok")]  # one login, audited once


def test_parallel_answers_naming_one_state_finish_one_login(world: World) -> None:
    """The same answer sent ten times at once from the rightful browser: one consume wins."""
    from concurrent.futures import ThreadPoolExecutor

    attempt = _to_provider_and_back(world)
    cookies = {c.name: c.value or "" for c in attempt.browser.session.cookies}

    def answer(_: int) -> int:
        reply = requests.get(
            attempt.callback_url, cookies=cookies, allow_redirects=False, timeout=10
        )
        return reply.status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(answer, range(10)))
    assert statuses == [303] + [400] * 9
    assert [e[:2] for e in _logins(world)] == [(ANCHOR, "ok")]


def test_an_answer_in_another_browser_ends_the_login_there_and_says_it_began_elsewhere(
    world: World,
) -> None:
    """A relay: someone starts a login, sends the provider's link to the victim, who signs in
    at her bank; the answer lands in her browser, which did not start the login. It ends the
    login (fail closed, audited), so the code is worth nothing if it travels on to the browser
    that started it; her page says the login was started elsewhere."""
    attempt = _to_provider_and_back(world)
    victim = Browser(world.server)
    landed = victim.get(attempt.callback_url)
    assert landed.status_code == 400
    assert "Location" not in landed.headers
    assert "started on another device" in landed.text
    assert _outcome(world, _state(attempt.callback_url)) == {
        "status": "failed",
        "reason": "upstream_other_browser",
    }
    assert [e for e in _logins(world) if e[1] == "failed"] == [
        (ANCHOR, "failed", "upstream_other_browser")
    ]
    # the code travels on to the browser that started the login: worth nothing now
    assert attempt.browser.get(attempt.callback_url).status_code == 400


def test_an_answer_at_another_providers_redirect_uri_is_refused(world: World) -> None:
    attempt = _to_provider_and_back(world)
    mixed = attempt.callback_url.replace(f"/upstream/{ANCHOR}/", f"/upstream/{OTHER}/")
    text = _refused_with(world, attempt, "upstream_mix_up", mixed)
    assert "different identity provider" in text


def _logins(world: World) -> list[tuple[str, str, str | None]]:
    """The audit log's ``login`` entries so far: (anchor, outcome, reason)."""
    from trustanchor.audit.entries import Login, parse_entry

    audit = world.server.services.audit
    audit.integrate_pending()
    size = audit.latest_checkpoint().checkpoint.size
    entries = [parse_entry(item.entry) for item in audit.entries(0, size)]
    return [(e.anchor_id, e.outcome, e.reason) for e in entries if isinstance(e, Login)]


def _refused_with(world: World, attempt: Attempt, reason: str, url: str | None = None) -> str:
    """The answer is refused: the browser is back on the login page (no consent), the
    transaction failed with ``reason``, audited once, and is used up. Returns the login page's
    text."""
    page = _finish(attempt, url)
    assert 'action="/interaction/' in page.text and "/consent" not in page.text, page.text
    state = _state(attempt.callback_url)
    assert _outcome(world, state) == {"status": "failed", "reason": reason}
    assert attempt.browser.get(attempt.callback_url).status_code == 400  # used up
    assert [e for e in _logins(world) if e[1] == "failed"] == [(ANCHOR, "failed", reason)]
    return _failure_text(page)


def test_an_answer_for_an_anchor_suspended_meanwhile_is_refused(world: World) -> None:
    attempt = _to_provider_and_back(world)
    world.server.services.anchors.set_status(ANCHOR, "suspended", world.clock.now())
    _refused_with(world, attempt, "anchor_suspended")


def test_a_wrong_iss_in_the_answer_is_refused(world: World) -> None:
    attempt = _to_provider_and_back(world)
    wrong = _with(attempt.callback_url, iss="https://attacker.example")
    text = _refused_with(world, attempt, "response_issuer_mismatch", wrong)
    assert "did not come from the identity provider you chose" in text


def test_a_missing_iss_is_refused_when_the_provider_advertises_it(world: World) -> None:
    attempt = _to_provider_and_back(world)
    _refused_with(world, attempt, "response_issuer_missing", _with(attempt.callback_url, iss=None))


def test_access_denied_is_recorded_as_declined(world: World) -> None:
    attempt = _to_provider_and_back(world)
    denied = _with(attempt.callback_url, code=None, error="access_denied")
    text = _refused_with(world, attempt, "upstream_declined", denied)
    assert "declined the login at your identity provider" in text


def test_an_id_token_for_another_nonce_is_refused(world: World) -> None:
    attempt = _to_provider_and_back(world)
    # The transaction now remembers another nonce than the one the provider put in its token.
    with world.server.services.db.transaction() as conn:
        conn.execute(
            update(wallet_transactions)
            .where(wallet_transactions.c.id == _state(attempt.callback_url))
            .values(nonce="another-nonce-than-the-one-sent")
        )
    _refused_with(world, attempt, "id_token_nonce_mismatch")


def test_a_userinfo_for_another_subject_is_refused(world: World) -> None:
    world.provider.hooks.userinfo_sub = "someone-else"
    _refused_with(world, _to_provider_and_back(world), "userinfo_subject_mismatch")


def test_an_id_token_signed_with_an_unpublished_key_is_refused(world: World) -> None:
    world.provider.hooks.hide_signing_keys = True
    _refused_with(world, _to_provider_and_back(world), "unknown_provider_key")


def _ask_step_up(world: World, attempt: Attempt, consent: requests.Response) -> requests.Response:
    """The policy asks for a fresh high login within 60 s (as a large transfer's step-up does);
    returns the login page the person is sent back to."""
    from trustanchor.services import interaction

    interaction_id = urlsplit(consent.url).path.rsplit("/", 1)[-1]
    requirement = {"anchor_set_id": JP_SET, "assurance": "high", "max_age": 60}
    with world.server.services.db.transaction() as conn:
        assert interaction.step_up_asked(
            conn, interaction_id, requirement, at=world.server.services.clock.now()
        )
    login = attempt.browser.get(world.server.url(f"/interaction/{interaction_id}"))
    assert login.status_code == 200
    return login


def _step_up_at_provider(world: World, attempt: Attempt, login: requests.Response) -> Attempt:
    started = attempt.browser.submit(login.text, "/upstream", anchor=ANCHOR)
    assert started.status_code == 303
    sent = parse_qs(urlsplit(started.headers["Location"]).query)
    assert sent["max_age"] == ["60"]  # a fresh login, asked of the provider
    assert sent["acr_values"] == [PASSWORD_ACR]  # the provider's acr our config maps to high
    answer = attempt.browser.session.get(
        started.headers["Location"], allow_redirects=False, timeout=10
    )
    return Attempt(attempt.browser, login.text, answer.headers["Location"])


def test_a_step_up_asks_for_max_age_and_a_fresh_login_passes(world: World) -> None:
    attempt = _to_provider_and_back(world)
    login = _ask_step_up(world, attempt, _finish(attempt))
    again = _step_up_at_provider(world, attempt, login)
    assert "/consent" in _finish(again).text


def test_a_step_up_refuses_an_auth_time_older_than_max_age(world: World) -> None:
    attempt = _to_provider_and_back(world)
    login = _ask_step_up(world, attempt, _finish(attempt))
    world.provider.hooks.login_age = 3600  # the provider answers with a login an hour old
    _refused_with(world, _step_up_at_provider(world, attempt, login), "login_too_old")


# -- an account link through the upstream anchor -----------------------------------------------


def test_an_account_link_through_the_upstream_anchor(world: World) -> None:
    bank = Bank(world.server, world.payments)
    deposit = bank.register("taro-deposit", "bank_deposit", "Taro savings")
    wallet = bank.register("taro-wallet", "cbdc_wallet", "Taro wallet")
    pkce = Pkce.generate()
    attempt = _to_provider_and_back(
        world, url=bank.authorization_url([link(deposit, wallet)], pkce)
    )
    consent = _finish(attempt)
    text = parse(consent.text).text
    assert "Taro savings" in text and "Taro wallet" in text, text
    decision = attempt.browser.submit(consent.text, "/consent", decision="approve")
    assert decision.status_code == 303, decision.text
    answer = authorization_response(decision.headers["Location"], BANK_REDIRECT, world.server)
    tokens = bank.redeem(answer["code"], pkce)
    access = _claims(world, tokens["access_token"])
    assert access["authorization_details"] == [link(deposit, wallet)]
    assert access["anchor_set"] == JP_SET
    subject = _claims(world, tokens["id_token"])["sub"]
    accounts = {a["account_id"]: a for a in bank.api("GET", "/accounts").json()["accounts"]}
    assert accounts[deposit]["bound"] and accounts[deposit]["holder"] == subject
    assert accounts[wallet]["bound"] and accounts[wallet]["holder"] == subject
    links = bank.api("GET", "/links").json()["links"]
    assert [(x["deposit_account"], x["wallet_account"], x["holder"]) for x in links] == [
        (deposit, wallet, subject)
    ]


def _claims(world: World, token: str) -> dict[str, Any]:
    """A JWT's payload, verified against the service's published keys (joserfc)."""
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    jwks = KeySet.import_key_set(requests.get(world.server.url("/jwks"), timeout=5).json())
    return dict(jose_jwt.decode(token, jwks, algorithms=["ES256"]).claims)


# -- node-oidc-provider as the upstream provider -----------------------------------------------

REPO = Path(__file__).resolve().parents[2]
NODE_PEER = REPO / "bench" / "peer" / "node-oidc-provider"
NODE_SCRIPT = REPO / "tests" / "support" / "node_op" / "upstream_op.mjs"
NODE_ANCHOR = "node-idp"
NODE_CLIENT = "trustanchor-node"


def _node_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_PEER / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed: run `npm ci` in {NODE_PEER.relative_to(REPO)}"
    return None


@contextmanager
def _node_provider(port: int, client_jwks: dict[str, Any], redirect_uri: str) -> Iterator[str]:
    """Start tests/support/node_op/upstream_op.mjs on ``port``; yields its issuer."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "UPSTREAM_OP_PORT": str(port),
        "UPSTREAM_OP_MODULE_DIR": str(NODE_PEER),
        "UPSTREAM_CLIENT_ID": NODE_CLIENT,
        "UPSTREAM_REDIRECT_URI": redirect_uri,
        "UPSTREAM_CLIENT_JWKS": json.dumps(client_jwks),
    }
    process = subprocess.Popen(
        ["node", str(NODE_SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while True:
            line = process.stdout.readline()
            if "listening" in line:
                break
            if not line or time.monotonic() > deadline:
                pytest.fail(f"node-oidc-provider did not start: {line}{process.stdout.read()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def node_world(tmp_path: Path, database_url: str) -> Iterator[World]:
    missing = _node_missing()
    if missing is not None:
        if os.environ.get("TRUSTANCHOR_REQUIRE_NODE_OP") == "1":  # set by .ci/run after npm ci
            pytest.fail(f"node-oidc-provider required: {missing}")
        pytest.skip(missing)
    payments = _payments()
    op_port = free_port()
    issuer = f"http://127.0.0.1:{op_port}"
    declaration = _anchor(NODE_ANCHOR, issuer, NODE_CLIENT, "Node eKYC")
    declaration["oidc"] = {
        **declaration["oidc"],
        "scopes": ["openid", "profile"],
        "acr_levels": {"aal3": "high", "aal2": "substantial"},
        # The Digital Agency's convention: the assertion's aud is the token endpoint.
        "assertion_audience": "token_endpoint",
        "par": "always",
        "verified_claims": False,  # plain claims, the Digital Agency style
    }
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[declaration],
        clients=_clients(payments),
        overrides=FETCHER,
    )
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    clock = ShiftableClock()
    with running_server(settings, clock=clock) as server:
        jwks = requests.get(server.url(f"/upstream/{NODE_ANCHOR}/jwks.json"), timeout=5).json()
        callback = server.url(f"/upstream/{NODE_ANCHOR}/callback")
        with _node_provider(op_port, jwks, callback):
            yield World(server, None, payments, clock)  # type: ignore[arg-type]


def test_login_through_node_oidc_provider_with_par_and_token_endpoint_audience(
    node_world: World,
) -> None:
    world = node_world
    client = _rp(world)
    dpop_key = _dpop()
    auth_request = client.authorization_request(scope="openid profile", dpop_key=dpop_key)
    browser = Browser(world.server)
    page = browser.follow(browser.get(str(client.pushed_authorization_request(auth_request).uri)))
    started = browser.submit(page.text, "/upstream", anchor=NODE_ANCHOR)
    assert started.status_code == 303, started.text
    sent = parse_qs(urlsplit(started.headers["Location"]).query)
    assert "request_uri" in sent and "nonce" not in sent  # pushed (RFC 9126), not in the URL
    url = started.headers["Location"]
    for _ in range(10):  # the provider's own login and consent interactions, then back to us
        answer = browser.session.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code in (302, 303), answer.text
        url = urljoin(url, answer.headers["Location"])
        if url.startswith(world.server.issuer):
            break
    assert url.startswith(world.server.url(f"/upstream/{NODE_ANCHOR}/callback?"))
    assert parse_qs(urlsplit(url).query)["iss"]  # RFC 9207, advertised by the provider
    consent = browser.follow(browser.get(url))
    assert "Sato H." in parse(consent.text).text, consent.text
    decision = browser.submit(consent.text, "/consent", decision="approve")
    response = auth_request.validate_callback(decision.headers["Location"])
    token = client.authorization_code(response, dpop_key=dpop_key, validate=False)
    assert _claims(world, str(token.id_token))["acr"] == "urn:trustanchor:acr:high"  # aal3
    assert client.userinfo(token)["given_name"] == "Hanako"


# -- trustanchor init ------------------------------------------------------------------------


def test_init_makes_each_upstream_key_once_and_a_start_without_one_says_so(
    tmp_path: Path, database_url: str
) -> None:
    from support import templates

    from trustanchor.bootstrap import initialise
    from trustanchor.storage.database import Database

    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[_anchor(ANCHOR, "https://id.bank.example", CLIENT_AT_OP, "Test Bank ID")],
    )
    settings = dataclasses.replace(settings, anchor_sets=tuple(ANCHOR_SETS))
    templates.migrated(database_url)
    db = Database(database_url)
    try:
        made = initialise(settings, db, now=int(time.time()), generate_keys=True)
        assert any(f"upstream client key for anchor {ANCHOR}" in m for m in made), made
        path = Path(settings.service.keys_dir) / "upstream" / f"{ANCHOR}.private.jwk"
        first = path.read_bytes()
        again = initialise(settings, db, now=int(time.time()), generate_keys=True)
        assert not any("upstream client key" in m for m in again)
        assert path.read_bytes() == first  # kept: the provider registered this one
        path.unlink()
        missing = initialise(settings, db, now=int(time.time()), generate_keys=False)
        assert any(f"anchor {ANCHOR}: no upstream client key" in m for m in missing), missing
        assert not path.exists()  # a start without key generation makes none
    finally:
        db.dispose()
