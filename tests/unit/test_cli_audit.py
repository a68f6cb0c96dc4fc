"""``trustanchor audit check`` and ``replay`` offline, against files an auditor kept: a log built
here and signed with a test audit key. A rollback and a split view (genuinely signed by the log's
key) are reported loudly with exit 2; a checkpoint signed by another key is a signature error
(exit 1); replay detects a changed entry and names the first entry that does not parse.

The token-verification path runs against a real server in tests/flows/test_auditor_api.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ed25519

from trustanchor.audit.checkpoint import new_checkpoint, sign_checkpoint
from trustanchor.audit.entries import Login
from trustanchor.audit.merkle import MemoryTree, consistency_proof, leaf_hash
from trustanchor.audit.note import Ed25519Signer
from trustanchor.cli.main import cli

ORIGIN = "auth.example.com/audit"
T0 = 1_700_000_000


class Log:
    """A small log on disk: entries.jsonl, keys.json and checkpoints/proofs on demand."""

    def __init__(self, directory: Path, count: int) -> None:
        self.dir = directory
        self.key = Ed25519Signer(ORIGIN, ed25519.Ed25519PrivateKey.generate())
        self.entries = [
            Login(
                at=T0 + i, anchor_id="x509-ca", outcome="failed", reason="expired", holder=None
            ).to_canonical()
            for i in range(count)
        ]
        self.tree = MemoryTree(leaf_hash(e) for e in self.entries)
        keys = {
            "issuer": "https://auth.example.com",
            "origin": ORIGIN,
            "audit_keys": [{"vkey": self.key.verifier().vkey, "key_id": f"{self.key.key_id:08x}"}],
            "token_keys": {"keys": []},
        }
        (directory / "keys.json").write_text(json.dumps(keys))
        (directory / "entries.jsonl").write_bytes(b"".join(e + b"\n" for e in self.entries))

    def checkpoint(
        self,
        name: str,
        size: int,
        *,
        root: bytes | None = None,
        at: int = T0 + 100,
        key: Ed25519Signer | None = None,
    ) -> str:
        checkpoint = new_checkpoint(ORIGIN, size, root or self.tree.root(size), at=at)
        (self.dir / name).write_text(sign_checkpoint(checkpoint, key or self.key))
        return str(self.dir / name)

    def consistency(self, old: int, new: int) -> str:
        hashes = consistency_proof(self.tree, old, new)
        path = self.dir / f"consistency-{old}-{new}.json"
        path.write_text(json.dumps({"old": old, "new": new, "hashes": [h.hex() for h in hashes]}))
        return str(path)

    @property
    def keys(self) -> str:
        return str(self.dir / "keys.json")


@pytest.fixture
def log(tmp_path: Path) -> Log:
    return Log(tmp_path, 37)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


def check(log: Log, old: str, new: str, proof: str | None = None) -> Result:
    extra = ["--proof", proof] if proof else []
    return run("check", "--since", old, "--checkpoint", new, "--keys", log.keys, *extra)


def test_check_accepts_an_append_only_log(log: Log) -> None:
    result = check(
        log, log.checkpoint("old.txt", 13), log.checkpoint("new.txt", 37), log.consistency(13, 37)
    )
    assert result.exit_code == 0, result.output
    assert "consistency: the tree of 37 extends the tree of 13 (append-only)" in result.output
    assert "CONSISTENT" in result.output


def test_check_reports_a_rollback_loudly(log: Log) -> None:
    result = check(log, log.checkpoint("old.txt", 37), log.checkpoint("new.txt", 13))
    assert result.exit_code == 2
    assert "ROLLBACK: the log shrank from 37 to 13 entries" in result.output
    assert "!" * 72 in result.output


def test_check_reports_a_split_view_loudly(log: Log) -> None:
    other = log.tree.root(36)  # signed by the real key, but not the root of size 37
    result = check(log, log.checkpoint("old.txt", 37), log.checkpoint("new.txt", 37, root=other))
    assert result.exit_code == 2
    assert "SPLIT VIEW: two signed checkpoints of size 37 with different roots" in result.output


def test_check_reports_a_rewritten_history(log: Log) -> None:
    rewritten = log.checkpoint("old.txt", 13, root=log.tree.root(12))
    result = check(log, rewritten, log.checkpoint("new.txt", 37), log.consistency(13, 37))
    assert result.exit_code == 2
    assert "INCONSISTENT LOG" in result.output


def test_check_refuses_a_checkpoint_signed_by_another_key(log: Log) -> None:
    impostor = Ed25519Signer(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    fake = log.checkpoint("fake.txt", 5, key=impostor)
    result = check(log, log.checkpoint("old.txt", 37), fake)
    assert result.exit_code == 1
    assert "checkpoint signature does not verify" in result.output
    assert "no_known_signature" in result.output


def test_check_reports_time_going_backwards(log: Log) -> None:
    old = log.checkpoint("old.txt", 13, at=T0 + 500)
    new = log.checkpoint("new.txt", 37, at=T0 + 100)
    result = check(log, old, new, log.consistency(13, 37))
    assert result.exit_code == 2
    assert "TIME WENT BACKWARDS" in result.output


def test_check_refuses_a_proof_for_other_sizes(log: Log) -> None:
    result = check(
        log, log.checkpoint("old.txt", 13), log.checkpoint("new.txt", 37), log.consistency(12, 37)
    )
    assert result.exit_code == 1
    assert "proves 12 → 37, the checkpoints are 13 → 37" in result.output


def replay(log: Log, checkpoint: str) -> Result:
    return run(
        "replay", "--entries", str(log.dir / "entries.jsonl"), "--checkpoint", checkpoint,
        "--keys", log.keys,
    )  # fmt: skip


def test_replay_recomputes_the_signed_root(log: Log) -> None:
    result = replay(log, log.checkpoint("cp.txt", 37))
    assert result.exit_code == 0, result.output
    assert "replay: 37 entries parse and produce the signed root" in result.output


def test_replay_detects_a_changed_entry(log: Log) -> None:
    checkpoint = log.checkpoint("cp.txt", 37)
    lines = (log.dir / "entries.jsonl").read_bytes().split(b"\n")
    lines[20] = lines[20].replace(b'"expired"', b'"revoked"')  # still a valid entry
    (log.dir / "entries.jsonl").write_bytes(b"\n".join(lines))
    result = replay(log, checkpoint)
    assert result.exit_code == 2
    assert "ROOT MISMATCH" in result.output


def test_replay_names_the_first_entry_that_does_not_parse(log: Log) -> None:
    checkpoint = log.checkpoint("cp.txt", 37)
    lines = (log.dir / "entries.jsonl").read_bytes().split(b"\n")
    lines[7] = lines[7].replace(b'"v":1', b'"v": 1')
    lines[9] = b"garbage"
    (log.dir / "entries.jsonl").write_bytes(b"\n".join(lines))
    result = replay(log, checkpoint)
    assert result.exit_code == 1
    assert "entry #7 (line 8) does not parse" in result.output


def test_replay_reports_missing_entries(log: Log) -> None:
    checkpoint = log.checkpoint("cp.txt", 37)
    lines = (log.dir / "entries.jsonl").read_bytes().split(b"\n")
    (log.dir / "entries.jsonl").write_bytes(b"\n".join(lines[:30]) + b"\n")
    result = replay(log, checkpoint)
    assert result.exit_code == 1
    assert "only 30 entries for a checkpoint of 37" in result.output


def test_missing_material_says_what_to_do(log: Log, tmp_path: Path) -> None:
    result = run("replay", "--checkpoint", log.checkpoint("cp.txt", 3))
    assert result.exit_code == 1
    assert "give --keys, or --url and --token to download it" in result.output
    result = check(log, str(tmp_path / "nope.txt"), log.checkpoint("cp.txt", 3))
    assert result.exit_code == 1
    assert "Download it with `trustanchor audit fetch`" in result.output
