"""Configuration: layered TOML + environment, validated into one frozen object; unsafe
production settings refuse to start and say exactly which."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trustanchor.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
STRONG = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"
OTHER_STRONG = "Zt5r-Hy7uJ2k-Pq9wE3rT6yU1iO4pA7sD0fG3hJ"  # pairwise and cookie secrets differ


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
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
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": OTHER_STRONG,
    }
    with pytest.raises(ConfigError, match="client_secret_basic is only allowed in demo mode"):
        load_settings(path, environ=env)


def test_valid_production_configuration_loads(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "production"\nissuer = "https://as.example"\n')
    env = {
        "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": OTHER_STRONG,
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


def test_a_new_key_is_published_at_least_as_long_as_the_ledger_caches_the_jwks(
    config_dir: Path,
) -> None:
    """Issue 14: tokens.key_activation_delay >= trustanchor.ledger's JWKS cache lifetime."""
    path = write(config_dir, '[service]\nmode = "test"\n[tokens]\nkey_activation_delay = 299\n')
    with pytest.raises(ConfigError, match=r"key_activation_delay: must be between 300 seconds"):
        load_settings(path, environ={})
    path = write(config_dir, '[service]\nmode = "test"\n[tokens]\nkey_activation_delay = 300\n')
    assert load_settings(path, environ={}).tokens.key_activation_delay == 300


# -- production bounds (issue 10, item 8c): one named test per rule ------------------------------

PRODUCTION = '[service]\nmode = "production"\nissuer = "https://as.example"\n'
SECRETS = {
    "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
    "TRUSTANCHOR_SERVICE_COOKIE_SECRET": OTHER_STRONG,
}
ONE_YEAR = 365 * 86_400


def production_problems(
    config_dir: Path, extra: str = "", env: dict[str, str] | None = None
) -> list[str]:
    """The problems a production configuration with ``extra`` TOML is refused for."""
    path = write(config_dir, PRODUCTION + extra)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={**SECRETS, **(env or {})})
    return err.value.problems


def loads_in_production(config_dir: Path, extra: str) -> bool:
    return load_settings(write(config_dir, PRODUCTION + extra), environ=SECRETS).is_production


@pytest.mark.parametrize("value", ["a" * 64, "Z" * 40, "0" * 32])
def test_production_refuses_a_secret_of_one_repeated_character(
    config_dir: Path, value: str
) -> None:
    problems = production_problems(config_dir, env={"TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": value})
    assert problems == ["service.pairwise_secret: one character repeated; use openssl rand -hex 32"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0123456789abcdef0123456789abcdef01234567", "at most 206 bits of entropy"),  # hex 20 B
        ("QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUiOpAsDf", "at most 228 bits of entropy"),
        ("Ab1-" * 12, "a short pattern repeated"),
    ],
)
def test_production_refuses_a_secret_without_32_bytes_of_entropy(
    config_dir: Path, value: str, why: str
) -> None:
    problems = production_problems(config_dir, env={"TRUSTANCHOR_SERVICE_COOKIE_SECRET": value})
    assert len(problems) == 1 and problems[0].startswith(f"service.cookie_secret: {why}")


def test_production_accepts_secrets_as_the_docs_generate_them(config_dir: Path) -> None:
    """``openssl rand -hex 32`` (64 hex digits) and ``openssl rand -base64 32``."""
    path = write(config_dir, PRODUCTION)
    env = {
        "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": "9f" * 2
        + "3c1e8a7d05b46f29" * 3
        + "e4d7b2a9c6f1083e",
        "TRUSTANCHOR_SERVICE_COOKIE_SECRET": "q8Vt0kX3mZ+u7Yc2Lr9/WbE5sN1aHfD4gJ6pQoTiRlM=",
    }
    assert load_settings(path, environ=env).is_production


def test_production_refuses_equal_pairwise_and_cookie_secrets(config_dir: Path) -> None:
    problems = production_problems(config_dir, env={"TRUSTANCHOR_SERVICE_COOKIE_SECRET": STRONG})
    assert problems == [
        "service.cookie_secret: must differ from service.pairwise_secret "
        "(one leaked secret must not give away the other)"
    ]


@pytest.mark.parametrize(
    "link",
    [
        "http://wallet.example/authorize",
        "http://127.0.0.1:8001/wallet/authorize",  # what the local demo uses
        "javascript:",
        "data:",
        "https://wallet.example/authorize?x=1",
    ],
)
def test_production_refuses_a_wallet_link_that_is_not_https_or_a_wallet_scheme(
    config_dir: Path, link: str
) -> None:
    problems = production_problems(config_dir, f'[interaction]\nwallet_link_base = "{link}"\n')
    assert len(problems) == 1
    assert problems[0].startswith(
        "interaction.wallet_link_base: production needs an https link or a wallet scheme"
    )


