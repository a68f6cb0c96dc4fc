"""The demo eKYC bank's OpenID Provider (trustanchor/demo/ekyc_op.py) over real HTTP, driven by
a relying-party library nobody here wrote (requests-oauth2client: discovery, PAR, PKCE S256,
state, nonce, RFC 9207 ``iss``, ``private_key_jwt``, ID token validation), the ID token checked
again with joserfc against the provider's published JWKS.

The provider fetches the relying party's public keys from its registered ``jwks_uri`` at use
time, as it does for the trustanchor service; here the test's relying party publishes them on
the same test server.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet
from requests_oauth2client import (
    AuthorizationRequest,
    AuthorizationResponse,
    OAuth2Client,
    PrivateKeyJwt,
)
from requests_oauth2client.exceptions import InvalidClient, InvalidGrant
from support.server import free_port, serving

from trustanchor.demo import ekyc_op, page_context
from trustanchor.demo.ekyc_customers import load_customers
from trustanchor.demo.prepare import prepare
from trustanchor.demo.site import DemoSite
from trustanchor.jose.jwk import thumbprint

DEMO = Path(ekyc_op.__file__).parent
VERIFIED_REQUEST = {
    "userinfo": {
        "verified_claims": {
            "verification": {"trust_framework": None},
            "claims": {"family_name": None, "given_name": None, "birthdate": None},
        }
    }
}


@dataclass
class RelyingParty:
    client_id: str
    redirect_uri: str
    private_jwk: dict[str, Any]


@dataclass
class World:
    site: DemoSite
    issuer: str
    rp: RelyingParty
    other_rp: RelyingParty
    op: ekyc_op.EkycProvider

    def client(self, rp: RelyingParty | None = None, *, aud: str | None = None) -> OAuth2Client:
        rp = rp or self.rp
        return OAuth2Client.from_discovery_endpoint(
            issuer=self.issuer,
            auth=PrivateKeyJwt(rp.client_id, rp.private_jwk, alg="ES256", aud=aud),
            redirect_uri=rp.redirect_uri,
            id_token_signed_response_alg="ES256",
            testing=True,  # http on loopback
        )

    def op_jwks(self) -> KeySet:
        return KeySet.import_key_set(requests.get(f"{self.issuer}/jwks.json", timeout=5).json())


def new_rp(base: str, name: str) -> tuple[RelyingParty, dict[str, Any]]:
    key = ECKey.generate_key("P-256")
    public = key.as_dict(private=False)
    kid = thumbprint(public)
    rp = RelyingParty(
        client_id=name,
        redirect_uri=f"{base}/{name}/callback",
        private_jwk={**key.as_dict(private=True), "kid": kid, "alg": "ES256"},
    )
    return rp, {"keys": [{**public, "kid": kid, "alg": "ES256", "use": "sig"}]}


def op_app(site: DemoSite, op_factory: Any, rp_jwks: dict[str, dict[str, Any]]) -> Flask:
    """The provider's blueprint in a small app with the parties app's page context."""
    app = Flask(__name__, template_folder=str(DEMO / "templates"), static_folder=None)
    app.extensions["demo_site"] = site
    page_context.install(app)
    app.add_url_rule("/", "index", lambda: "demo parties")
    app.add_url_rule("/static/<path:name>", "static_file", lambda name: "")
    app.register_blueprint(ekyc_op.blueprint, url_prefix=ekyc_op.ISSUER_PATH)
    app.extensions["demo_ekyc_op"] = op_factory()

    @app.get("/<name>/jwks.json")
    def rp_keys(name: str) -> Any:
        return rp_jwks[name]

    return app


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    keys_dir = tmp_path / "keys"
    prepare(keys_dir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site = DemoSite(
        service_url="http://127.0.0.1:9", parties_url=base, keys_dir=keys_dir, state_dir=tmp_path
    )
    rp, rp_keys = new_rp(base, "rp-one")
    other, other_keys = new_rp(f"http://localhost:{port}", "rp-two")  # another sector (host)
    clients = tuple(
        ekyc_op.RegisteredClient(
            client_id=party.client_id,
            client_name=party.client_id,
            redirect_uris=(party.redirect_uri,),
            jwks_uri=f"{base}/{party.client_id}/jwks.json",
        )
        for party in (rp, other)
    )
    holder: dict[str, ekyc_op.EkycProvider] = {}

    def factory() -> ekyc_op.EkycProvider:
        holder["op"] = ekyc_op.EkycProvider(site, clients=clients)
        return holder["op"]

    app = op_app(site, factory, {"rp-one": rp_keys, "rp-two": other_keys})
    with serving(app, port):
        yield World(site, f"{base}{ekyc_op.ISSUER_PATH}", rp, other, holder["op"])


# -- the browser at the bank ----------------------------------------------------------------------


def pending_of(html: str) -> str:
    match = re.search(r'name="pending" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def sign_in(
    world: World,
    browser: requests.Session,
    url: str,
    *,
    login_id: str = "hanako",
    password: str = "hanako-ekyc-demo",  # noqa: S107 (the demo bank shows it on its page)
    decision: str = "approve",
) -> str:
    """Open the authorization URL, sign in, decide; the redirect back (Location)."""
    page = browser.get(url, timeout=10)
    assert page.status_code == 200, page.text
    assert "hanako-ekyc-demo" in page.text  # the demo sign-ins are shown on the page
    pending = pending_of(page.text)
    consent = browser.post(
        f"{world.issuer}/login",
        data={"pending": pending, "login_id": login_id, "password": password},
        timeout=10,
    )
    assert consent.status_code == 200, consent.text
    back = browser.post(
        f"{world.issuer}/consent",
        data={"pending": pending, "decision": decision},
        allow_redirects=False,
        timeout=10,
    )
    assert back.status_code == 302, back.text
    return back.headers["Location"]


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# -- discovery ------------------------------------------------------------------------------------


def test_discovery_names_the_issuer_its_endpoints_and_what_it_requires(world: World) -> None:
    meta = requests.get(f"{world.issuer}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == world.issuer == world.site.party("/ekyc-bank")
    for name, path in (
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("pushed_authorization_request_endpoint", "/par"),
    ):
        assert meta[name] == world.issuer + path
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["response_types_supported"] == ["code"]
    assert meta["subject_types_supported"] == ["pairwise"]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert meta["acr_values_supported"] == [ekyc_op.ACR_EKYC]
    assert meta["claims_parameter_supported"] is True
    assert meta["request_uri_parameter_supported"] is False
    assert meta["verified_claims_supported"] is True
    assert meta["trust_frameworks_supported"] == ["jp_aml"]
    jwks = requests.get(meta["jwks_uri"], timeout=5).json()
    assert [key["kty"] for key in jwks["keys"]] == ["EC"]
    assert all("d" not in key for key in jwks["keys"])


# -- the code flow, by an independent relying party -----------------------------------------------


def complete(
    world: World, azr: Any, *, pushed_from: AuthorizationRequest | None = None
) -> tuple[AuthorizationResponse, str]:
    """Sign in at the bank; the client checks the response (state, ``iss``) against its request
    (for a pushed one, against the request it pushed)."""
    location = sign_in(world, requests.Session(), str(azr.uri))
    return (pushed_from or azr).validate_callback(location), location


@pytest.mark.parametrize("pushed", [True, False], ids=["par", "plain"])
def test_code_flow_with_pkce_id_token_and_verified_claims(world: World, pushed: bool) -> None:
    client = world.client()
    original: AuthorizationRequest = client.authorization_request(
        scope="openid profile", claims=json.dumps(VERIFIED_REQUEST)
    )
    assert original.code_challenge_method == "S256"
    azr: Any = original
    if pushed:
        azr = client.pushed_authorization_request(original)
        assert str(azr.request_uri).startswith("urn:ietf:params:oauth:request_uri:")
    response, location = complete(world, azr, pushed_from=original if pushed else None)
    assert query(location)["iss"] == world.issuer
    token = client.authorization_code(response)  # validates the ID token (sig, iss, aud, nonce)
    # The same ID token, checked again with joserfc against the published JWKS.
    decoded = jose_jwt.decode(str(token.id_token), world.op_jwks(), algorithms=["ES256"])
    claims = decoded.claims
    assert decoded.header["alg"] == "ES256"
    assert claims["iss"] == world.issuer
    assert claims["aud"] == world.rp.client_id
    assert claims["nonce"] == original.nonce
    assert claims["acr"] == ekyc_op.ACR_EKYC
    assert abs(claims["auth_time"] - claims["iat"]) < 60
    assert "at_hash" in claims
    assert "family_name" not in claims  # claims are at UserInfo
    info = client.userinfo(token)
    assert info["sub"] == claims["sub"]
    assert info["family_name"] == "山田"
    assert info["birthdate"] == "1988-05-14"
    verified = info["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_aml"
    assert verified["verification"]["evidence"][0]["type"] == "document"
    assert verified["claims"] == {
        "family_name": "山田",
        "given_name": "花子",
        "birthdate": "1988-05-14",
    }


def test_verified_claims_only_when_asked_and_only_under_an_accepted_framework(
    world: World,
) -> None:
    client = world.client()
    plain = client.authorization_request(scope="openid profile")
    token = client.authorization_code(complete(world, plain)[0])
    assert "verified_claims" not in client.userinfo(token)
    other_framework = {
        "userinfo": {
            "verified_claims": {
                "verification": {"trust_framework": {"value": "eidas"}},
                "claims": {"family_name": None},
            }
        }
    }
    azr = client.authorization_request(scope="openid", claims=json.dumps(other_framework))
    token = client.authorization_code(complete(world, azr)[0])
    assert "verified_claims" not in client.userinfo(token)


def test_subjects_are_pairwise_per_sector_and_stable_within_one(world: World) -> None:
    def sub(rp: RelyingParty) -> str:
        client = world.client(rp)
        azr = client.authorization_request(scope="openid")
        token = client.authorization_code(complete(world, azr)[0])
        return str(token.id_token.claims["sub"])

    first, again, elsewhere = sub(world.rp), sub(world.rp), sub(world.other_rp)
    assert first == again
    assert first != elsewhere


def test_assertion_audience_may_be_the_issuer_or_the_token_endpoint(world: World) -> None:
    for aud in (world.issuer, f"{world.issuer}/token"):
        client = world.client(aud=aud)
        azr = client.authorization_request(scope="openid")
        assert client.authorization_code(complete(world, azr)[0]).id_token is not None
    client = world.client(aud="https://somebody-else.example")
    azr = client.authorization_request(scope="openid")
    with pytest.raises(InvalidClient):
        client.authorization_code(complete(world, azr)[0])


# -- refusals -------------------------------------------------------------------------------------


def authorize_url(world: World, **params: str) -> str:
    base = {
        "response_type": "code",
        "client_id": world.rp.client_id,
        "redirect_uri": world.rp.redirect_uri,
        "scope": "openid",
        "state": "s-123",
        "nonce": "n-123",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    base.update(params)
    return f"{world.issuer}/authorize?" + urlencode({k: v for k, v in base.items() if v})


def test_pkce_is_required_and_plain_is_refused_with_iss_on_the_error(world: World) -> None:
    for params in (
        {"code_challenge": "", "code_challenge_method": ""},
        {"code_challenge_method": "plain"},
    ):
        answer = requests.get(authorize_url(world, **params), allow_redirects=False, timeout=5)
        assert answer.status_code == 302
        back = query(answer.headers["Location"])
        assert back["error"] == "invalid_request"
        assert back["state"] == "s-123"
        assert back["iss"] == world.issuer


def test_nonce_is_required(world: World) -> None:
    answer = requests.get(authorize_url(world, nonce=""), allow_redirects=False, timeout=5)
    assert query(answer.headers["Location"])["error"] == "invalid_request"


def test_an_unregistered_redirect_uri_is_never_redirected_to(world: World) -> None:
    url = authorize_url(world, redirect_uri="http://127.0.0.1:9/attacker/callback")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 400
    assert "Location" not in answer.headers


def test_a_wrong_code_verifier_is_refused_and_burns_the_code(world: World) -> None:
    client = world.client()
    azr = client.authorization_request(scope="openid")
    response = complete(world, azr)[0]
    with pytest.raises(InvalidGrant):
        client.authorization_code(
            response.code, code_verifier="x" * 64, redirect_uri=world.rp.redirect_uri
        )
    with pytest.raises(InvalidGrant):
        client.authorization_code(response)


def test_a_code_is_redeemed_once(world: World) -> None:
    client = world.client()
    response = complete(world, client.authorization_request(scope="openid"))[0]
    client.authorization_code(response)
    with pytest.raises(InvalidGrant):
        client.authorization_code(response)


def test_a_code_is_redeemed_only_by_the_client_it_was_issued_to(world: World) -> None:
    client = world.client()
    response = complete(world, client.authorization_request(scope="openid"))[0]
    with pytest.raises(InvalidGrant):
        world.client(world.other_rp).authorization_code(
            response.code, code_verifier=response.code_verifier, redirect_uri=world.rp.redirect_uri
        )


def test_a_client_assertion_is_used_once(world: World) -> None:
    client = world.client()
    response = complete(world, client.authorization_request(scope="openid"))[0]
    assertion = PrivateKeyJwt(
        world.rp.client_id, world.rp.private_jwk, alg="ES256"
    ).client_assertion(f"{world.issuer}/token")
    form = {
        "grant_type": "authorization_code",
        "code": response.code,
        "redirect_uri": world.rp.redirect_uri,
        "code_verifier": response.code_verifier,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = requests.post(f"{world.issuer}/token", data=form, timeout=5)
    assert first.status_code == 200, first.text
    replay = requests.post(f"{world.issuer}/token", data=form, timeout=5)
    assert replay.status_code in (400, 401)
    assert replay.json()["error"] == "invalid_client"


def test_an_assertion_signed_with_another_key_is_refused(world: World) -> None:
    stranger = ECKey.generate_key("P-256")
    jwk = {**stranger.as_dict(private=True), "kid": world.rp.private_jwk["kid"]}
    client = OAuth2Client.from_discovery_endpoint(
        issuer=world.issuer,
        auth=PrivateKeyJwt(world.rp.client_id, jwk, alg="ES256"),
        redirect_uri=world.rp.redirect_uri,
        testing=True,
    )
    response = complete(world, world.client().authorization_request(scope="openid"))[0]
    with pytest.raises(InvalidClient):
        client.authorization_code(response)


def test_a_pushed_request_uri_is_used_once_and_only_by_its_client(world: World) -> None:
    client = world.client()
    par = client.pushed_authorization_request(client.authorization_request(scope="openid"))
    first = requests.get(str(par.uri), timeout=5)
    assert first.status_code == 200
    again = requests.get(str(par.uri), timeout=5)
    assert again.status_code == 400
    other = client.pushed_authorization_request(client.authorization_request(scope="openid"))
    forged = str(other.uri).replace(
        f"client_id={world.rp.client_id}", f"client_id={world.other_rp.client_id}"
    )
    assert requests.get(forged, timeout=5).status_code == 400


def test_a_pushed_request_needs_client_authentication(world: World) -> None:
    params = dict(parse_qs(urlsplit(authorize_url(world)).query))
    answer = requests.post(
        f"{world.issuer}/par", data={k: v[0] for k, v in params.items()}, timeout=5
    )
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] == "invalid_client"


def test_the_sign_in_belongs_to_the_browser_it_was_shown_to(world: World) -> None:
    azr = world.client().authorization_request(scope="openid")
    page = requests.Session().get(str(azr.uri), timeout=5)
    pending = pending_of(page.text)
    elsewhere = requests.Session()
    elsewhere.cookies.set(ekyc_op.BROWSER_COOKIE, "another-browser")
    answer = elsewhere.post(
        f"{world.issuer}/login",
        data={"pending": pending, "login_id": "hanako", "password": "hanako-ekyc-demo"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "hanako" not in answer.text.lower().split("<main")[1]


def test_wrong_passwords_end_the_sign_in(world: World) -> None:
    browser = requests.Session()
    azr = world.client().authorization_request(scope="openid")
    pending = pending_of(browser.get(str(azr.uri), timeout=5).text)
    for _ in range(ekyc_op.LOGIN_ATTEMPTS - 1):
        wrong = browser.post(
            f"{world.issuer}/login",
            data={"pending": pending, "login_id": "hanako", "password": "guess"},
            timeout=5,
        )
        assert wrong.status_code == 401
    last = browser.post(
        f"{world.issuer}/login",
        data={"pending": pending, "login_id": "hanako", "password": "guess"},
        timeout=5,
    )
    assert last.status_code == 400
    right = browser.post(
        f"{world.issuer}/login",
        data={"pending": pending, "login_id": "hanako", "password": "hanako-ekyc-demo"},
        timeout=5,
    )
    assert right.status_code == 400  # the sign-in is gone


def test_declining_sends_access_denied_with_iss(world: World) -> None:
    azr = world.client().authorization_request(scope="openid")
    location = sign_in(world, requests.Session(), str(azr.uri), decision="deny")
    back = query(location)
    assert back["error"] == "access_denied"
    assert back["iss"] == world.issuer
    assert back["state"] == azr.state


def test_userinfo_refuses_a_missing_or_unknown_token(world: World) -> None:
    assert requests.get(f"{world.issuer}/userinfo", timeout=5).status_code == 401
    answer = requests.get(
        f"{world.issuer}/userinfo", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert answer.status_code == 401


def test_every_demo_customer_is_a_demo_person_with_their_verified_name() -> None:
    for customer in load_customers():
        claims = customer.claims()
        assert claims["family_name"] == customer.person.family_name
        assert claims["birthdate"] == customer.person.birthdate
    assert json.dumps(load_customers()[0].verification_element())


def test_with_other_ports_the_anchor_names_the_provider_where_it_runs(tmp_path: Path) -> None:
    """The launcher's derived configuration (other ports) moves the anchor's issuer with the
    parties' app, or the service would look for the provider on the default port."""
    from trustanchor.demo.launcher import derive_config

    repo = Path(__file__).resolve().parents[2]
    target = derive_config(
        repo / "config" / "demo.toml", tmp_path, "http://127.0.0.1:9101/bank/callback", {}
    )
    raw = tomllib.loads(target.read_text(encoding="utf-8"))
    (anchor,) = [a for a in raw["anchors"] if a["id"] == ekyc_op.ANCHOR_ID]
    assert anchor["oidc"]["issuer"] == "http://127.0.0.1:9101/ekyc-bank"


def test_prompt_none_is_login_required_since_the_bank_keeps_no_session(world: World) -> None:
    answer = requests.get(authorize_url(world, prompt="none"), allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    back = query(answer.headers["Location"])
    assert back["error"] == "login_required"
    assert back["iss"] == world.issuer


def test_request_objects_are_refused(world: World) -> None:
    answer = requests.get(
        authorize_url(world, request="eyJhbGciOiJub25lIn0.e30."), allow_redirects=False, timeout=5
    )
    assert query(answer.headers["Location"])["error"] == "invalid_request"
