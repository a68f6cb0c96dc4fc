"""The immutable settings object. Field names here are the TOML keys (section.key)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

Mode = Literal["production", "demo", "test"]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    mode: Mode
    issuer: str
    database_url: str
    keys_dir: str
    host: str
    port: int
    workers: int
    threads: int  # request threads per worker; 0: by database (serving.threads_per_worker)
    group_commit: bool  # SQLite: concurrent write transactions share one commit
    group_commit_linger_us: int  # how long a batch may wait for requests in flight
    lean_token_endpoint: bool  # /token without Flask (web/token_route.py)
    token_on_loop: bool  # with group commit: the lean /token on the event loop's thread
    event_loop: str  # auto | uvloop | asyncio: the workers' event loop (cli/lifecycle.py)
    # Secrets. In demo/test mode an empty value is replaced by a value generated into keys_dir.
    pairwise_secret: str
    cookie_secret: str


@dataclass(frozen=True, slots=True)
class TokenSettings:
    signing_alg: str
    access_token_lifetime: int
    transfer_token_lifetime: int  # access tokens of value_transfer grants (single transfer)
    id_token_lifetime: int
    refresh_token_lifetime: int
    authorization_code_lifetime: int
    request_uri_lifetime: int
    default_audience: str
    key_retention: int  # seconds a retired signing key stays in the JWKS after retirement
    # seconds `keys rotate` publishes the next key in the JWKS before it signs (and the old
    # keys stop): at least the relying parties' JWKS cache lifetime (ledger.JWKS_MAX_AGE)
    key_activation_delay: int = 600


@dataclass(frozen=True, slots=True)
class DpopSettings:
    iat_leeway: int
    require_nonce: bool
    nonce_lifetime: int
    allowed_algs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ClientAuthSettings:
    assertion_max_lifetime: int
    clock_skew: int
    allowed_algs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LimitSettings:
    max_body_bytes: int
    max_jws_bytes: int
    max_json_depth: int
    max_authorization_details: int
    max_disclosures: int
    # Slow clients (trustanchor serve, trustanchor.web.serving): seconds for the whole header
    # block; seconds for the body, plus one per min_body_rate bytes received, at most
    # body_read_timeout_max. Slower: 408 (body) or the connection is closed (headers). The
    # loader always sets them (the packaged defaults.toml); these defaults serve code that
    # builds limits for parsing only.
    header_read_timeout: int = 10
    body_read_timeout: int = 10
    body_read_timeout_max: int = 30
    min_body_rate: int = 500
    # Per worker: requests waiting for their body at once (beyond: the longest-waiting one is
    # cut off with its 408), and requests granian hands the worker at once (its backpressure).
    waiting_bodies_per_worker: int = 256
    requests_per_worker: int = 1024


@dataclass(frozen=True, slots=True)
class InteractionSettings:
    lifetime: int
    session_lifetime: int
    wallet_transaction_lifetime: int
    kb_jwt_max_age: int
    wallet_link_base: str  # how the same-device link / QR code invokes the wallet
    verifier_client_id: str  # our client_id towards wallets; empty: the issuer identifier
    # how the same-device link / QR code opens the card app of certificate login (x509 anchors)
    certificate_link_base: str


@dataclass(frozen=True, slots=True)
class FetcherSettings:
    """Fetching anchor material (status lists, later JWKS and CRLs) from the network."""

    timeout: int  # seconds per socket operation
    deadline: int  # seconds for a whole request
    cache_ttl: int
    http_hosts: tuple[str, ...]  # hosts that may be fetched over plain http
    private_hosts: tuple[str, ...]  # hosts that may resolve to private/loopback addresses


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The audit log's batch integrator (issue 3).

    Leaves are appended with the work they record; every ``checkpoint_interval_ms`` a background
    integrator gives up to ``batch_size`` of them tree indexes and signs a checkpoint, so the time
    from issuance to being covered by a signed checkpoint stays around one interval (target
    ≤ 1 s). ``origin`` is the log's identity (checkpoint origin line = audit key name); empty
    means ``<issuer host>/trustanchor-audit``. It never changes once a key carries it.
    """

    checkpoint_interval_ms: int
    batch_size: int
    origin: str
    # /readyz fails once a committed entry has waited longer than this many seconds for a
    # signed checkpoint (the integrators stalled; issue 14)
    stall_after: int = 60


@dataclass(frozen=True, slots=True)
class AuditorConsoleSettings:
    """The auditor web console (/auditor/). ``session_lifetime``: seconds a console login lasts
    (every request also re-checks that the person is still a designated auditor)."""

    session_lifetime: int


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """Demo mode only (issue 5). ``parties_url``: the origin of the demo parties' app (wallet,
    bank and ledger under /wallet, /bank, /ledger), which the service's root page links to;
    empty outside demo mode. The service never calls it."""

    parties_url: str


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Prometheus metrics at /metrics (issue 14, trustanchor.web.metrics). ``token``: the
    bearer token a scraper sends (``Authorization: Bearer <token>``, compared in constant
    time); empty, the default: nothing is counted and /metrics answers 404."""

    token: str = ""


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    """Operator logs (issue 14, trustanchor.log_setup): ``format`` "text" (one readable line
    per event) or "json" (one JSON object per line); ``level`` debug, info, warning or error.
    Every line carries the request's id; nothing secret or personal is logged."""

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


@dataclass(frozen=True, slots=True)
class Settings:
    service: ServiceSettings
    tokens: TokenSettings
    dpop: DpopSettings
    client_auth: ClientAuthSettings
    limits: LimitSettings
    interaction: InteractionSettings
    fetcher: FetcherSettings
    audit: AuditSettings
    auditor_console: AuditorConsoleSettings
    demo: DemoSettings
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    # Declarations applied idempotently at init/start; validated by their own modules.
    anchors: tuple[dict[str, Any], ...] = field(default=())
    anchor_sets: tuple[dict[str, Any], ...] = field(default=())
    clients: tuple[dict[str, Any], ...] = field(default=())
    sources: tuple[str, ...] = field(default=())
    # The directory of the chosen configuration file (the working directory without one).
    base_dir: str = ""

    @property
    def is_production(self) -> bool:
        return self.service.mode == "production"

    @property
    def issuer(self) -> str:
        return self.service.issuer

    @property
    def audit_origin(self) -> str:
        """The log origin and audit key name: ``audit.origin``, else derived from the issuer
        host as ``<host>/trustanchor-audit``."""
        if self.audit.origin:
            return self.audit.origin
        host = urlsplit(self.service.issuer).hostname or "localhost"
        return f"{host}/trustanchor-audit"

    @property
    def config_dir(self) -> Path:
        """The directory of the chosen configuration file (the working directory when there
        is none); relative paths in declarations (jwks_file) are resolved against it."""
        return Path(self.base_dir) if self.base_dir else Path.cwd()


SECTIONS: dict[str, type] = {
    "service": ServiceSettings,
    "tokens": TokenSettings,
    "dpop": DpopSettings,
    "client_auth": ClientAuthSettings,
    "limits": LimitSettings,
    "interaction": InteractionSettings,
    "fetcher": FetcherSettings,
    "audit": AuditSettings,
    "auditor_console": AuditorConsoleSettings,
    "demo": DemoSettings,
    "logging": LoggingSettings,
    "metrics": MetricsSettings,
}
DECLARATIONS = ("anchors", "anchor_sets", "clients")
