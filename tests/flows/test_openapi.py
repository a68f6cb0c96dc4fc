"""Issue 14: the OpenAPI 3.1 description of the accounts, links, admin and audit APIs
(``/openapi.json``, trustanchor/web/openapi.json) is valid, describes exactly the routes the
service has, and holds when a property-based fuzzer (schemathesis) drives those APIs on a live
server: no 5xx, and every answer's status, content type, headers and body as described.

The live server is the app on werkzeug's threaded server (support/server.py) on a throwaway
SQLite database, with DPoP nonces required, seeded with accounts, a link made through a real
login, audit entries under a checkpoint and an audit key rotation. The fuzzer's auth hook
(:class:`DpopAuth`, applied as each request is sent) gets a DPoP-bound client_credentials token
for the scope each API needs (private_key_jwt, retrying once with the token endpoint's nonce),
signs a fresh proof for the request (htm, htu, ath, the APIs' latest nonce) and retries once
with the server's ``DPoP-Nonce`` when the answer is ``use_dpop_nonce``. Then workflows follow
the description's links (register an account, read it, close it...). Examples per operation
are bounded and the runs derandomized (fixed seed), so it fits CI and does not flake."""

from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
import requests.auth
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlalchemy import select
from support.ecosystem import Party
from support.payments import ANCHOR_SETS, JP_HIGH, Bank, Holder, Payments, link
from support.rp import DpopKey, Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings
from support.service_process import running_service

from trustanchor.clock import SystemClock
from trustanchor.services.key_changes import rotate_audit_key
from trustanchor.storage.tables import audit_leaves
from trustanchor.web import openapi
from trustanchor.web.app import create_app

API_BLUEPRINTS = {"accounts_api", "admin_api", "audit_api"}
OPERATOR = Party("operator")
AUDITOR = Party("auditor")
SCOPES = {"/admin/": "admin", "/audit/": "audit"}  # anything else: accounts
MAX_EXAMPLES = 25
SEED = 14


def machine_client(who: Party, scope: str) -> dict[str, Any]:
    return {
        "client_id": who.client_id,
        "client_name": who.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": who.jwks,
        "grant_types": ["client_credentials"],
        "scope": scope,
    }


# -- the DPoP side of a machine client ------------------------------------------------------------