@pytest.mark.parametrize(
    "link", ["openid4vp://", "openid4vp:", "haip-vp://", "https://wallet.example/authorize"]
)
def test_production_accepts_an_https_wallet_link_or_a_wallet_scheme(
    config_dir: Path, link: str
) -> None:
    assert loads_in_production(config_dir, f'[interaction]\nwallet_link_base = "{link}"\n')


def test_production_refuses_a_clock_skew_above_five_minutes(config_dir: Path) -> None:
    problems = production_problems(config_dir, "[client_auth]\nclock_skew = 86400\n")
    assert problems == ["client_auth.clock_skew: at most 300 (5 minutes) in production"]
    assert loads_in_production(config_dir, "[client_auth]\nclock_skew = 300\n")


@pytest.mark.parametrize(
    ("section", "key", "maximum"),
    [
        ("tokens", "id_token_lifetime", 3_600),
        ("tokens", "refresh_token_lifetime", 90 * 86_400),
        ("interaction", "lifetime", 3_600),
        ("interaction", "session_lifetime", 86_400),
        ("interaction", "wallet_transaction_lifetime", 900),
        ("interaction", "kb_jwt_max_age", 300),
        ("client_auth", "assertion_max_lifetime", 3_600),
    ],
)
def test_production_refuses_lifetimes_beyond_their_maxima(
    config_dir: Path, section: str, key: str, maximum: int
) -> None:
    # Retired keys stay published as long as an ID token lives (a rule of every mode).
    retention = f"key_retention = {ONE_YEAR}\n" if section == "tokens" else ""
    problems = production_problems(config_dir, f"[{section}]\n{key} = {ONE_YEAR}\n{retention}")
    assert len(problems) == 1
    assert problems[0].startswith(f"{section}.{key}: at most {maximum} (")
    assert loads_in_production(config_dir, f"[{section}]\n{key} = {maximum}\n{retention}")


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254",
        "169.254.0.1",
        "fe80::1",
        "[fe80::1]",
        "fe80::1%eth0",
        "::ffff:169.254.169.254",
        "0.0.0.0",  # noqa: S104 - a value the loader must refuse, not a bind address
        "::",
        "127.0.0.0/8",
        "0.0.0.0/0",
        "*",
        "*.internal",
    ],
)
def test_production_refuses_link_local_unspecified_or_range_private_hosts(
    config_dir: Path, host: str
) -> None:
    problems = production_problems(config_dir, f'[fetcher]\nprivate_hosts = ["{host}"]\n')
    assert len(problems) == 1 and problems[0].startswith(f"fetcher.private_hosts: {host!r} ")


def test_production_accepts_named_private_hosts(config_dir: Path) -> None:
    """A status list served from the operator's own network, named host by host."""
    assert loads_in_production(
        config_dir, '[fetcher]\nprivate_hosts = ["status.internal.example", "10.0.0.5"]\n'
    )


def test_production_refuses_a_body_limit_above_one_mebibyte(config_dir: Path) -> None:
    problems = production_problems(config_dir, "[limits]\nmax_body_bytes = 1073741824\n")
    assert problems == ["limits.max_body_bytes: at most 1048576 (1 MiB) in production"]
    assert loads_in_production(config_dir, "[limits]\nmax_body_bytes = 1048576\n")


def test_production_names_every_bound_problem_at_once(config_dir: Path) -> None:
    problems = production_problems(
        config_dir,
        "[tokens]\nrefresh_token_lifetime = 31536000\n"
        '[interaction]\nwallet_link_base = "http://wallet.example/authorize"\n'
        "[client_auth]\nclock_skew = 86400\n"
        '[fetcher]\nprivate_hosts = ["169.254.169.254"]\n'
        "[limits]\nmax_body_bytes = 1073741824\n",
        env={"TRUSTANCHOR_SERVICE_COOKIE_SECRET": STRONG},
    )
    named = sorted(problem.split(":", 1)[0] for problem in problems)
    assert named == [
        "client_auth.clock_skew",
        "fetcher.private_hosts",
        "interaction.wallet_link_base",
        "limits.max_body_bytes",
        "service.cookie_secret",
        "tokens.refresh_token_lifetime",
    ]


def test_the_production_bounds_do_not_apply_to_tests_and_demos(config_dir: Path) -> None:
    path = write(
        config_dir,
        '[service]\nmode = "test"\n[tokens]\nrefresh_token_lifetime = 31536000\n'
        "[client_auth]\nclock_skew = 86400\n"
        '[interaction]\nwallet_link_base = "http://127.0.0.1:8001/wallet/authorize"\n',
    )
    settings = load_settings(path, environ={})
    assert settings.client_auth.clock_skew == 86_400


@pytest.mark.parametrize(
    "link", ["http://app.example/certificate", "javascript:", "https://app.example/c?x=1"]
)
def test_production_refuses_a_certificate_link_that_is_not_https_or_an_app_scheme(
    config_dir: Path, link: str
) -> None:
    problems = production_problems(config_dir, f'[interaction]\ncertificate_link_base = "{link}"\n')
    assert len(problems) == 1
    assert problems[0].startswith(
        "interaction.certificate_link_base: production needs an https link or an app scheme"
    )


