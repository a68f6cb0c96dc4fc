"""Load and validate settings: the defaults shipped in the package (``trustanchor/config/
defaults.toml``), the chosen file if any (and the files it includes), then
``TRUSTANCHOR_<SECTION>_<KEY>`` environment overrides.

Relative paths written in the files (``service.keys_dir``, a SQLite ``service.database_url``,
declarations' ``*_file``) are relative to the directory of the chosen file, the working directory
when there is none; values from the environment are taken as they are (relative to the working
directory).

Every problem is collected and reported at once, naming the exact setting, so an operator can fix a
configuration in one pass. Unknown settings are refused in every mode.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

from trustanchor.audit.note import valid_key_name
from trustanchor.config.settings import DECLARATIONS, SECTIONS, Settings
from trustanchor.digests import equal
from trustanchor.ledger.keys import JWKS_MAX_AGE
from trustanchor.openid4vp.links import LinkError, wallet_request_url

ENV_PREFIX = "TRUSTANCHOR_"
ENV_CONFIG_FILE = "TRUSTANCHOR_CONFIG"
_NOT_SETTINGS = {
    ENV_CONFIG_FILE,
    "TRUSTANCHOR_LOG_LEVEL",
    "TRUSTANCHOR_TEST_POSTGRES_URL",
    "TRUSTANCHOR_REQUIRE_POSTGRES",
    "TRUSTANCHOR_REQUIRE_BROWSER",  # the browser tests' CI switch (tests/browser)
    "TRUSTANCHOR_REQUIRE_NODE_OP",  # CI switch: node-oidc-provider as an upstream (tests/flows)
    "TRUSTANCHOR_REQUIRE_DEPLOY_TOOLS",  # CI switch: docs/DEPLOYING.md's tools and systemd units
}
_WEAK_SECRET_MARKERS = ("demo", "example", "change", "secret", "test", "xxxx")


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` lists every reason, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


DEFAULTS_RESOURCE = "defaults.toml"  # in this package: every setting with its default
_OLD_DEFAULTS_NAME = "defaults.toml"  # read from beside the chosen file before issue 14


def default_config_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """$TRUSTANCHOR_CONFIG, or None: the defaults and the environment alone."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_CONFIG_FILE)
    return Path(value) if value else None


