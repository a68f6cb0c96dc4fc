"""``trustanchor identities unjoin IDENTITY_ID`` (issue 10, item 1): the real CLI against a
SQLite database made by ``init``. A join is arranged at the repository level (the HTTP flows of a
join are in tests/flows/test_identity_joining.py); the verb moves the identity to a new holder
of its own, audits it, and refuses what it must not do. Plus the repository's guarantee that a
known identity is never re-attached by a join."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from trustanchor.cli.main import cli
from trustanchor.domain.identity import VerifiedIdentity
from trustanchor.storage import identities_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves, identities

REPO = Path(__file__).resolve().parents[2]
AT = 1_700_000_000
CONFIG = """
[service]
mode = "test"
issuer = "http://127.0.0.1:8000"
database_url = "sqlite:///{db}"
keys_dir = "{keys}"

[[anchor_sets]]
id = "jp-cbdc"
display_name = {{ en = "Japan CBDC pilot" }}
[[anchor_sets.policy.identity_joins]]
id = "name-and-birthdate"
claims = ["family_name", "given_name", "birthdate"]
min_assurance = "substantial"
normalizer = "nfkc-casefold-kana-nospace-v1"

[[anchors]]
id = "jp-pid"
kind = "sd_jwt_vc"
display_name = {{ en = "PID wallet" }}
assurance_level = "high"
anchor_sets = ["jp-cbdc"]
[anchors.sd_jwt_vc]
issuer = "https://pid.example"
vct = ["urn:example:pid:1"]
subject_claim = "sub"
claims = {{ given_name = "given_name" }}
trust_framework = "jp_my_number_card"
status_check = "off"
[[anchors.sd_jwt_vc.jwks.keys]]
kty = "EC"
crv = "P-256"
kid = "k1"
x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
"""


def verified(subject: str) -> VerifiedIdentity:
    return VerifiedIdentity(
        anchor_id="jp-pid",
        subject=subject,
        claims={"given_name": "Hanako"},
        assurance_level="high",
        verified_at=AT,
        expires_at=None,
        evidence_digest="0" * 64,
        trust_framework="jp_my_number_card",
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    config = tmp_path / "service.toml"
    config.write_text(CONFIG.format(db=tmp_path / "db.sqlite", keys=tmp_path / "keys"))
    initialised = run(config, "init")
    assert initialised.exit_code == 0, initialised.output
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def database(config: Path) -> Database:
    return Database(f"sqlite:///{config.parent / 'db.sqlite'}")


def holder_of(db: Database, identity_id: str) -> str:
    with db.reader() as conn:
        return str(
            conn.execute(
                select(identities.c.holder_id).where(identities.c.id == identity_id)
            ).scalar_one()
        )


def test_unjoin_moves_a_joined_identity_to_a_holder_of_its_own_and_is_audited(
    installed: Path,
) -> None:
    db = database(installed)
    try:
        with db.transaction() as conn:
            first = identities_repo.record(
                conn, verified("first"), new_holder_id="hol-1", new_identity_id="idn-1", now=AT
            )
            joined = identities_repo.join(
                conn, verified("second"), holder_id="hol-1", new_identity_id="idn-2"
            )
        assert joined is not None and first.holder_id == joined.holder_id == "hol-1"

        result = run(installed, "identities", "unjoin", "idn-2")
        assert result.exit_code == 0, result.output
        assert "identity idn-2 moved to a new holder of its own" in result.output
        assert "0 grant(s) revoked; 0 account(s) and 0 link(s) flagged" in result.output
        assert holder_of(db, "idn-1") == "hol-1"
        assert holder_of(db, "idn-2") not in ("hol-1", "")
        with db.reader() as conn:
            entries = [
                json.loads(row)
                for row in conn.execute(
                    select(audit_leaves.c.entry).where(audit_leaves.c.kind == "identity_join")
                ).scalars()
            ]
        [entry] = entries
        assert (entry["action"], entry["anchor_id"], entry["rule"]) == ("unjoined", "jp-pid", None)
        assert "idn-2" not in json.dumps(entry) and "hol-1" not in json.dumps(entry)

        again = run(installed, "identities", "unjoin", "idn-2")  # now its holder's only one
        assert again.exit_code == 1 and "only identity" in again.output
        unknown = run(installed, "identities", "unjoin", "idn-none")
        assert unknown.exit_code == 1 and "no identity idn-none" in unknown.output
    finally:
        db.dispose()


def test_a_join_never_attaches_a_known_identity(installed: Path) -> None:
    db = database(installed)
    try:
        with db.transaction() as conn:
            identities_repo.record(
                conn, verified("taken"), new_holder_id="hol-a", new_identity_id="idn-a", now=AT
            )
            identities_repo.record(
                conn, verified("other"), new_holder_id="hol-b", new_identity_id="idn-b", now=AT
            )
            assert (
                identities_repo.join(
                    conn, verified("taken"), holder_id="hol-b", new_identity_id="idn-x"
                )
                is None
            )
            assert identities_repo.refresh_of_holder(conn, verified("taken"), "hol-b") is None
        assert holder_of(db, "idn-a") == "hol-a"
    finally:
        db.dispose()