@dataclass
class DpopClient:
    """A confidential client calling the APIs with DPoP-bound tokens: one DPoP key, one token
    per scope, and the latest nonce each side handed out (RFC 9449 §8 and §9: the token
    endpoint's and the APIs' nonces are apart; the first API call learns its nonce from a
    ``use_dpop_nonce`` answer)."""

    rp: RelyingParty
    key: DpopKey = field(default_factory=DpopKey)
    token_nonce: str | None = None
    nonce: str | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    def proof(
        self, method: str, url: str, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        claims = {"nonce": nonce} if nonce is not None else None
        htu = url.split("?", 1)[0]
        return self.key.proof(
            method, htu, iat=int(time.time()), access_token=access_token, claims=claims
        )

    def note(self, response: requests.Response) -> None:
        """Keep the nonce an API answer hands out, for the next proof."""
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self.nonce = nonce

    def token(self, scope: str) -> str:
        """A DPoP-bound client_credentials token for ``scope`` (asked once per scope)."""
        if scope not in self.tokens:
            url = self.rp.server.url("/token")
            grant = {"grant_type": "client_credentials", "scope": scope}
            response = self.rp.post("/token", grant, dpop=self.proof("POST", url))
            if response.status_code == 400 and response.json()["error"] == "use_dpop_nonce":
                self.token_nonce = response.headers["DPoP-Nonce"]
                proof = self.proof("POST", url, nonce=self.token_nonce)
                response = self.rp.post("/token", grant, dpop=proof)
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["token_type"] == "DPoP", body
            self.token_nonce = response.headers.get("DPoP-Nonce", self.token_nonce)
            self.tokens[scope] = str(body["access_token"])
        return self.tokens[scope]


@dataclass
class Live:
    server: RunningServer
    clients: dict[str, DpopClient]  # by scope
    account_ids: list[str]
    link_id: str
    nonce_retries: int = 0
    statuses: dict[str, Counter[int]] = field(default_factory=dict)  # by operation
    workflow_steps: Counter[str] = field(default_factory=Counter)  # "METHOD path status"

    def client_for(self, path: str) -> tuple[DpopClient, str]:
        scope = next((s for prefix, s in SCOPES.items() if path.startswith(prefix)), "accounts")
        return self.clients[scope], scope


_live: Live | None = None  # the module's live server, for the auth hook


def _seed(server: RunningServer, payments: Payments) -> tuple[list[str], str]:
    """Accounts of the bank, one link made through a real login and consent, audit entries
    covered by a checkpoint."""
    bank = Bank(server, payments)
    deposit = bank.register("0001-234-5678901", "bank_deposit", "Savings ****8901")
    wallet = bank.register("wallet-42", "cbdc_wallet", "CBDC wallet")
    kyc = {"family_name": "山田", "given_name": "太郎", "birthdate": "1990-04-01"}
    spare = bank.register("0001-234-0000001", "bank_deposit", "普通預金 ****0001", kyc=kyc)
    person = Holder(server, payments, "hanako")
    pkce = Pkce.generate()
    consent = person.log_in(
        person.open(bank.authorization_url([link(deposit, wallet)], pkce)), JP_HIGH
    )
    bank.redeem(person.decide(consent, "approve")["code"], pkce)
    [row] = bank.api("GET", "/links").json()["links"]
    settings = server.settings
    clock = SystemClock()
    # An audit key rotation: /audit/keys then describes the new key's introduction.
    rotate_audit_key(
        server.services.db,
        settings.service.keys_dir,
        name=settings.audit_origin,
        now=clock.now(),
        clock=clock,
    )
    server.services.audit.integrate_pending()
    return [deposit, wallet, spare], str(row["link_id"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A live server on a throwaway SQLite database, DPoP nonces required."""
    global _live
    tmp_path = tmp_path_factory.mktemp("openapi")
    payments = Payments(
        extra_clients=[machine_client(OPERATOR, "admin"), machine_client(AUDITOR, "audit")]
    )
    settings_ = test_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'trustanchor.db'}",
        port=free_port(),
        anchors=[a.declaration() for a in payments.anchors.values()],
        clients=payments.clients(),
        overrides={"dpop": {"require_nonce": True}},
    )
    settings_ = dataclasses.replace(settings_, anchor_sets=tuple(ANCHOR_SETS))
    with running_server(settings_) as server:
        clock = SystemClock()
        clients = {
            scope: DpopClient(RelyingParty(server, party, clock, redirect_uri=""))
            for scope, party in (
                ("accounts", payments.bank),
                ("admin", OPERATOR),
                ("audit", AUDITOR),
            )
        }
        account_ids, link_id = _seed(server, payments)
        _live = Live(server, clients, account_ids, link_id)
        try:
            yield _live
        finally:
            _live = None


def served_document(live: Live) -> dict[str, Any]:
    response = requests.get(live.server.url(openapi.PATH), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


# -- the document ---------------------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_3_1(live: Live) -> None:
    document = served_document(live)
    validate(document)  # raises on any problem
    assert document["openapi"].startswith("3.1.")
    assert document["servers"] == [{"url": live.server.issuer}]
    flow = document["components"]["securitySchemes"]["clientCredentials"]["flows"]
    assert flow["clientCredentials"]["tokenUrl"] == live.server.url("/token")
    packaged = openapi.packaged()
    assert document["paths"] == packaged["paths"]
    assert document["components"]["schemas"] == packaged["components"]["schemas"]
    assert document["components"]["responses"] == packaged["components"]["responses"]


def _described(document: dict[str, Any]) -> set[tuple[str, str]]:
    verbs = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in verbs
    }


def test_every_api_route_is_described_and_nothing_else(live: Live) -> None:
    app = create_app(services=live.server.services, audit_integrator=False)
    routes = {
        (method, re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in API_BLUEPRINTS
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert len(routes) == 19  # 16 paths
    assert _described(served_document(live)) == routes


def test_every_operation_names_its_scope_and_every_refusal(live: Live) -> None:
    document = served_document(live)
    for path, item in document["paths"].items():
        scope = next((s for prefix, s in SCOPES.items() if path.startswith(prefix)), "accounts")
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["security"] == [{"DPoP": [scope]}, {"Bearer": [scope]}], path
            assert {"400", "401", "403", "503"} <= set(operation["responses"]), (method, path)


# -- the fuzzer -----------------------------------------------------------------------------------


class DpopAuth(requests.auth.AuthBase):
    """The fuzzer's auth hook, applied to each request as it is sent: the DPoP-bound token of
    the client for the operation's scope (issued on first use) and a fresh proof for exactly
    this request (htm, htu, ath, the latest nonce). An answer ``use_dpop_nonce`` is retried
    once with the nonce it handed out (RFC 9449 §8), as a client library does."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert _live is not None and request.url is not None and request.method is not None
        client, scope = _live.client_for(urlsplit(request.url).path)
        token = client.token(scope)
        request.headers["Authorization"] = f"DPoP {token}"
        request.headers["DPoP"] = client.proof(request.method, request.url, token, client.nonce)
        request.register_hook("response", self._retry_with_nonce)
        return request

    def _retry_with_nonce(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        assert _live is not None
        sent = response.request
        client, scope = _live.client_for(urlsplit(sent.url or "").path)
        client.note(response)
        challenge = response.headers.get("WWW-Authenticate", "")
        if response.status_code != 401 or "use_dpop_nonce" not in challenge:
            return response
        _live.nonce_retries += 1
        response.content  # noqa: B018 - read the refused answer before reusing the connection
        response.close()
        again = sent.copy()
        token = client.token(scope)
        again.headers["DPoP"] = client.proof(
            again.method or "", again.url or "", token, client.nonce
        )
        retried = response.connection.send(again, **kwargs)  # adapter level: no hook, no loop
        retried.history.append(response)
        retried.request = again
        client.note(retried)
        return retried


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    }
)
# The packaged description (test_the_served_document_is_valid_openapi_3_1 checks that the
# service serves these paths and components); the live server's URL is given per call.
schema = schemathesis.openapi.from_dict(openapi.packaged(), config=CONFIG)
schema.auth.set_from_requests(DpopAuth())

CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# The fuzzer's cases also check what they were made to probe: a request the description says is
# invalid is refused (4xx), a method a path does not have is 405 with Allow, a request without
# its credentials (or with made-up ones) is 401/403, a missing required header is refused.
FUZZ_CHECKS = [
    *CHECKS,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
    missing_required_header,
]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_apis_answer_as_described_under_fuzzing(case: schemathesis.Case, live: Live) -> None:
    response = case.call(base_url=live.server.issuer, timeout=10)
    label = case.operation.label
    live.statuses.setdefault(label, Counter())[response.status_code] += 1
    case.validate_response(response, checks=FUZZ_CHECKS)


def test_the_fuzzer_got_past_authentication(live: Live) -> None:
    """After the fuzzing above (in this module's order): every operation was answered with
    something else than 401 (the auth hook's tokens and proofs were accepted), most with 2xx."""
    if not live.statuses:
        pytest.skip("the fuzzing test did not run")
    print({label: dict(counts) for label, counts in sorted(live.statuses.items())})
    print("nonce retries:", live.nonce_retries)
    assert len(live.statuses) == 19
    for label, counts in live.statuses.items():
        assert set(counts) - {401}, label
    assert live.nonce_retries >= 1  # the first call learnt the APIs' nonce from a refusal


# -- what the fuzzer found, and refusals it does not try -------------------------------------------


def _call(
    live: Live, method: str, path: str, *, client: DpopClient | None = None, htu: str | None = None
) -> requests.Response:
    """One API request with the client's DPoP-bound token and a proof for ``htu`` (default: the
    URL as sent), the nonce learnt first."""
    client = client or live.clients["accounts"]
    scope = next((s for prefix, s in SCOPES.items() if path.startswith(prefix)), "accounts")
    token = client.token(scope)
    url = live.server.url(path)
    for _ in range(2):
        proof = client.proof(method, htu or url, token, client.nonce)
        response = requests.request(
            method, url, headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=10
        )
        client.note(response)
        if "use_dpop_nonce" not in response.headers.get("WWW-Authenticate", ""):
            break
    return response


@pytest.mark.parametrize(
    ("path", "htu_path"),
    [
        ("/accounts/%C3%A9", "/accounts/%c3%a9"),  # non-ASCII: the escape's case does not matter
        ("/accounts/a%2Cb", "/accounts/a,b"),  # an escaped and a plain sub-delimiter
        ("/accounts/a,b", "/accounts/a%2Cb"),
        ("/audit/entries/by-ref/%E2%80%AE", "/audit/entries/by-ref/%E2%80%AE"),
    ],
)
def test_a_proof_for_a_percent_encoded_path_is_accepted(
    live: Live, path: str, htu_path: str
) -> None:
    """Found by the fuzzer: the APIs compared the proof's htu with the *decoded* path, so a path
    with any escaped character could never be authenticated (401 invalid_dpop_proof for a proof
    that was right) instead of the API's own answer."""
    method = "PUT" if path.endswith("/approval") else "GET"
    client = live.clients["audit" if path.startswith("/audit/") else "accounts"]
    response = _call(live, method, path, client=client, htu=live.server.url(htu_path))
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


def test_a_proof_for_another_path_is_still_refused(live: Live) -> None:
    response = _call(live, "GET", "/accounts/a%2Cb", htu=live.server.url("/accounts/a%2Cc"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"


def test_every_operation_refuses_a_request_without_a_token(live: Live) -> None:
    """The fuzzer always authenticates; without a token every operation answers 401 with a
    challenge naming its scope, as described."""
    for operation in schema.get_all_operations():
        api = operation.ok()
        path = re.sub(r"{[a-z_]+}", "x", api.path)
        response = requests.request(api.method.upper(), live.server.url(path), timeout=10)
        assert response.status_code == 401, (api.label, response.text)
        assert response.json()["error"] == "invalid_token"
        scope = next((s for prefix, s in SCOPES.items() if path.startswith(prefix)), "accounts")
        assert (
            response.headers["WWW-Authenticate"] == f'Bearer scope="{scope}", DPoP scope="{scope}"'
        )
        case = api.Case(path_parameters={k: "x" for k in re.findall(r"{([a-z_]+)}", api.path)})
        case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    "path",
    [
        "/audit/checkpoint/9999999999999999999",
        "/audit/checkpoint/9223372036854775808",
        "/audit/entries?start=0&end=9999999999999999999",
        "/audit/proof/inclusion?index=9223372036854775807&size=9999999999999999999",
        "/audit/proof/consistency?old=0&new=9999999999999999999",
    ],
)
def test_audit_numbers_beyond_the_databases_integers_are_refused(live: Live, path: str) -> None:
    """Found with the description's bounds: 19 digits passed the parameter check, and a number
    above 2**63 - 1 overflowed in SQLite's driver (500)."""
    response = _call(live, "GET", path, client=live.clients["audit"])
    assert response.status_code in (400, 404), response.text
    refusals = {"invalid_request", "page_too_large", "beyond_checkpoint", "bad_range"}
    assert response.json()["error"] in refusals


def test_answers_about_real_objects_match_the_description(live: Live) -> None:
    """The fuzzer's identifiers are random; these are the seeded ones (an account, a link made
    through a login, an anchor set, audit entries and the rotated audit key): each answer is
    checked against the description like the fuzzer's."""
    audit = live.clients["audit"]
    size = live.server.services.audit.latest_checkpoint().checkpoint.size
    account = live.account_ids[0]
    calls = [
        ("GET", "/accounts/{account_id}", {"account_id": account}, {}, 200),
        ("GET", "/links", {}, {}, 200),
        ("PUT", "/links/{link_id}/approval", {"link_id": live.link_id}, {}, 204),
        ("DELETE", "/links/{link_id}/approval", {"link_id": live.link_id}, {}, 204),
        ("DELETE", "/links/{link_id}/approval", {"link_id": live.link_id}, {}, 404),
        ("GET", "/admin/anchor-sets/{set_id}", {"set_id": "jp-cbdc"}, {}, 200),
        ("GET", "/audit/checkpoint/{size}", {"size": str(size)}, {"format": "json"}, 200),
        ("GET", "/audit/checkpoint/{size}", {"size": str(size)}, {}, 200),
        ("GET", "/audit/entries", {}, {"start": "0", "end": str(size)}, 200),
        ("GET", "/audit/proof/inclusion", {}, {"index": "0", "size": str(size)}, 200),
        ("GET", "/audit/proof/consistency", {}, {"old": "1", "new": str(size)}, 200),
        ("GET", "/audit/keys", {}, {}, 200),
    ]
    with live.server.services.db.reader() as conn:
        ref = conn.execute(
            select(audit_leaves.c.ref)
            .where(audit_leaves.c.ref.is_not(None), audit_leaves.c.tree_index < size)
            .limit(1)
        ).scalar_one()
    calls.append(("GET", "/audit/entries/by-ref/{ref}", {"ref": ref}, {}, 200))
    for method, template, path_parameters, query, status in calls:
        path = template.format(**path_parameters)
        if query:
            path += "?" + urlencode(query)
        client = audit if path.startswith("/audit/") else None
        if path.startswith("/admin/"):
            client = live.clients["admin"]
        response = _call(live, method, path, client=client)
        assert response.status_code == status, (method, path, response.text)
        case = schema[template][method].Case(path_parameters=path_parameters, query=query)
        case.validate_response(response, checks=CHECKS)
    keys = _call(live, "GET", "/audit/keys", client=audit).json()
    assert [("introduced" in key) for key in keys["audit_keys"]] == [False, True]
    listed = _call(live, "GET", f"/accounts/{account}").json()
    assert listed["account_id"] == account and listed["bound"] is True


# -- workflows: the description's links ------------------------------------------------------------


class Workflow(schema.as_state_machine()):
    """Sequences the description's links allow (register an account, then read or close it; list
    the links, then approve, withdraw or remove the first; list the anchor sets, then read one
    or replace its policy), each answer checked as the fuzzer checks it."""

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        assert _live is not None
        return {"base_url": _live.server.issuer, "timeout": 10}

    def validate_response(
        self,
        response: Any,
        case: schemathesis.Case,
        additional_checks: Any = None,
        **kwargs: Any,
    ) -> None:
        assert _live is not None
        _live.workflow_steps[f"{case.method} {case.operation.path} {response.status_code}"] += 1
        case.validate_response(response, checks=FUZZ_CHECKS, transport_kwargs=kwargs)


@pytest.mark.slow
def test_api_workflows_answer_as_described(live: Live) -> None:
    """Last in this module: a workflow may remove the seeded link."""
    Workflow.run(
        settings=settings(
            max_examples=20,
            stateful_step_count=5,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    reached = set(live.workflow_steps)
    # The links were followed to real objects: a registered account read and closed.
    assert {"GET /accounts/{account_id} 200", "DELETE /accounts/{account_id} 204"} <= reached


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_trustanchor_serve_serves_the_description_and_takes_encoded_paths(
    tmp_path: Path,
) -> None:
    """The same under ``trustanchor serve`` (granian, the ASGI bridge): the packaged description
    is served, and PATH_INFO keeps a path's octets, even those that are not UTF-8 (werkzeug's
    development server replaces them), so a proof for them is accepted."""
    bank = Party("serve-bank")
    with running_service(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'trustanchor.db'}",
        clients=[machine_client(bank, "accounts")],
        workers=1,
        overrides={"dpop": {"require_nonce": True}},
    ) as service:
        served = requests.get(service.url(openapi.PATH), timeout=10)
        assert served.status_code == 200
        document = served.json()
        validate(document)
        assert document["paths"] == openapi.packaged()["paths"]
        assert document["servers"] == [{"url": service.issuer}]
        client = DpopClient(RelyingParty(service, bank, SystemClock(), redirect_uri=""))  # type: ignore[arg-type]
        token = client.token("accounts")
        for path, htu_path in [
            ("/accounts/%C3%A9", "/accounts/%c3%a9"),
            ("/accounts/a%2Cb", "/accounts/a,b"),
            ("/accounts/%FF", "/accounts/%ff"),
        ]:
            for _ in range(2):  # the first call learns the APIs' nonce
                proof = client.proof("GET", service.url(htu_path), token, client.nonce)
                answer = requests.get(
                    service.url(path),
                    headers={"Authorization": f"DPoP {token}", "DPoP": proof},
                    timeout=10,
                )
                client.note(answer)
                if answer.status_code != 401:
                    break
            assert answer.status_code == 404, (path, answer.text)