def defaults_text() -> str:
    """The defaults shipped with the package (every setting, with its meaning)."""
    return resources.files(__package__).joinpath(DEFAULTS_RESOURCE).read_text(encoding="utf-8")


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """The packaged defaults, then ``path`` (default: $TRUSTANCHOR_CONFIG; none: the defaults
    and the environment alone), then the environment, validated."""
    env = os.environ if environ is None else environ
    config_file = Path(path) if path is not None else default_config_file(env)
    problems: list[str] = []
    try:
        raw = tomllib.loads(defaults_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:  # pragma: no cover - a broken install
        raise ConfigError([f"the packaged defaults cannot be read: {exc}"]) from exc
    sources = [f"{__package__}/{DEFAULTS_RESOURCE} (packaged defaults)"]
    base_dir = Path.cwd()
    if config_file is not None:
        base_dir = Path(os.path.abspath(config_file)).parent
        _merge_file(raw, config_file, problems, sources, depth=0)
        _refuse_old_defaults(config_file, sources, problems)
    _resolve_paths(raw, base_dir)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    _apply_environment(raw, env, problems)
    settings = _build(raw, problems, tuple(sources), base_dir)
    if problems or settings is None:
        raise ConfigError(problems)
    _validate(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def _refuse_old_defaults(config_file: Path, sources: list[str], problems: list[str]) -> None:
    """A ``defaults.toml`` beside the file that nothing includes was read before the defaults
    moved into the package: refused rather than silently ignored, since an operator may have
    changed settings in it."""
    beside = config_file.parent / _OLD_DEFAULTS_NAME
    if not beside.is_file():
        return
    read = {os.path.realpath(source) for source in sources[1:]}
    if os.path.realpath(beside) not in read:
        problems.append(
            f"{beside}: no longer read (the defaults ship inside the package); move the "
            f"settings you changed in it into {config_file} (or include it), then delete it"
        )


def _resolve_paths(raw: dict[str, Any], base_dir: Path) -> None:
    """Relative ``service.keys_dir`` and SQLite database paths from the files (or the
    defaults), made absolute against ``base_dir``."""
    service = raw.get("service")
    if not isinstance(service, dict):
        return
    keys_dir = service.get("keys_dir")
    if isinstance(keys_dir, str) and keys_dir and not os.path.isabs(keys_dir):
        service["keys_dir"] = os.path.normpath(base_dir / keys_dir)
    url = service.get("database_url")
    if isinstance(url, str):
        service["database_url"] = sqlite_url_against(url, base_dir)


def sqlite_url_against(url: str, base_dir: Path) -> str:
    """``sqlite:///relative/file.db`` (any sqlite driver) with its file made absolute against
    ``base_dir``; other URLs, in-memory databases and absolute paths unchanged."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return url
    file, query_sep, query = rest.partition("?")
    if not file or file == ":memory:" or file.startswith("file:") or os.path.isabs(file):
        return url
    return f"{scheme}:///{os.path.normpath(base_dir / file)}{query_sep}{query}"


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
    # the older name of logging.level (before issue 14), still honoured
    if "TRUSTANCHOR_LOG_LEVEL" in env and "TRUSTANCHOR_LOGGING_LEVEL" not in env:
        raw.setdefault("logging", {})["level"] = _EnvValue(env["TRUSTANCHOR_LOG_LEVEL"].lower())


class _EnvValue(str):
    """A string from the environment, converted to the field's type during the build."""


def _build(
    raw: dict[str, Any], problems: list[str], sources: tuple[str, ...], base_dir: Path
) -> Settings | None:
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
        logging=built["logging"],
        metrics=built["metrics"],
        anchors=declarations.get("anchors", ()),
        anchor_sets=declarations.get("anchor_sets", ()),
        clients=declarations.get("clients", ()),
        sources=sources,
        base_dir=str(base_dir),
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
    if not 0 <= svc.threads <= 64:
        problems.append("service.threads: must be between 0 (chosen by database) and 64")
    if not 0 <= svc.group_commit_linger_us <= 10_000:
        problems.append("service.group_commit_linger_us: must be between 0 and 10000")
    if svc.event_loop not in ("auto", "uvloop", "asyncio"):
        problems.append("service.event_loop: must be auto, uvloop or asyncio")
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
    if not JWKS_MAX_AGE <= tokens.key_activation_delay <= 30 * 86400:
        problems.append(
            f"tokens.key_activation_delay: must be between {JWKS_MAX_AGE} seconds (how long "
            "relying parties such as the ledger module cache the JWKS) and 30 days"
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
    if not max(5, audit.checkpoint_interval_ms // 1000 * 2) <= audit.stall_after <= 86_400:
        problems.append(
            "audit.stall_after: must be between 5 seconds (and twice the checkpoint interval) "
            "and 86400"
        )
    _validate_metrics(settings, problems)
    if not valid_key_name(settings.audit_origin):
        problems.append(
            "audit.origin: must be non-empty, without spaces, '+' or control characters"
        )
    if not 60 <= settings.auditor_console.session_lifetime <= 86_400:
        problems.append("auditor_console.session_lifetime: must be between 60 and 86400 seconds")
    _validate_slow_clients(settings, problems)
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
                "to 32 random bytes (openssl rand -hex 32)"
            )
        elif len(value) < 32 or any(m in value.lower() for m in _WEAK_SECRET_MARKERS):
            problems.append(f"service.{name}: too short or an example value")
        else:
            weakness = _secret_weakness(value)
            if weakness:
                problems.append(f"service.{name}: {weakness}; use openssl rand -hex 32")
    if svc.pairwise_secret and equal(svc.pairwise_secret, svc.cookie_secret):
        problems.append(
            "service.cookie_secret: must differ from service.pairwise_secret "
            "(one leaked secret must not give away the other)"
        )
    for client in settings.clients:
        if client.get("token_endpoint_auth_method") == "client_secret_basic":
            problems.append(
                f"clients.{client.get('client_id')}: "
                "client_secret_basic is only allowed in demo mode"
            )
    _validate_production_bounds(settings, problems)


def _validate_metrics(settings: Settings, problems: list[str]) -> None:
    """A metrics token, when set, is a secret: long, and in production random-looking."""
    token = settings.metrics.token
    if not token:
        return
    if len(token) < 32 or any(ch.isspace() or not ch.isprintable() for ch in token):
        problems.append(
            "metrics.token: at least 32 printable characters without spaces "
            "(openssl rand -hex 32), or empty to serve no metrics"
        )
    elif settings.is_production and (weakness := _secret_weakness(token)):
        problems.append(f"metrics.token: {weakness}; use openssl rand -hex 32")


def _validate_slow_clients(settings: Settings, problems: list[str]) -> None:
    """The read deadlines of trustanchor.web.serving: long enough for a slow mobile link, short
    enough that a client trickling bytes cannot hold a request open for minutes."""
    limits = settings.limits
    if not 1 <= limits.header_read_timeout <= 60:
        problems.append("limits.header_read_timeout: must be between 1 and 60 seconds")
    if not 1 <= limits.body_read_timeout <= 60:
        problems.append("limits.body_read_timeout: must be between 1 and 60 seconds")
    if not limits.body_read_timeout <= limits.body_read_timeout_max <= 300:
        problems.append(
            "limits.body_read_timeout_max: must be between body_read_timeout and 300 seconds"
        )
    if not 1 <= limits.min_body_rate <= 1_048_576:
        problems.append("limits.min_body_rate: must be between 1 and 1048576 bytes per second")
    if not 64 <= limits.requests_per_worker <= 65_536:
        problems.append("limits.requests_per_worker: must be between 64 and 65536")
    elif not 1 <= limits.waiting_bodies_per_worker <= limits.requests_per_worker // 2:
        # at least half the places stay for requests whose body has arrived
        problems.append(
            "limits.waiting_bodies_per_worker: must be between 1 and half of requests_per_worker"
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


# -- production bounds (issue 10) ----------------------------------------------------------------

SECRET_MIN_BITS = 256  # 32 bytes of entropy: what ``openssl rand -hex 32`` gives
# The longest a production deployment may configure (seconds; bytes for the body limit). Beyond
# these, a leaked token, a stolen session or an old proof stays useful for too long, or one
# request can make a worker read a gigabyte. Tests and demos are not bound by them.
PRODUCTION_MAXIMA: tuple[tuple[str, str, int, str], ...] = (
    ("tokens", "id_token_lifetime", 3_600, "1 hour"),
    ("tokens", "refresh_token_lifetime", 90 * 86_400, "90 days"),
    ("interaction", "lifetime", 3_600, "1 hour"),
    ("interaction", "session_lifetime", 86_400, "1 day"),
    ("interaction", "wallet_transaction_lifetime", 900, "15 minutes"),
    ("interaction", "kb_jwt_max_age", 300, "5 minutes"),
    ("client_auth", "clock_skew", 300, "5 minutes"),
    ("client_auth", "assertion_max_lifetime", 3_600, "1 hour"),
    ("limits", "max_body_bytes", 1_048_576, "1 MiB"),
)
_CHARACTER_CLASSES = (
    (str.isdigit, 10),
    (str.islower, 26),
    (str.isupper, 26),
)


def _secret_weakness(value: str) -> str:
    """Why ``value`` cannot be a secret of 32 random bytes ("" when it can).

    The estimate is an upper bound: length × log2(size of the character classes used: digits,
    lower case, upper case, other printable ASCII, anything else counted as a byte). A value
    that is one character repeated, or a short pattern repeated, is refused whatever its length.
    """
    if len(set(value)) == 1:
        return "one character repeated"
    for period in range(1, len(value) // 2 + 1):
        if len(value) % period == 0 and value == value[:period] * (len(value) // period):
            return "a short pattern repeated"
    alphabet = 0
    rest = value
    for test, size in _CHARACTER_CLASSES:
        if any(test(ch) and ch.isascii() for ch in value):
            alphabet += size
        rest = "".join(ch for ch in rest if not (test(ch) and ch.isascii()))
    if rest:
        alphabet += 33 if rest.isascii() else 256
    bits = len(value) * math.log2(alphabet)
    if bits < SECRET_MIN_BITS:
        return (
            f"at most {int(bits)} bits of entropy, not the 32 random bytes ({SECRET_MIN_BITS} bits)"
        )
    return ""


def _validate_production_bounds(settings: Settings, problems: list[str]) -> None:
    """Production only: lifetimes, skews and the body limit within PRODUCTION_MAXIMA, https
    (or custom-scheme) wallet and card-app links, and no link-local, unspecified or range
    entries in ``fetcher.private_hosts``."""
    for section, key, maximum, words in PRODUCTION_MAXIMA:
        value = getattr(getattr(settings, section), key)
        if value > maximum:
            problems.append(f"{section}.{key}: at most {maximum} ({words}) in production")
    try:
        wallet_request_url(
            settings.interaction.wallet_link_base,
            client_id="https://as.check.invalid",
            request_uri="https://wallet-link.check.invalid/wallet/request/x",
        )
    except LinkError as exc:
        problems.append(
            "interaction.wallet_link_base: production needs an https link or a wallet scheme "
            f"such as openid4vp:// ({exc.detail or exc.reason})"
        )
    try:
        wallet_request_url(
            settings.interaction.certificate_link_base,
            client_id="https://as.check.invalid",
            request_uri="https://certificate-link.check.invalid/certificate/request/x",
        )
    except LinkError as exc:
        problems.append(
            "interaction.certificate_link_base: production needs an https link or an app "
            f"scheme such as trustanchor-certificate:// ({exc.detail or exc.reason})"
        )
    for host in settings.fetcher.private_hosts:
        reason = _private_host_problem(host)
        if reason:
            problems.append(f"fetcher.private_hosts: {host!r} {reason}")


def _private_host_problem(host: str) -> str:
    """Why ``host`` must not be exempted from the fetcher's address policy ("" if it may)."""
    text = host.strip().lower()
    if not text or "/" in text or "*" in text:
        return "is not a single host name or address (ranges and wildcards are not allowed)"
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return ""  # a host name: the fetcher exempts exactly that name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local:
        return "is link-local (169.254.0.0/16, fe80::/10: cloud metadata endpoints live there)"
    if address.is_unspecified or address.is_multicast:
        return "is the unspecified or a multicast address, not a host"
    if isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address(
        "255.255.255.255"
    ):
        return "is the broadcast address, not a host"
    return ""
