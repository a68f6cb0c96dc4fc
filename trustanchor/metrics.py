"""What the service counts for operators (issue 14), as a port: the services and anchors call a
:class:`Metrics`; the web layer attaches the Prometheus implementation
(``trustanchor.web.metrics``) when ``metrics.token`` is set. Until then, and in the CLI, every
call goes to :class:`NoMetrics` and costs one method call.

Labels are bounded and never personal: grant types the token endpoint supports, the policy
engine's closed list of reason codes, anchor kinds and anchor ids (operator configuration),
fetch sources and :class:`~trustanchor.anchors.fetcher.FetchError` reasons. Never a client id, a
subject, a holder, an account or a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from trustanchor.anchors.fetcher import Fetcher, FetchError


class Metrics(Protocol):
    def token_issued(self, grant_type: str) -> None:
        """The token endpoint answered a ``grant_type`` request with tokens (after commit)."""
        ...

    def decision(self, outcome: str, reason: str) -> None:
        """A policy decision took effect (``allowed``/``denied``, a policy reason code)."""
        ...

    def login(self, anchor_kind: str, anchor_id: str, outcome: str) -> None:
        """A login ended: ``ok`` or a stable failure reason, through an anchor (ids of anchors
        unknown to the service are never used as labels: ``unknown``)."""
        ...

    def fetch(self, source: str, outcome: str) -> None:
        """An outbound fetch of anchor material ended: ``ok`` or the FetchError reason."""
        ...


class NoMetrics:
    """Counts nothing (metrics off, the CLI, tests that do not look)."""

    def token_issued(self, grant_type: str) -> None:
        pass

    def decision(self, outcome: str, reason: str) -> None:
        pass

    def login(self, anchor_kind: str, anchor_id: str, outcome: str) -> None:
        pass

    def fetch(self, source: str, outcome: str) -> None:
        pass


class MetricsRelay:
    """The :class:`Metrics` the services hold (``Services.metrics``): it forwards to ``sink``,
    which the web layer replaces once it has built its registry (the services are built first,
    and long-lived objects such as the anchor verifiers keep this relay)."""

    def __init__(self, sink: Metrics | None = None) -> None:
        self.sink: Metrics = sink if sink is not None else NoMetrics()

    def token_issued(self, grant_type: str) -> None:
        self.sink.token_issued(grant_type)

    def decision(self, outcome: str, reason: str) -> None:
        self.sink.decision(outcome, reason)

    def login(self, anchor_kind: str, anchor_id: str, outcome: str) -> None:
        self.sink.login(anchor_kind, anchor_id, outcome)

    def fetch(self, source: str, outcome: str) -> None:
        self.sink.fetch(source, outcome)


# Where outbound fetches go (label values of Metrics.fetch).
STATUS_LIST = "status_list"  # sd_jwt_vc anchors: Token Status Lists
X509_REVOCATION = "x509_revocation"  # x509 anchors: CRLs (GET) and OCSP (POST)
OIDC_PROVIDER = "oidc_provider"  # oidc anchors: discovery, JWKS, PAR, token, UserInfo


class MeteredFetcher:
    """A :class:`~trustanchor.anchors.fetcher.Fetcher` that counts each fetch's outcome under
    ``source`` (cache hits of the wrapped fetcher count as ``ok``)."""

    def __init__(self, fetcher: Fetcher, metrics: Metrics, source: str) -> None:
        self._fetcher = fetcher
        self._metrics = metrics
        self._source = source

    def get(self, url: str, *, accept: str, max_bytes: int) -> bytes:
        try:
            body = self._fetcher.get(url, accept=accept, max_bytes=max_bytes)
        except FetchError as exc:
            self._metrics.fetch(self._source, exc.reason)
            raise
        self._metrics.fetch(self._source, "ok")
        return body

    def post(
        self,
        url: str,
        *,
        body: bytes,
        content_type: str,
        accept: str,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        try:
            answer = self._fetcher.post(
                url,
                body=body,
                content_type=content_type,
                accept=accept,
                max_bytes=max_bytes,
                headers=headers,
            )
        except FetchError as exc:
            self._metrics.fetch(self._source, exc.reason)
            raise
        self._metrics.fetch(self._source, "ok")
        return answer

    def get_authorized(
        self, url: str, *, accept: str, max_bytes: int, headers: Mapping[str, str]
    ) -> bytes:
        try:
            body = self._fetcher.get_authorized(
                url, accept=accept, max_bytes=max_bytes, headers=headers
            )
        except FetchError as exc:
            self._metrics.fetch(self._source, exc.reason)
            raise
        self._metrics.fetch(self._source, "ok")
        return body
