"""Load and validate settings: ``defaults.toml`` beside the chosen file, the file itself (and the
files it includes), then ``TRUSTANCHOR_<SECTION>_<KEY>`` environment overrides.

Every problem is collected and reported at once, naming the exact setting, so an operator can fix a
configuration in one pass. Unknown settings are refused in every mode.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

from trustanchor.audit.note import valid_key_name
from trustanchor.config.settings import DECLARATIONS, SECTIONS, Settings

ENV_PREFIX = "TRUSTANCHOR_"
ENV_CONFIG_FILE = "TRUSTANCHOR_CONFIG"
_NOT_SETTINGS = {
    ENV_CONFIG_FILE,
    "TRUSTANCHOR_LOG_LEVEL",
    "TRUSTANCHOR_TEST_POSTGRES_URL",
    "TRUSTANCHOR_REQUIRE_POSTGRES",
    "TRUSTANCHOR_REQUIRE_BROWSER",  # the browser tests' CI switch (tests/browser)
}
_WEAK_SECRET_MARKERS = ("demo", "example", "change", "secret", "test", "xxxx")


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


def default_config_file() -> Path:
    env = os.environ.get(ENV_CONFIG_FILE)
    if env:
        return Path(env)
    return Path("config") / "demo.toml"


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read ``path`` (default: $TRUSTANCHOR_CONFIG or config/demo.toml) and validate it."""
    env = os.environ if environ is None else environ
    config_file = Path(path) if path is not None else default_config_file()
    problems: list[str] = []
    defaults_file = config_file.parent / "defaults.toml"
    if not defaults_file.is_file():
        raise ConfigError([f"{defaults_file}: defaults file not found beside {config_file}"])
    raw = _read_toml(defaults_file, problems)
    sources = [str(defaults_file)]
    if config_file.resolve() != defaults_file.resolve():
        _merge_file(raw, config_file, problems, sources, depth=0)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    _apply_environment(raw, env, problems)
    settings = _build(raw, problems, tuple(sources))
    if problems or settings is None:
        raise ConfigError(problems)
    _validate(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML ({exc})")
    return {}


def _merge_file(
    raw: dict[str, Any], path: Path, problems: list[str], sources: list[str], depth: int
) -> None:
    if depth > 4:
        problems.append(f"{path}: includes nested too deeply")
        return
    data = _read_toml(path, problems)
    sources.append(str(path))
    includes = data.pop("include", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        problems.append(f"{path}: include must be a list of file names")
        includes = []
    for key, value in data.items():
        if key in DECLARATIONS:
            if not isinstance(value, list):
                problems.append(f"{path}: {key} must be an array of tables ([[{key}]])")
                continue
            raw.setdefault(key, [])
            raw[key] = [*raw[key], *value]
        elif isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    for include in includes:
        _merge_file(raw, path.parent / include, problems, sources, depth + 1)


def _apply_environment(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> None:
    section_names = sorted(SECTIONS, key=len, reverse=True)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in section_names:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                known = {f.name for f in fields(SECTIONS[section])}
                if key in known:
                    raw.setdefault(section, {})[key] = _EnvValue(value)
                    break
        else:
            problems.append(f"environment variable {name}: unknown setting")


class _EnvValue(str):
    """A string from the environment, converted to the field's type during the build."""


def _build(raw: dict[str, Any], problems: list[str], sources: tuple[str, ...]) -> Settings | None:
    built: dict[str, Any] = {}
    for key in raw:
        if key not in SECTIONS and key not in DECLARATIONS:
            problems.append(f"unknown setting section or key: {key}")
    for section, cls in SECTIONS.items():
        values = raw.get(section, {})
        if not isinstance(values, dict):
            problems.append(f"{section}: must be a table")
            continue
        hints = typing.get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                problems.append(f"{section}.{key}: unknown setting")
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in values:
                problems.append(f"{section}.{f.name}: missing")
                continue
            converted = _convert(values[f.name], hints[f.name], f"{section}.{f.name}", problems)
            kwargs[f.name] = converted
        if len(kwargs) == len(fields(cls)):
            built[section] = cls(**kwargs)
    declarations: dict[str, tuple[dict[str, Any], ...]] = {}
    for key in DECLARATIONS:
        items = raw.get(key, [])
        if not all(isinstance(item, dict) for item in items):
            problems.append(f"{key}: every entry must be a table")
            continue
        declarations[key] = tuple(items)
    if problems:
        return None
    return Settings(
        service=built["service"],
        tokens=built["tokens"],
        dpop=built["dpop"],
        client_auth=built["client_auth"],
        limits=built["limits"],
        interaction=built["interaction"],
        fetcher=built["fetcher"],
        audit=built["audit"],
        auditor_console=built["auditor_console"],
        demo=built["demo"],
        anchors=declarations.get("anchors", ()),
        anchor_sets=declarations.get("anchor_sets", ()),
        clients=declarations.get("clients", ()),
        sources=sources,
    )


def _convert(value: Any, hint: Any, where: str, problems: list[str]) -> Any:
    origin = get_origin(hint)
    if isinstance(value, _EnvValue):
        value = _parse_env(str(value), hint, where, problems)
    if origin is typing.Literal:
        if value not in get_args(hint):
            choices = ", ".join(repr(a) for a in get_args(hint))
            problems.append(f"{where}: must be one of {choices}, not {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: must be a list of strings")
            return ()
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{where}: must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{where}: must be an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            problems.append(f"{where}: must be a string")
        return value
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such fields yet
        return value
    return value


def _parse_env(text: str, hint: Any, where: str, problems: list[str]) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        problems.append(f"{where}: environment value must be true or false")
        return False
    if hint is int:
        try:
            return int(text)
        except ValueError:
            problems.append(f"{where}: environment value must be an integer")
            return 0
    if get_origin(hint) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _validate(settings: Settings, problems: list[str]) -> None:
    svc = settings.service
    issuer = urlsplit(svc.issuer)
    if issuer.scheme not in ("https", "http") or not issuer.netloc:
        problems.append("service.issuer: must be an absolute https URL")
    if issuer.query or issuer.fragment or svc.issuer.endswith("/"):
        problems.append("service.issuer: must have no query, fragment or trailing slash")
    tokens = settings.tokens
    if not 1 <= tokens.authorization_code_lifetime <= 60:
        problems.append("tokens.authorization_code_lifetime: must be between 1 and 60 seconds")
    if not 5 <= tokens.request_uri_lifetime <= 600:
        problems.append("tokens.request_uri_lifetime: must be between 5 and 600 seconds")
    if not 10 <= tokens.access_token_lifetime <= 3600:
        problems.append("tokens.access_token_lifetime: must be between 10 and 3600 seconds")
    if not 10 <= tokens.transfer_token_lifetime <= min(300, tokens.access_token_lifetime):
        problems.append(
            "tokens.transfer_token_lifetime: must be between 10 and 300 seconds and no longer "
            "than access_token_lifetime"
        )
    longest = max(tokens.access_token_lifetime, tokens.id_token_lifetime)
    if tokens.key_retention < longest:
        problems.append(
            f"tokens.key_retention: must be at least {longest} seconds, so tokens signed with a "
            "retired key still verify until they expire"
        )
    if tokens.signing_alg not in ("ES256", "EdDSA"):
        problems.append("tokens.signing_alg: must be ES256 or EdDSA")
    for alg in (*settings.dpop.allowed_algs, *settings.client_auth.allowed_algs):
        if alg == "none" or alg.startswith("HS"):
            problems.append(f"allowed_algs: {alg} is not an asymmetric signature algorithm")
    if settings.dpop.iat_leeway > 300:
        problems.append("dpop.iat_leeway: at most 300 seconds")
    audit = settings.audit
    if not 10 <= audit.checkpoint_interval_ms <= 60_000:
        problems.append("audit.checkpoint_interval_ms: must be between 10 and 60000")
    if not 1 <= audit.batch_size <= 1_000_000:
        problems.append("audit.batch_size: must be between 1 and 1000000")
    if not valid_key_name(settings.audit_origin):
        problems.append(
            "audit.origin: must be non-empty, without spaces, '+' or control characters"
        )
    if not 60 <= settings.auditor_console.session_lifetime <= 86_400:
        problems.append("auditor_console.session_lifetime: must be between 60 and 86400 seconds")
    _validate_demo(settings, problems)
    if not settings.is_production:
        return
    if issuer.scheme != "https":
        problems.append("service.issuer: production requires an https issuer")
    for name in ("pairwise_secret", "cookie_secret"):
        value = getattr(svc, name)
        if not value:
            problems.append(
                f"service.{name}: missing; set TRUSTANCHOR_SERVICE_{name.upper()} "
                "to at least 32 random characters"
            )
        elif len(value) < 32 or any(m in value.lower() for m in _WEAK_SECRET_MARKERS):
            problems.append(f"service.{name}: too short or an example value")
    for client in settings.clients:
        if client.get("token_endpoint_auth_method") == "client_secret_basic":
            problems.append(
                f"clients.{client.get('client_id')}: "
                "client_secret_basic is only allowed in demo mode"
            )


def _validate_demo(settings: Settings, problems: list[str]) -> None:
    """``demo.parties_url`` is an http(s) origin, and only in demo mode: the root page links
    there, so no other mode may point people at demo parties."""
    url = settings.demo.parties_url
    if not url:
        return
    if settings.service.mode != "demo":
        problems.append('demo.parties_url: only allowed with service.mode = "demo"')
        return
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        problems.append(
            "demo.parties_url: must be an http(s) origin without path, query or trailing "
            "slash, like http://127.0.0.1:8001"
        )
