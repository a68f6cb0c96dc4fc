"""`trustanchor anchors list | show | add | suspend | resume` against a migrated SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.cli.anchors import anchors
from trustanchor.cli.context import CliContext
from trustanchor.clock import FixedClock
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade

T0 = 1_700_000_000
ISSUER_JWK = {**public_jwk(ec.generate_private_key(ec.SECP256R1())), "kid": "issuer-2024"}

ANCHOR_TOML = """
[[anchors]]
id = "mynumber-wallet"
kind = "sd_jwt_vc"
display_name = { en = "My Number wallet", ja = "マイナンバーウォレット" }
assurance_level = "high"
anchor_sets = ["jp-cbdc"]

[anchors.sd_jwt_vc]
issuer = "https://issuer.example.jp"
jwks_file = "issuer.jwks.json"
vct = ["urn:jp:mynumber:1"]
subject_claim = "sub"
trust_framework = "jp_my_number_card"
status_check = "required"
"""


class Env:
    def __init__(self, tmp_path: Path, config: Path, db: Database) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.db = db
        self.clock = FixedClock(T0)

    def run(self, *args: str) -> Result:
        obj = CliContext(config_path=self.config, clock=self.clock)
        return CliRunner().invoke(anchors, list(args), obj=obj)

    def anchor_file(self, text: str = ANCHOR_TOML, name: str = "anchor.toml") -> Path:
        path = self.tmp_path / "anchors" / name
        path.parent.mkdir(exist_ok=True)
        (path.parent / "issuer.jwks.json").write_text(json.dumps({"keys": [ISSUER_JWK]}))
        path.write_text(text)
        return path


def write_config(tmp_path: Path, extra: str = "") -> tuple[Path, str]:
    url = f"sqlite:///{tmp_path / 'trustanchor.db'}"
    config = tmp_path / "test.toml"
    config.write_text(
        f"""
