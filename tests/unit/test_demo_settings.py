"""``[demo] parties_url`` (issue 5): where the service's root page sends people for the demo
wallet, bank and ledger. Allowed only in demo mode, and only as a plain http(s) origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustanchor.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
STRONG = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"
PROBLEM = (
    "demo.parties_url: must be an http(s) origin without path, query or trailing slash, "
    "like http://127.0.0.1:8001"
)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path


def write(config_dir: Path, mode: str, parties_url: str) -> Path:
    path = config_dir / "service.toml"
    path.write_text(
        f'[service]\nmode = "{mode}"\nissuer = "https://as.example"\n'
        f'[demo]\nparties_url = "{parties_url}"\n',
        encoding="utf-8",
    )
    return path


def test_empty_by_default_in_every_repository_configuration() -> None:
    assert load_settings(REPO / "config" / "test.toml", environ={}).demo.parties_url == ""


def test_demo_mode_takes_an_origin_from_the_file_or_the_environment(config_dir: Path) -> None:
    path = write(config_dir, "demo", "http://127.0.0.1:8001")
    assert load_settings(path, environ={}).demo.parties_url == "http://127.0.0.1:8001"
    moved = load_settings(path, environ={"TRUSTANCHOR_DEMO_PARTIES_URL": "http://127.0.0.1:9"})
    assert moved.demo.parties_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("mode", ["test", "production"])
def test_refused_outside_demo_mode(config_dir: Path, mode: str) -> None:
    path = write(config_dir, mode, "http://127.0.0.1:8001")
    env = {
        "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": STRONG[::-1],  # production: the two differ
    }
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ=env)
    assert err.value.problems == ['demo.parties_url: only allowed with service.mode = "demo"']


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001/",
        "http://127.0.0.1:8001/wallet",
        "javascript:alert(1)",
        "ftp://127.0.0.1",
        "http://127.0.0.1:8001?x=1",
        "http://127.0.0.1:8001#top",
        "http://user:pw@127.0.0.1:8001",
        "127.0.0.1:8001",
        "http://",
    ],
)
def test_only_a_plain_origin_is_accepted(config_dir: Path, url: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(config_dir, "demo", url), environ={})
    assert err.value.problems == [PROBLEM]
