"""The composition root: builds every long-lived object once from the settings.

Keys are parsed, clients and anchors cached, verifiers constructed here — never per request.
The signing key store re-reads its key directory when it changes (checked once a second, see
keystore/signing_keys.py), so a key rotation reaches running workers without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trustanchor.anchors.fetcher import Fetcher
from trustanchor.clock import Clock, SystemClock
from trustanchor.config.settings import Settings
from trustanchor.digests import keyed_digest
from trustanchor.endpoints import Endpoints
from trustanchor.keystore.audit_key import AuditKey, list_audit_keys, load_audit_key
from trustanchor.keystore.signing_keys import KeyStoreError, SigningKeyStore
from trustanchor.metrics import MetricsRelay
from trustanchor.oauth.client_auth import ClientAuthenticator
from trustanchor.oauth.dpop import DpopVerifier
from trustanchor.oauth.jwt_tokens import AccessTokenVerifier, TokenSigner
from trustanchor.randomness import Randomness, SystemRandomness
from trustanchor.secrets_store import ServiceSecrets, load_secrets
from trustanchor.services.anchor_verifiers import AnchorVerifiers
from trustanchor.services.audit_log import AuditLog
from trustanchor.services.client_registry import ClientRegistry
from trustanchor.services.refusals import ClientBudgets, RefusalBudget
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database
from trustanchor.storage.replay import DatabaseJtiRegistry


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    randomness: Randomness
    endpoints: Endpoints
    secrets: ServiceSecrets
    keys: SigningKeyStore
    signer: TokenSigner
    access_tokens: AccessTokenVerifier
    clients: ClientRegistry
    anchors: AnchorRepository
    replay: DatabaseJtiRegistry
    dpop: DpopVerifier
    client_auth: ClientAuthenticator
    verifiers: AnchorVerifiers
    audit_key: AuditKey
    audit: AuditLog
    refusal_budget: RefusalBudget = field(default_factory=RefusalBudget)
    # Failed logins that name no verified credential in flows a registered intermediary
    # started: one budget per intermediary (services/login_failures.py).
    client_login_budgets: ClientBudgets = field(default_factory=ClientBudgets)
    # Logins on the service's own pages (/my, /auditor) that anyone may start: each stores a
    # pushed request and an interaction until the daily purge, so their rate is bounded per
    # process (LOGIN_START_BURST at once, LOGIN_START_PER_SECOND more each second).
    login_start_budget: RefusalBudget = field(
        default_factory=lambda: RefusalBudget(LOGIN_START_BURST, LOGIN_START_PER_SECOND)
    )
    # What operators count (trustanchor/metrics.py): counts nothing until the web layer
    # attaches its Prometheus registry (metrics.token set).
    metrics: MetricsRelay = field(default_factory=MetricsRelay)

    @property
    def default_audience(self) -> str:
        return self.settings.tokens.default_audience or self.endpoints.resource


LOGIN_START_BURST = 60
LOGIN_START_PER_SECOND = 2


def http_fetcher(settings: Settings, clock: Clock) -> Fetcher:
    """The HTTPS fetcher with the ``[fetcher]`` settings' limits and address policy (anchor
    material, status lists): the one the service uses, and the CLI's status re-check."""
    from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings

    conf = settings.fetcher
    return HttpFetcher(
        clock=clock,
        settings=HttpFetcherSettings(
            timeout=float(conf.timeout),
            deadline=float(conf.deadline),
            cache_ttl=conf.cache_ttl,
            http_hosts=frozenset(conf.http_hosts),
            private_hosts=frozenset(conf.private_hosts),
        ),
    )


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    randomness: Randomness | None = None,
    fetcher: Fetcher | None = None,
    db: Database | None = None,
) -> Services:
    clock = clock or SystemClock()
    randomness = randomness or SystemRandomness()
    db = db or Database(
        settings.service.database_url,
        pool_size=max(5, settings.service.workers * 4),
        group_commit=settings.service.group_commit,
        group_commit_linger=settings.service.group_commit_linger_us / 1e6,
    )
    secrets = load_secrets(settings, create=False)
    keys = SigningKeyStore.open(
        Path(settings.service.keys_dir), retention=settings.tokens.key_retention, clock=clock
    )
    keys.current()  # fail at start-up, not on the first request; later key changes: reloaded
    endpoints = Endpoints(settings.issuer)
    audit_key = load_audit_key(settings.service.keys_dir)
    if audit_key.name != settings.audit_origin:
        raise KeyStoreError(
            f"the audit key is named {audit_key.name!r} but the log origin is "
            f"{settings.audit_origin!r}; set audit.origin = {audit_key.name!r}"
        )
    replay = DatabaseJtiRegistry(db)
    clients = ClientRegistry(db, clock=clock)
    if fetcher is None:
        fetcher = http_fetcher(settings, clock)
    metrics = MetricsRelay()
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        randomness=randomness,
        endpoints=endpoints,
        secrets=secrets,
        keys=keys,
        signer=TokenSigner(keys, issuer=settings.issuer),
        access_tokens=AccessTokenVerifier(keys, issuer=settings.issuer, algs=("ES256", "EdDSA")),
        clients=clients,
        anchors=AnchorRepository(db, clock=clock, ttl=5),
        replay=replay,
        dpop=DpopVerifier(
            settings.dpop,
            replay,
            keyed_digest(secrets.cookie, "dpop-nonce-key").encode("ascii"),  # a key of its own
            max_bytes=settings.limits.max_jws_bytes,
        ),
        client_auth=ClientAuthenticator(
            clients,
            replay,
            settings.client_auth,
            issuer=settings.issuer,
            max_jws_bytes=settings.limits.max_jws_bytes,
        ),
        verifiers=AnchorVerifiers(settings, fetcher, clock, randomness=randomness, metrics=metrics),
        audit_key=audit_key,
        audit=AuditLog(
            db,
            audit_key,
            clock,
            batch_size=settings.audit.batch_size,
            verifiers=[info.verifier() for info in list_audit_keys(settings.service.keys_dir)],
            keys_dir=settings.service.keys_dir,  # follows an audit key rotation
        ),
        metrics=metrics,
    )
