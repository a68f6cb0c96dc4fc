"""`trustanchor init` / start-up: idempotent set-up, and refusals that name what is unsafe."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.ecosystem import Ecosystem
from support.server import test_settings

from trustanchor.bootstrap import StartupRefused, initialise
from trustanchor.cli.main import cli
from trustanchor.config import Settings
from trustanchor.keystore.signing_keys import generate_key
from trustanchor.storage.database import Database

REPO = Path(__file__).resolve().parents[2]
STRONG = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"


def test_initialise_is_idempotent(tmp_path: Path, database_url: str) -> None:
    eco = Ecosystem()
    settings = test_settings(
        tmp_path,
        database_url,
        port=8000,
        anchors=[eco.anchor_declaration()],
        clients=eco.client_declarations(),
    )
    db = Database(database_url)
    first = initialise(settings, db, now=1_000, generate_keys=True)
    assert any(m.startswith("generated signing key") for m in first)
    assert "client bank written" in first
    second = initialise(settings, db, now=2_000, generate_keys=True)
    assert second == ["database schema is up to date"]
    db.dispose()


def production(settings_dir: Path, tmp_path: Path, database_url: str) -> Settings:
    settings = test_settings(tmp_path, database_url, port=8000)
    service = dataclasses.replace(
        settings.service,
        mode="production",
        issuer="https://as.example",
        pairwise_secret=STRONG,
        cookie_secret=STRONG,
    )
    return dataclasses.replace(settings, service=service)


def test_production_never_generates_a_key_by_itself(tmp_path: Path, database_url: str) -> None:
    settings = production(tmp_path, tmp_path, database_url)
    db = Database(database_url)
    with pytest.raises(StartupRefused, match="no signing key"):
        initialise(settings, db, now=1_000, generate_keys=False)
    db.dispose()


def test_production_refuses_demo_keys(tmp_path: Path, database_url: str) -> None:
    settings = production(tmp_path, tmp_path, database_url)
    generate_key(settings.service.keys_dir, alg="ES256", now=1_000, demo=True)
    db = Database(database_url)
    with pytest.raises(StartupRefused, match="demo signing keys"):
        initialise(settings, db, now=1_000, generate_keys=False)
    db.dispose()


def test_cli_init_reports_what_it_did(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        '[service]\nmode = "test"\nissuer = "http://127.0.0.1:8000"\n'
        f'database_url = "sqlite:///{tmp_path / "db.sqlite"}"\nkeys_dir = "{tmp_path / "keys"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "init"])
    assert result.exit_code == 0, result.output
    assert "generated signing key" in result.output
    assert "ready: http://127.0.0.1:8000 (test mode)" in result.output
    again = runner.invoke(cli, ["--config", str(config), "init"])
    assert again.exit_code == 0
    assert "generated signing key" not in again.output


def test_cli_refuses_an_invalid_configuration_with_reasons(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        '[service]\nmode = "production"\nissuer = "http://as.example"\n', encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "init"])
    assert result.exit_code != 0
    assert "production requires an https issuer" in result.output


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "serve", "keys", "anchors", "clients"):
        assert command in result.output


def test_serve_refuses_a_port_in_use_and_says_what_to_do(tmp_path: Path) -> None:
    """Before anything is changed (no migration, no key), not a traceback from granian."""
    config = tmp_path / "service.toml"
    database = tmp_path / "trustanchor.db"
    config.write_text(
        '[service]\nmode = "test"\nissuer = "http://127.0.0.1:8000"\n'
        f'database_url = "sqlite:///{database}"\nkeys_dir = "{tmp_path / "keys"}"\n',
        encoding="utf-8",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["--config", str(config), "serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "choose another with --port" in result.output
    assert not database.exists() and not (tmp_path / "keys").exists()