[service]
mode = "test"
issuer = "http://127.0.0.1:8000"
database_url = "{url}"
keys_dir = "{tmp_path / "keys"}"
{extra}
"""
    )
    return config, url


@pytest.fixture
def env(tmp_path: Path) -> Env:
    config, url = write_config(tmp_path)
    db = Database(url)
    upgrade(db)
    AnchorRepository(db).upsert_set(
        AnchorSet(id="jp-cbdc", display_name={"en": "Japan CBDC"}, policy={}), T0
    )
    return Env(tmp_path, config, db)


def test_list_without_anchors_says_how_to_add_one(env: Env) -> None:
    result = env.run("list")
    assert result.exit_code == 0
    assert "no anchors yet" in result.output


def test_add_from_an_anchors_entry_then_list_and_show(env: Env) -> None:
    result = env.run("add", "--file", str(env.anchor_file()))
    assert result.exit_code == 0, result.output
    assert "anchor mynumber-wallet: created" in result.output
    assert "logins through mynumber-wallet are accepted from now on" in result.output

    listing = env.run("list")
    assert listing.exit_code == 0
    row = listing.output.splitlines()[1].split()
    assert row[:5] == ["mynumber-wallet", "sd_jwt_vc", "active", "high", "jp-cbdc"]

    shown = env.run("show", "mynumber-wallet")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["status"] == "active" and data["anchor_sets"] == ["jp-cbdc"]
    assert data["display_name"]["ja"] == "マイナンバーウォレット"
    assert data["settings"]["jwks"] == {
        "keys": [{"kid": "issuer-2024", "kty": "EC", "thumbprint": thumbprint(ISSUER_JWK)}]
    }
    assert ISSUER_JWK["x"] not in shown.output  # keys summarised, not printed whole


def test_add_accepts_a_single_table(env: Env) -> None:
    single = ANCHOR_TOML.replace("[[anchors]]\n", "").replace("[anchors.sd_jwt_vc]", "[sd_jwt_vc]")
    result = env.run("add", "--file", str(env.anchor_file(single)))
    assert result.exit_code == 0, result.output
    assert AnchorRepository(env.db).get("mynumber-wallet") is not None


def test_add_refuses_an_existing_anchor_unless_replace(env: Env) -> None:
    path = env.anchor_file()
    env.run("add", "--file", str(path))
    again = env.run("add", "--file", str(path))
    assert again.exit_code == 1
    assert "anchor mynumber-wallet exists already; add --replace" in again.output
    path.write_text(ANCHOR_TOML.replace('assurance_level = "high"', 'assurance_level = "low"'))
    replaced = env.run("add", "--file", str(path), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "anchor mynumber-wallet: updated" in replaced.output
    assert AnchorRepository(env.db).get("mynumber-wallet").assurance_level == "low"  # type: ignore[union-attr]


def test_add_names_every_invalid_field(env: Env) -> None:
    bad = ANCHOR_TOML.replace('"high"', '"very high"').replace("subject_claim", "subjet_claim")
    result = env.run("add", "--file", str(env.anchor_file(bad)))
    assert result.exit_code == 1
    assert "invalid anchor" in result.output
    assert "anchors.mynumber-wallet.assurance_level: must be one of" in result.output
    assert "anchors.mynumber-wallet.sd_jwt_vc.subjet_claim: unknown setting" in result.output
    assert AnchorRepository(env.db).list() == []


def test_add_with_an_unknown_anchor_set_says_to_declare_it(env: Env) -> None:
    text = ANCHOR_TOML.replace('["jp-cbdc"]', '["eu-digital-euro"]')
    result = env.run("add", "--file", str(env.anchor_file(text)))
    assert result.exit_code == 1
    assert "unknown anchor set(s) eu-digital-euro" in result.output
    assert "[[anchor_sets]]" in result.output


def test_add_refuses_a_file_with_two_anchors(env: Env) -> None:
    two = ANCHOR_TOML + ANCHOR_TOML.replace("mynumber-wallet", "other").split("[anchors.sd")[0]
    result = env.run("add", "--file", str(env.anchor_file(two)))
    assert result.exit_code == 1
    assert "exactly one [[anchors]] entry" in result.output


def test_add_refuses_a_file_that_is_not_toml(env: Env) -> None:
    result = env.run("add", "--file", str(env.anchor_file("id = ")))
    assert result.exit_code == 1
    assert "not readable TOML" in result.output


def test_suspend_and_resume(env: Env) -> None:
    env.run("add", "--file", str(env.anchor_file()))
    env.clock.advance(60)
    suspended = env.run("suspend", "mynumber-wallet")
    assert suspended.exit_code == 0, suspended.output
    assert "logins through mynumber-wallet are refused from now on" in suspended.output
    assert "trustanchor anchors resume mynumber-wallet" in suspended.output
    anchor = AnchorRepository(env.db).get("mynumber-wallet")
    assert anchor is not None and anchor.status == "suspended" and anchor.updated_at == T0 + 60
    assert AnchorRepository(env.db).active() == []

    assert "already suspended" in env.run("suspend", "mynumber-wallet").output

    resumed = env.run("resume", "mynumber-wallet")
    assert resumed.exit_code == 0
    assert "logins through mynumber-wallet are accepted from now on" in resumed.output
    assert "warning" not in resumed.output
    assert [a.id for a in AnchorRepository(env.db).active()] == ["mynumber-wallet"]
    assert "already active" in env.run("resume", "mynumber-wallet").output


def test_resume_warns_when_the_configuration_declares_the_anchor_suspended(
    tmp_path: Path, env: Env
) -> None:
    env.run("add", "--file", str(env.anchor_file()))
    env.run("suspend", "mynumber-wallet")
    env.config, _ = write_config(
        tmp_path, '[[anchors]]\nid = "mynumber-wallet"\nstatus = "suspended"\n'
    )
    result = env.run("resume", "mynumber-wallet")
    assert result.exit_code == 0
    assert "warning: the configuration declares mynumber-wallet as suspended" in result.output


def test_retired_anchor_is_neither_suspended_nor_resumed(env: Env) -> None:
    env.run("add", "--file", str(env.anchor_file()))
    AnchorRepository(env.db).set_status("mynumber-wallet", "retired", T0)
    suspend = env.run("suspend", "mynumber-wallet")
    assert suspend.exit_code == 1 and "is retired; there is nothing to suspend" in suspend.output
    resume = env.run("resume", "mynumber-wallet")
    assert resume.exit_code == 1 and "retired and cannot be resumed" in resume.output


@pytest.mark.parametrize("command", ["show", "suspend", "resume"])
def test_unknown_anchor_points_to_list(env: Env, command: str) -> None:
    result = env.run(command, "nobody")
    assert result.exit_code == 1
    expected = "no anchor 'nobody'; `trustanchor anchors list` shows the registered ones"
    assert expected in result.output


def test_unmigrated_database_points_to_init(tmp_path: Path) -> None:
    config, _ = write_config(tmp_path)
    result = CliRunner().invoke(anchors, ["list"], obj=CliContext(config_path=config))
    assert result.exit_code == 1
    assert "Run `trustanchor init` to create or migrate it" in result.output
