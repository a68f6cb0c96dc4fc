"""Issue 3, for auditors: a client_credentials client with the ``audit`` scope reads the log over
HTTP (checkpoints, entries, proofs, keys) after real token flows, the proofs verify with
``trustanchor.audit.merkle``, and the ``trustanchor audit`` CLI verifies an issued token from
files ``audit fetch`` downloaded. Other tokens get 403, no token 401; bad parameters 400/404.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from click.testing import CliRunner, Result
from support.ecosystem import BANK_REDIRECT, Ecosystem, Party
from support.person import Person
from support.rp import Pkce, RelyingParty
from support.server import RunningServer

from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.audit.merkle import leaf_hash, root, verify_consistency, verify_inclusion
from trustanchor.cli.main import cli
from trustanchor.clock import SystemClock

AUDITOR = Party("auditor")


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    return [
        {
            "client_id": AUDITOR.client_id,
            "client_name": "Test Auditor",
            "client_type": "confidential",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": AUDITOR.jwks,
            "grant_types": ["client_credentials"],
            "scope": "audit",
        }
    ]


def party(server: RunningServer, who: Party, redirect_uri: str = "") -> RelyingParty:
    return RelyingParty(server, who, SystemClock(), redirect_uri=redirect_uri)


def machine_token(rp: RelyingParty, scope: str | None = None) -> str:
    params = {"grant_type": "client_credentials"}
    if scope is not None:
        params["scope"] = scope
    response = rp.post("/token", params)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def login_tokens(server: RunningServer, ecosystem: Ecosystem) -> dict[str, Any]:
    """A person logs in at the bank: push, wallet login, consent, code redemption."""
    bank = party(server, ecosystem.bank, BANK_REDIRECT)
    pkce = Pkce.generate()
    url = bank.authorization_url(bank.request_uri(pkce, scope="openid profile"))
    answer = Person(server, ecosystem).authorize(url, redirect_uri=BANK_REDIRECT)
    response = bank.redeem(answer["code"], pkce.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get(server: RunningServer, path: str, token: str | None, **headers: str) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(server.url(path), headers=headers, timeout=10)


def ok_json(server: RunningServer, path: str, token: str) -> Any:
    response = get(server, path, token)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def audit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def jti(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def test_auditor_reads_checkpoint_entries_and_proofs_that_verify(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    tokens = login_tokens(server, ecosystem)
    auditor = machine_token(party(server, AUDITOR), "audit")
    server.services.audit.integrate_pending()
    verifier = server.services.audit_key.verifier()

    note = get(server, "/audit/checkpoint", auditor)
    assert note.status_code == 200, note.text
    assert note.headers["Content-Type"].startswith("text/plain")
    checkpoint = verify_checkpoint(note.text, [verifier], origin=server.services.audit.origin)
    as_json = ok_json(server, "/audit/checkpoint?format=json", auditor)
    assert as_json["note"] == note.text
    assert (as_json["size"], as_json["root_hash"]) == (checkpoint.size, checkpoint.root_hash.hex())

    page = ok_json(server, f"/audit/entries?start=0&end={checkpoint.size}", auditor)
    entries = page["entries"]
    assert [e["index"] for e in entries] == list(range(checkpoint.size))
    leaves = [leaf_hash(e["entry"].encode("utf-8")) for e in entries]
    assert [leaf.hex() for leaf in leaves] == [e["leaf_hash"] for e in entries]
    assert root(leaves) == checkpoint.root_hash

    for token in (tokens["access_token"], tokens["id_token"], auditor):
        found = ok_json(server, f"/audit/entries/by-ref/{jti(token)}", auditor)
        assert jti(token) in found["entry"]
        proof = ok_json(
            server, f"/audit/proof/inclusion?index={found['index']}&size={checkpoint.size}", auditor
        )
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        verify_inclusion(
            bytes.fromhex(found["leaf_hash"]),
            found["index"],
            checkpoint.size,
            hashes,
            checkpoint.root_hash,
        )

    # The log grows; the new checkpoint extends the old one, and the old one is still served.
    machine_token(party(server, ecosystem.ledger))
    server.services.audit.integrate_pending()
    newer = verify_checkpoint(get(server, "/audit/checkpoint", auditor).text, [verifier])
    assert newer.size > checkpoint.size
    old = get(server, f"/audit/checkpoint/{checkpoint.size}", auditor)
    assert verify_checkpoint(old.text, [verifier]) == checkpoint
    proof = ok_json(
        server, f"/audit/proof/consistency?old={checkpoint.size}&new={newer.size}", auditor
    )
    verify_consistency(
        checkpoint.size,
        newer.size,
        checkpoint.root_hash,
        newer.root_hash,
        [bytes.fromhex(h) for h in proof["hashes"]],
    )


def test_keys_publish_audit_vkeys_and_token_keys_with_their_lifetimes(
    server: RunningServer,
) -> None:
    auditor = machine_token(party(server, AUDITOR), "audit")
    keys = ok_json(server, "/audit/keys", auditor)
    assert keys["issuer"] == server.issuer
    assert keys["origin"] == server.services.audit.origin
    assert [k["vkey"] for k in keys["audit_keys"]] == [server.services.audit_key.verifier_key]
    current = server.services.keys.current()
    published = {k["kid"]: k for k in keys["token_keys"]["keys"]}
    assert published[current.kid]["created_at"] == current.created_at
    assert published[current.kid]["retired_at"] is None
    assert "d" not in published[current.kid]
    assert jwt.get_unverified_header(auditor)["kid"] == current.kid


def test_no_token_is_401_and_tokens_without_the_audit_scope_are_403(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    missing = get(server, "/audit/checkpoint", None)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["error"] == "invalid_token"

    garbage = get(server, "/audit/keys", "not-a-token")
    assert garbage.status_code == 401
    assert garbage.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'

    ledger = machine_token(party(server, ecosystem.ledger))
    user = login_tokens(server, ecosystem)["access_token"]
    for token in (ledger, user):
        refused = get(server, "/audit/entries?start=0&end=1", token)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]


def test_openid_flows_and_other_clients_cannot_get_the_audit_scope(
    server: RunningServer, ecosystem: Ecosystem
) -> None:
    bank = party(server, ecosystem.bank, BANK_REDIRECT)
    refused = bank.post("/token", {"grant_type": "client_credentials", "scope": "audit"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    pushed = bank.push(scope="openid audit")
    assert pushed.status_code == 400
    assert pushed.json()["error"] == "invalid_scope"
    auditor = party(server, AUDITOR)
    mixed = auditor.post("/token", {"grant_type": "client_credentials", "scope": "openid audit"})
    assert mixed.status_code == 400
    assert mixed.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/audit/entries?start=0", 400, "invalid_request"),
        ("/audit/entries?start=-1&end=1", 400, "invalid_request"),
        ("/audit/entries?start=%2B1&end=2", 400, "invalid_request"),
        ("/audit/entries?start=2&end=1", 400, "bad_range"),
        ("/audit/entries?start=0&end=1001", 400, "page_too_large"),
        ("/audit/entries?start=0&end=500", 400, "beyond_checkpoint"),
        ("/audit/entries/by-ref/no-such-jti", 404, "not_found"),
        ("/audit/entries/by-ref/" + "x" * 300, 404, "not_found"),
        ("/audit/checkpoint/abc", 400, "invalid_request"),
        ("/audit/checkpoint/99999", 404, "no_checkpoint"),
        ("/audit/checkpoint/99999999999999999999999", 400, "invalid_request"),
        ("/audit/proof/inclusion?index=5&size=5", 400, "bad_range"),
        ("/audit/proof/inclusion?index=0&size=99999", 400, "beyond_checkpoint"),
        ("/audit/proof/inclusion?index=x&size=1", 400, "invalid_request"),
        ("/audit/proof/consistency?old=2&new=1", 400, "bad_range"),
        ("/audit/proof/consistency?old=1&new=99999", 400, "beyond_checkpoint"),
    ],
)
def test_bad_requests_are_clean_json_errors(
    server: RunningServer, path: str, status: int, error: str
) -> None:
    auditor = machine_token(party(server, AUDITOR), "audit")
    server.services.audit.integrate_pending()
    response = get(server, path, auditor)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


def test_cli_verifies_an_issued_token_from_fetched_files(
    server: RunningServer, ecosystem: Ecosystem, tmp_path: Path
) -> None:
    tokens = login_tokens(server, ecosystem)
    auditor = machine_token(party(server, AUDITOR), "audit")
    server.services.audit.integrate_pending()
    out = tmp_path / "fetched"
    access_jti, id_jti = jti(tokens["access_token"]), jti(tokens["id_token"])
    fetched = audit("fetch", "--url", server.issuer, "--token", auditor, "--out", str(out),
                    "--ref", access_jti, "--ref", id_jti)  # fmt: skip
    assert fetched.exit_code == 0, fetched.output
    kept = (out / "checkpoint.txt").read_text()
    files = ["--keys", str(out / "keys.json"), "--checkpoint", str(out / "checkpoint.txt")]

    for token, ref, kind in (
        (tokens["access_token"], access_jti, "access token"),
        (tokens["id_token"], id_jti, "id token"),
    ):
        result = audit("verify", token, *files, "--proof", str(out / f"proof-{ref}.json"))
        assert result.exit_code == 0, result.output
        assert f"claims: {kind} of {server.issuer}" in result.output
        assert "inclusion: entry #" in result.output
        assert "VERIFIED" in result.output

    # A token whose payload was changed does not verify against the published keys.
    header, payload, signature = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "openid profile address"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{header}.{forged_payload}.{signature}"
    result = audit("verify", forged, *files, "--proof", str(out / f"proof-{access_jti}.json"))
    assert result.exit_code == 1
    assert "altered or forged" in result.output

    # The whole log replays to the signed root.
    replayed = audit("replay", "--entries", str(out / "entries.jsonl"), *files)
    assert replayed.exit_code == 0, replayed.output
    assert "REPLAYED" in replayed.output

    # Later: the log grew; the kept checkpoint is consistent with the new one (online mode).
    machine_token(party(server, ecosystem.ledger))
    server.services.audit.integrate_pending()
    (tmp_path / "kept.txt").write_text(kept)
    checked = audit(
        "check", "--since", str(tmp_path / "kept.txt"), "--url", server.issuer, "--token", auditor
    )
    assert checked.exit_code == 0, checked.output
    assert "consistency: the tree of" in checked.output
    assert "CONSISTENT" in checked.output

    # Online verify: everything downloaded on the fly.
    online = audit("verify", tokens["access_token"], "--url", server.issuer, "--token", auditor)
    assert online.exit_code == 0, online.output
    assert "VERIFIED" in online.output
