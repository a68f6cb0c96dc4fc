"""One verifier object per anchor, built on first use and rebuilt when the anchor changes."""

from __future__ import annotations

from trustanchor.anchors.base import AnchorFailure, AnchorVerifier
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.oidc_provider import UpstreamProvider
from trustanchor.anchors.oidc_settings import parse_settings as parse_oidc_settings
from trustanchor.anchors.revocation import build_checker
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.anchors.x509_settings import parse_settings as parse_x509_settings
from trustanchor.anchors.x509_verifier import X509Verifier
from trustanchor.clock import Clock, SystemClock
from trustanchor.config.settings import Settings
from trustanchor.domain.anchors import Anchor
from trustanchor.metrics import (
    OIDC_PROVIDER,
    STATUS_LIST,
    X509_REVOCATION,
    MeteredFetcher,
    Metrics,
    NoMetrics,
)
from trustanchor.randomness import Randomness


class AnchorVerifiers:
    def __init__(
        self,
        settings: Settings,
        fetcher: Fetcher | None,
        clock: Clock | None = None,
        *,
        randomness: Randomness | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        # One fetcher per kind of source, each counting its outcomes (trustanchor/metrics.py).
        counted = metrics if metrics is not None else NoMetrics()
        self._status_lists = _metered(fetcher, counted, STATUS_LIST)
        self._revocation = _metered(fetcher, counted, X509_REVOCATION)
        self._providers_fetcher = _metered(fetcher, counted, OIDC_PROVIDER)
        self._randomness = randomness  # OCSP nonces of x509 anchors' revocation checkers
        self._certificates: dict[str, tuple[int, X509Verifier]] = {}
        self._clock: Clock = clock or SystemClock()
        self._cache: dict[str, tuple[int, AnchorVerifier]] = {}
        self._providers: dict[str, tuple[int, UpstreamProvider]] = {}

    @property
    def fetcher(self) -> Fetcher | None:
        """The service's one Fetcher (services/upstream_login.py posts to an upstream
        provider's PAR and token endpoints and reads its UserInfo with it; added by H4b)."""
        return self._providers_fetcher

    def for_anchor(self, anchor: Anchor) -> AnchorVerifier:
        """The verifier for an *active* anchor; suspended or retired anchors fail closed."""
        if not anchor.is_active:
            raise AnchorFailure("anchor_suspended", f"anchor {anchor.id} is {anchor.status}")
        cached = self._cache.get(anchor.id)
        if cached is not None and cached[0] == anchor.updated_at:
            return cached[1]
        verifier: AnchorVerifier
        if anchor.kind == "sd_jwt_vc":
            verifier = SdJwtVcVerifier(
                anchor,
                fetcher=self._status_lists,
                limits=self._settings.limits,
                kb_max_age=self._settings.interaction.kb_jwt_max_age,
                clock_skew=self._settings.client_auth.clock_skew,
            )
        else:
            raise AnchorFailure("anchor_kind_unsupported", anchor.kind)
        self._cache[anchor.id] = (anchor.updated_at, verifier)
        return verifier

    def upstream_provider(self, anchor: Anchor) -> UpstreamProvider:
        """The relying-party view of an *active* ``oidc`` anchor, kept (with its discovery and
        JWKS caches) until the anchor changes; suspended or retired anchors fail closed."""
        if not anchor.is_active:
            raise AnchorFailure("anchor_suspended", f"anchor {anchor.id} is {anchor.status}")
        if anchor.kind != "oidc":
            raise AnchorFailure("anchor_kind_unsupported", f"{anchor.kind} is not oidc")
        cached = self._providers.get(anchor.id)
        if cached is not None and cached[0] == anchor.updated_at:
            return cached[1]
        if self._providers_fetcher is None:
            raise AnchorFailure("provider_unreachable", "no fetcher configured")
        settings = parse_oidc_settings(
            anchor.settings,
            anchor_level=anchor.assurance_level,
            allow_http=not self._settings.is_production,
        )
        provider = UpstreamProvider(
            anchor, settings, fetcher=self._providers_fetcher, clock=self._clock
        )
        self._providers[anchor.id] = (anchor.updated_at, provider)
        return provider

    def certificate_verifier(self, anchor: Anchor) -> X509Verifier:
        """The verifier of an *active* ``x509`` anchor with its revocation checker (whose CRL
        cache lives as long as the verifier: until the anchor changes); suspended or retired
        anchors fail closed, and so does an anchor whose revocation source cannot be reached
        for want of a fetcher."""
        if not anchor.is_active:
            raise AnchorFailure("anchor_suspended", f"anchor {anchor.id} is {anchor.status}")
        if anchor.kind != "x509":
            raise AnchorFailure("anchor_kind_unsupported", f"{anchor.kind} is not x509")
        cached = self._certificates.get(anchor.id)
        if cached is not None and cached[0] == anchor.updated_at:
            return cached[1]
        if self._revocation is None:
            raise AnchorFailure("revocation_unavailable", "no fetcher configured")
        checker = build_checker(
            parse_x509_settings(anchor.settings).revocation,
            fetcher=self._revocation,
            randomness=self._randomness,
        )
        verifier = X509Verifier(
            anchor,
            revocation=checker,
            limits=self._settings.limits,
            clock_skew=self._settings.client_auth.clock_skew,
        )
        self._certificates[anchor.id] = (anchor.updated_at, verifier)
        return verifier


def _metered(fetcher: Fetcher | None, metrics: Metrics, source: str) -> Fetcher | None:
    return None if fetcher is None else MeteredFetcher(fetcher, metrics, source)