@pytest.mark.parametrize(
    "link", ["trustanchor-certificate://", "jpki-login:", "https://app.example/certificate"]
)
def test_production_accepts_an_https_certificate_link_or_an_app_scheme(
    config_dir: Path, link: str
) -> None:
    assert loads_in_production(config_dir, f'[interaction]\ncertificate_link_base = "{link}"\n')


# -- defaults in the package, one file or the environment alone (issue 14) -----------------------

SECRETS = {
    "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET": STRONG,
    "TRUSTANCHOR_SERVICE_COOKIE_SECRET": OTHER_STRONG,
}


def test_the_defaults_ship_inside_the_package_and_declare_every_setting() -> None:
    import tomllib
    from dataclasses import fields

    from trustanchor.config.loader import defaults_text
    from trustanchor.config.settings import SECTIONS

    defaults = tomllib.loads(defaults_text())
    for section, cls in SECTIONS.items():
        assert set(defaults[section]) == {f.name for f in fields(cls)}, section
    assert not (REPO / "config" / "defaults.toml").exists()  # one copy, the packaged one


def test_a_file_alone_is_enough_with_no_defaults_beside_it(config_dir: Path) -> None:
    path = write(config_dir, '[service]\nmode = "test"\nissuer = "http://127.0.0.1:9"\n')
    assert sorted(p.name for p in config_dir.iterdir()) == ["service.toml"]
    settings = load_settings(path, environ={})
    assert settings.tokens.access_token_lifetime == 300  # from the packaged defaults
    assert settings.sources[1:] == (str(path),)


def test_the_environment_alone_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        environ={**SECRETS, "TRUSTANCHOR_SERVICE_ISSUER": "https://as.example.com"}
    )
    assert settings.is_production and settings.issuer == "https://as.example.com"
    # Relative defaults land in the working directory when no file is given.
    assert settings.service.keys_dir == str(tmp_path / "keys")
    assert settings.service.database_url == f"sqlite:///{tmp_path / 'var' / 'trustanchor.db'}"
    assert settings.config_dir == tmp_path


def test_without_a_file_production_is_refused_until_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file and no $TRUSTANCHOR_CONFIG is production with the defaults: never a demo."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_settings(environ={})
    assert "service.pairwise_secret: missing" in str(err.value)


def test_relative_paths_in_a_file_are_relative_to_its_directory(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(
        config_dir,
        '[service]\nmode = "test"\nissuer = "http://127.0.0.1:9"\n'
        'keys_dir = "state/keys"\ndatabase_url = "sqlite+pysqlite:///state/ta.db?timeout=5"\n',
    )
    settings = load_settings(path, environ={})
    assert settings.service.keys_dir == str(config_dir / "state" / "keys")
    assert settings.service.database_url == (
        f"sqlite+pysqlite:///{config_dir / 'state' / 'ta.db'}?timeout=5"
    )
    assert settings.config_dir == config_dir
    # The environment's values are taken as they are: relative to the working directory.
    from_env = load_settings(path, environ={"TRUSTANCHOR_SERVICE_KEYS_DIR": "k"})
    assert from_env.service.keys_dir == "k"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:////var/lib/ta.db",
        "postgresql+psycopg://ta@db.example:5432/ta",
        "sqlite:///file:ta?mode=memory&uri=true",
    ],
)
def test_other_database_urls_are_left_alone(url: str) -> None:
    from trustanchor.config.loader import sqlite_url_against

    assert sqlite_url_against(url, Path("/etc/trustanchor")) == url


def test_a_defaults_file_beside_the_config_is_refused_not_ignored(config_dir: Path) -> None:
    """Before issue 14 the loader read it; an operator's changes there must not silently
    stop applying."""
    (config_dir / "defaults.toml").write_text("[dpop]\nrequire_nonce = true\n", encoding="utf-8")
    path = write(config_dir, '[service]\nmode = "test"\nissuer = "http://127.0.0.1:9"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "defaults.toml: no longer read (the defaults ship inside the package)" in str(err.value)
    included = write(
        config_dir, 'include = ["defaults.toml"]\n[service]\nmode = "test"\nissuer = "http://x.x"\n'
    )
    assert load_settings(included, environ={}).dpop.require_nonce is True


def test_the_example_production_configuration_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(REPO / "config" / "example.toml", environ=SECRETS)
    assert settings.is_production
    assert settings.service.database_url.startswith("postgresql+psycopg://")
    assert Path(settings.service.keys_dir).is_absolute()
    with pytest.raises(ConfigError) as err:  # the secrets never come from the file
        load_settings(REPO / "config" / "example.toml", environ={})
    assert "TRUSTANCHOR_SERVICE_PAIRWISE_SECRET" in str(err.value)
