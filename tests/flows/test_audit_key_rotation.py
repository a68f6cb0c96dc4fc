"""Audit key rotation (issue 14): `trustanchor keys rotate-audit` while the service runs. The
running service signs the next checkpoints with the new key without a restart; the transition
goes through the log itself (operator_change audit_key / audit_vkey entries under a checkpoint
the old key signed), GET /audit/keys serves it, and an auditor who kept only the old vkey
follows it with `trustanchor audit … --pin`; a key the log did not introduce is not trusted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ed25519
from support.ecosystem import Ecosystem, Party
from support.rp import RelyingParty
from support.server import RunningServer

from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.audit.entries import digest
from trustanchor.audit.note import Ed25519Verifier, NoteError, verifier_key
from trustanchor.cli.context import CliContext
from trustanchor.cli.keys import keys
from trustanchor.cli.main import cli
from trustanchor.clock import SystemClock
from trustanchor.web.openapi import packaged

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


def machine_token(server: RunningServer, who: Party, scope: str | None = None) -> str:
    params = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = RelyingParty(server, who, SystemClock(), redirect_uri="").post("/token", params)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def audit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def signed_by(note: str, vkey: str, origin: str) -> bool:
    try:
        verify_checkpoint(note, [Ed25519Verifier.from_vkey(vkey)], origin=origin)
    except NoteError:
        return False
    return True


def test_the_running_service_signs_with_the_new_key_and_auditors_follow_it(
    server: RunningServer, ecosystem: Ecosystem, tmp_path: Path
) -> None:
    auditor = machine_token(server, AUDITOR, "audit")
    server.services.audit.integrate_pending()
    origin = server.services.audit.origin
    old_vkey = server.services.audit_key.verifier_key
    headers = {"Authorization": f"Bearer {auditor}"}
    kept = requests.get(server.url("/audit/checkpoint"), headers=headers, timeout=10).text
    assert signed_by(kept, old_vkey, origin)
    (tmp_path / "kept.txt").write_text(kept)

    rotated = CliRunner().invoke(
        keys, ["rotate-audit"], obj=CliContext(config_path=None, _settings=server.settings)
    )
    assert rotated.exit_code == 0, rotated.output
    [new_vkey] = [line.split()[1] for line in rotated.output.splitlines() if "vkey:" in line]
    assert f"operator_change audit_vkey {digest(new_vkey)} generated" in rotated.output
    assert "running workers sign the next checkpoints with it (no restart)" in rotated.output

    # The running service (its integrator thread) signs what comes next with the new key.
    deadline = time.monotonic() + 10
    while True:
        machine_token(server, ecosystem.ledger)  # something to log
        note = requests.get(server.url("/audit/checkpoint"), headers=headers, timeout=10).text
        if signed_by(note, new_vkey, origin):
            break
        assert time.monotonic() < deadline, "the service still signs with the old key"
        time.sleep(0.2)
    assert not signed_by(note, old_vkey, origin)

    # GET /audit/keys: both keys, the new one with the transition signed by the old one.
    published = requests.get(server.url("/audit/keys"), headers=headers, timeout=10).json()
    old_entry, new_entry = published["audit_keys"]
    assert (old_entry["vkey"], new_entry["vkey"]) == (old_vkey, new_vkey)
    assert "introduced" not in old_entry and old_entry["retired_at"] is not None
    introduced = new_entry["introduced"]
    assert signed_by(introduced["checkpoint"], old_vkey, origin)
    assert json.loads(introduced["entry"])["id"] == digest(new_vkey)
    schema = packaged()["components"]["schemas"]["AuditKeys"]  # the OpenAPI description
    jsonschema.Draft202012Validator(schema).validate(published)

    # An auditor who kept only the old vkey follows to the new key, offline and online.
    out = tmp_path / "fetched"
    fetched = audit(
        "fetch", "--url", server.issuer, "--token", auditor, "--out", str(out), "--pin", old_vkey
    )
    assert fetched.exit_code == 0, fetched.output
    assert f"audit key {new_vkey.split('+')[1]} followed" in fetched.output
    # A pin of a key this log never introduced: fetch refuses before saving anything.
    stranger = verifier_key(origin, ed25519.Ed25519PrivateKey.generate().public_key())
    refused = audit(
        "fetch", "--url", server.issuer, "--token", auditor, "--out", str(tmp_path / "no"),
        "--pin", stranger,
    )  # fmt: skip
    assert refused.exit_code == 1 and not (tmp_path / "no").exists(), refused.output
    files = ["--keys", str(out / "keys.json"), "--checkpoint", str(out / "checkpoint.txt")]
    replayed = audit("replay", "--entries", str(out / "entries.jsonl"), *files, "--pin", old_vkey)
    assert replayed.exit_code == 0, replayed.output
    assert f"audit key {new_vkey.split('+')[1]} followed" in replayed.output
    assert "REPLAYED" in replayed.output
    checked = audit(
        "check", "--since", str(tmp_path / "kept.txt"), "--url", server.issuer, "--token",
        auditor, "--pin", old_vkey,
    )  # fmt: skip
    assert checked.exit_code == 0, checked.output
    assert "CONSISTENT" in checked.output

    # A key the log did not introduce is not trusted with a pin: its transition removed, or
    # naming another key (the entry changed: its inclusion proof fails).
    data = json.loads((out / "keys.json").read_text())
    forged_entry = json.loads(data["audit_keys"][1]["introduced"]["entry"])
    forged_entry["id"] = digest("another vkey")
    for name, change in (
        ("stripped", lambda key: key.pop("introduced")),
        ("forged", lambda key: key["introduced"].update(entry=json.dumps(forged_entry))),
    ):
        altered = json.loads(json.dumps(data))
        change(altered["audit_keys"][1])
        (tmp_path / f"{name}.json").write_text(json.dumps(altered))
        material = [
            "--entries", str(out / "entries.jsonl"), "--keys", str(tmp_path / f"{name}.json"),
            "--checkpoint", str(out / "checkpoint.txt"),
        ]  # fmt: skip
        refused = audit("replay", *material, "--pin", old_vkey)
        assert refused.exit_code == 1, name
        assert "does not verify against the published audit keys" in refused.output
        assert "not trusted: audit key" in refused.output
        # Without a pin the published keys are trusted as before.
        assert audit("replay", *material).exit_code == 0

    # A second rotation: the old pin follows the chain key by key.
    again = CliRunner().invoke(
        keys, ["rotate-audit"], obj=CliContext(config_path=None, _settings=server.settings)
    )
    assert again.exit_code == 0, again.output
    [newest_vkey] = [line.split()[1] for line in again.output.splitlines() if "vkey:" in line]
    deadline = time.monotonic() + 10
    while not signed_by(
        requests.get(server.url("/audit/checkpoint"), headers=headers, timeout=10).text,
        newest_vkey,
        origin,
    ):
        assert time.monotonic() < deadline, "the service still signs with the previous key"
        machine_token(server, ecosystem.ledger)
        time.sleep(0.2)
    online = audit("replay", "--url", server.issuer, "--token", auditor, "--pin", old_vkey)
    assert online.exit_code == 0, online.output
    for vkey in (new_vkey, newest_vkey):
        assert f"audit key {vkey.split('+')[1]} followed" in online.output
    assert "REPLAYED" in online.output
