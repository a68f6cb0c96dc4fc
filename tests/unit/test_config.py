"""Configuration: layered TOML + environment, validated into one frozen object; unsafe
production settings refuse to start and say exactly which."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from trustanchor.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
STRONG = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "config" / "defaults.toml", tmp_path / "defaults.toml")
    return tmp_path


def write(config_dir: Path, text: str) -> Path:
    path = config_dir / "service.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_configurations_load() -> None:
    for name in ("demo.toml", "test.toml"):
        settings = load_settings(REPO / "config" / name, environ={})
        assert settings.service.mode in ("demo", "test")


def test_settings_are_immutable() -> None:
    settings = load_settings(REPO / "config" / "test.toml", environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.service.issuer = "https://elsewhere.example"  # type: ignore[misc]


def test_environment_overrides_a_setting(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "test"\nissuer = "http://127.0.0.1:9"\n')
    settings = load_settings(
        path,
        environ={
            "TRUSTANCHOR_SERVICE_PORT": "9100",
            "TRUSTANCHOR_CLIENT_AUTH_CLOCK_SKEW": "5",
            "TRUSTANCHOR_DPOP_REQUIRE_NONCE": "true",
            "TRUSTANCHOR_DPOP_ALLOWED_ALGS": "ES256, EdDSA",
        },
    )
    assert settings.service.port == 9100
    assert settings.client_auth.clock_skew == 5
    assert settings.dpop.require_nonce is True
    assert settings.dpop.allowed_algs == ("ES256", "EdDSA")


def test_unknown_settings_are_refused_with_their_names(config_dir: Path) -> None:
    path = write(
        config_dir, '[service]\nmode = "test"\nissuer = "http://x.example"\ncolour = 1\n[extra]\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={"TRUSTANCHOR_SERVICE_COLOR": "x"})
    text = str(err.value)
    assert "service.colour: unknown setting" in text
    assert "unknown setting section or key: extra" in text
    assert "TRUSTANCHOR_SERVICE_COLOR: unknown setting" in text


def test_wrong_types_are_named(config_dir: Path) -> None:
    path = write(
        config_dir, '[service]\nmode = "test"\nport = "eighty"\n[dpop]\nrequire_nonce = 1\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "service.port: must be an integer" in str(err.value)
    assert "dpop.require_nonce: must be true or false" in str(err.value)


def test_code_lifetime_cannot_exceed_sixty_seconds(config_dir: Path) -> None:
    path = write(
        config_dir, '[service]\nmode = "test"\n[tokens]\nauthorization_code_lifetime = 600\n'
    )
    with pytest.raises(ConfigError, match="authorization_code_lifetime"):
        load_settings(path, environ={})


def test_symmetric_algorithms_cannot_be_allowed(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "test"\n[dpop]\nallowed_algs = ["HS256"]\n')
    with pytest.raises(ConfigError, match="HS256 is not an asymmetric"):
        load_settings(path, environ={})


def test_production_refuses_http_issuer_and_missing_secrets(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "production"\nissuer = "http://as.example"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    problems = err.value.problems
    assert "service.issuer: production requires an https issuer" in problems
    assert any(p.startswith("service.pairwise_secret: missing") for p in problems)
    assert any(p.startswith("service.cookie_secret: missing") for p in problems)


def test_production_refuses_example_secrets(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "production"\nissuer = "https://as.example"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(
            path,
            environ={
                "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": "change-me-change-me-change-me-change-me",
                "TRUSTANCHOR_SERVICE_COOKIE_SECRET": "short",
            },
        )
    assert "service.pairwise_secret: too short or an example value" in err.value.problems
    assert "service.cookie_secret: too short or an example value" in err.value.problems


def test_production_refuses_client_secret_basic(config_dir: Path) -> None:
    path = write(
        config_dir,
        '[service]\nmode = "production"\nissuer = "https://as.example"\n'
        '[[clients]]\nclient_id = "old"\ntoken_endpoint_auth_method = "client_secret_basic"\n',
    )
    env = {
        "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": STRONG,
    }
    with pytest.raises(ConfigError, match="client_secret_basic is only allowed in demo mode"):
        load_settings(path, environ=env)


def test_valid_production_configuration_loads(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "production"\nissuer = "https://as.example"\n')
    env = {
        "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": STRONG,
    }
    settings = load_settings(path, environ=env)
    assert settings.is_production
    assert settings.issuer == "https://as.example"


def test_includes_add_declarations(config_dir: Path) -> None:
    (config_dir / "clients.toml").write_text('[[clients]]\nclient_id = "a"\n', encoding="utf-8")
    path = write(config_dir, 'include = ["clients.toml"]\n[service]\nmode = "test"\n')
    settings = load_settings(path, environ={})
    assert [c["client_id"] for c in settings.clients] == ["a"]
    assert settings.config_dir == config_dir


def test_retired_keys_stay_published_while_their_tokens_live(config_dir: Path) -> None:
    path = write(
        config_dir,
        '[service]\nmode = "test"\n[tokens]\naccess_token_lifetime = 600\nkey_retention = 60\n',
    )
    with pytest.raises(ConfigError, match=r"tokens\.key_retention: must be at least 600 seconds"):
        load_settings(path, environ={})
