"""The launcher's planning: ports flow into the service's settings and the demo bank's redirect
URI (a derived copy of the configuration when the ports are not the configured ones), and a
configuration outside demo mode is refused before anything starts."""

from __future__ import annotations

import os
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from trustanchor.config import load_settings
from trustanchor.demo.launcher import (
    DERIVED_CONFIG,
    LaunchError,
    command_line,
    dump_toml,
    make_plan,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.toml"


@pytest.fixture(autouse=True)
def _no_trustanchor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRUSTANCHOR_"):
            monkeypatch.delenv(name)


def bank(settings_clients: tuple[dict[str, object], ...]) -> dict[str, object]:
    return next(c for c in settings_clients if c["client_id"] == "demo-bank")


def _file_references(table: dict[str, object]) -> list[str]:
    """Every ``*_file`` value in a declaration, however deep."""
    found: list[str] = []
    for key, value in table.items():
        if isinstance(value, dict):
            found += _file_references(value)
        elif key.endswith("_file") and isinstance(value, str):
            found.append(value)
    return found


def test_the_default_ports_use_the_configuration_as_it_is(tmp_path: Path) -> None:
    plan = make_plan(DEMO, 8000, 8001, tmp_path)
    assert plan.config == DEMO
    assert not (tmp_path / DERIVED_CONFIG).exists()
    assert plan.site.service_url == "http://127.0.0.1:8000"
    assert plan.site.parties_url == "http://127.0.0.1:8001"
    assert plan.service_env["TRUSTANCHOR_SERVICE_DATABASE_URL"].endswith("/trustanchor.db")


def test_other_ports_get_a_derived_configuration(tmp_path: Path) -> None:
    plan = make_plan(DEMO, 18000, 18001, tmp_path)
    assert plan.config == tmp_path / DERIVED_CONFIG
    derived = load_settings(plan.config, environ={})  # the file alone says it all
    original = load_settings(DEMO, environ={})
    assert derived.issuer == "http://127.0.0.1:18000"
    assert derived.service.port == 18000
    assert derived.interaction.wallet_link_base == "http://127.0.0.1:18001/wallet/authorize"
    assert derived.demo.parties_url == "http://127.0.0.1:18001"
    assert bank(derived.clients)["redirect_uris"] == ["http://127.0.0.1:18001/bank/callback"]
    assert derived.anchor_sets == original.anchor_sets
    assert [a["id"] for a in derived.anchors] == [a["id"] for a in original.anchors]
    written = tomllib.loads(plan.config.read_text("utf-8"))
    files = [name for anchor in written["anchors"] for name in _file_references(anchor)]
    assert files and all(Path(name).is_absolute() for name in files), files
    # Certificate login: the card app's link, the demo CA's CRLs and the branch counter's
    # redirect URI move to the parties' port too.
    assert derived.interaction.certificate_link_base == "http://127.0.0.1:18001/card/authorize"
    jpki = next(a for a in written["anchors"] if a["id"] == "jp-jpki")
    assert jpki["x509"]["revocation"]["crl_urls"] == [
        "http://127.0.0.1:18001/jpki/crl/auth.crl",
        "http://127.0.0.1:18001/jpki/crl/sign.crl",
    ]
    branch = next(c for c in derived.clients if c["client_id"] == "demo-bank-branch")
    assert branch["redirect_uris"] == ["http://127.0.0.1:18001/branch/callback"]
    assert plan.parties_env["DEMO_PARTIES_SERVICE_URL"] == "http://127.0.0.1:18000"
    assert plan.parties_env["DEMO_PARTIES_URL"] == "http://127.0.0.1:18001"
    # The copy lives under the state directory: its key directory and database are the ones
    # the original names (relative to config/), written as absolute paths.
    assert derived.service.keys_dir == original.service.keys_dir == str(REPO / "keys" / "demo")
    assert written["service"]["keys_dir"] == str(REPO / "keys" / "demo")
    assert written["service"]["database_url"] == f"sqlite:///{tmp_path / 'trustanchor.db'}"


def test_the_printed_command_line_runs_the_trustanchor_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the demo prints once it is up, as a person would paste it in the checkout."""
    monkeypatch.chdir(REPO)
    line = command_line(DEMO)
    assert line.endswith(" --config config/demo.toml --help"), line
    result = subprocess.run(
        shlex.split(line), cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: trustanchor"), result.stdout


def test_a_configuration_outside_demo_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r'service\.mode = "demo"') as caught:
        make_plan(REPO / "config" / "test.toml", 8000, 8001, tmp_path)
    assert caught.value.status == 2


def test_the_toml_writer_round_trips_the_demo_configuration() -> None:
    raw = tomllib.loads(DEMO.read_text("utf-8"))
    assert tomllib.loads(dump_toml(raw)) == raw
    odd = {"section": {"quoted key": 'a "b" \\ c\n', "flag": True, "n": 3, "empty": {}}}
    assert tomllib.loads(dump_toml(odd)) == odd
