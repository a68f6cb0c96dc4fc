"""Periodic re-check of credential status (issue 4, "learning that a credential was revoked").

A login checks the credential's Token Status List entry once; afterwards the issuer may revoke or
suspend it. Operators run :func:`recheck` periodically (``trustanchor identities check-status``
from cron or a systemd timer): for every identity that carries a status reference at an
``sd_jwt_vc`` anchor whose ``status_check`` is not ``off``, the Status List Token is fetched and
verified by the same code the login uses (:mod:`trustanchor.anchors.status_list`: the anchor's
configured keys only, ``typ``, ``sub`` = uri, ``iat``/``exp``, bits, index) and the entry read.

Identities at an ``x509`` anchor (certificate login, issue 11) carry their authentication
certificate and its issuer as the reference, and are checked through that anchor's revocation
source (CRL or OCSP, :mod:`trustanchor.anchors.revocation`), the same checker the login uses: not
listed → ``valid``, listed → ``revoked``, no verified answer → ``unknown``.

Outcomes: 0 → ``valid``, 1 → ``revoked``, 2 → ``suspended``; a list that cannot be fetched or
verified, an index it does not cover, a malformed stored reference, or a status value we cannot
act on → ``unknown`` (never ``valid``; the anchor set's ``revocation_check`` decides what unknown
means for decisions). Two rules keep a check from undoing what is known (fail closed):

- ``revoked`` is final: revoked identities are not checked again, and a later list showing the
  index as valid (an issuer reusing an index, a rolled-back list) would not bring the credential
  back; only a new login with a freshly verified credential does;
- a failed check (``unknown``) does not replace ``suspended``: not being able to look is not
  evidence that the suspension was lifted.

Only a change of status calls :func:`cascades.credential_status_changed` (which revokes transfer
grants and flags accounts and links); an unchanged status just has its check time noted, so that
runs with a ``limit`` take turns through the least recently checked identities. Each distinct list
is fetched once per run and verified once per anchor relying on it.

Nothing personal is reported: identity ids are internal, list URIs belong to issuers; subjects,
claims and status indices never leave this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from trustanchor.anchors import revocation, status_list
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.revocation import RevocationChecker
from trustanchor.anchors.sd_jwt_vc_settings import SdJwtVcSettings, parse_settings
from trustanchor.anchors.x509_settings import parse_settings as parse_x509_settings
from trustanchor.anchors.x509_verifier import certificates_of
from trustanchor.domain.anchors import Anchor
from trustanchor.randomness import Randomness
from trustanchor.services import cascades
from trustanchor.services.cascades import CascadeResult
from trustanchor.storage import identities_repo
from trustanchor.storage.database import Database
from trustanchor.storage.identities_repo import StatusCheckTarget

STATUS_VALUES = {
    status_list.VALID: "valid",
    status_list.INVALID: "revoked",
    status_list.SUSPENDED: "suspended",
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CheckFailure:
    """Why some identities came out ``unknown``: one line per (anchor, list, reason)."""

    anchor_id: str
    uri: str
    reason: str
    detail: str
    identities: int


@dataclass(frozen=True, slots=True)
class StatusChange:
    identity_id: str
    previous: str
    status: str
    cascade: CascadeResult


@dataclass(frozen=True, slots=True)
class Summary:
    checked: int
    changes: tuple[StatusChange, ...]
    unknown: int  # identities whose check this run gave no verified answer
    errors: tuple[CheckFailure, ...]
    skipped_anchors: tuple[str, ...]  # sd_jwt_vc anchors with status_check = "off"

    @property
    def changed(self) -> dict[str, int]:
        """Number of identities that changed, by their new status."""
        return dict(sorted(Counter(change.status for change in self.changes).items()))

    @property
    def revoked_grants(self) -> int:
        return sum(change.cascade.revoked_grants for change in self.changes)

    @property
    def flagged_accounts(self) -> int:
        return sum(change.cascade.flagged_accounts for change in self.changes)

    @property
    def flagged_links(self) -> int:
        return sum(change.cascade.flagged_links for change in self.changes)


class _Unknown(Exception):
    def __init__(self, uri: str, reason: str, detail: str) -> None:
        self.uri, self.reason, self.detail = uri, reason, detail
        super().__init__(reason)


@dataclass
class _ListCache:
    """One fetch per (list, size limit) and one verification per (anchor, list) in a run;
    failures are remembered too, so an unreachable list is asked once, not once per identity."""

    fetcher: Fetcher
    at: int
    clock_skew: int
    tokens: dict[tuple[str, int], str | status_list.StatusListError] = field(default_factory=dict)
    lists: dict[tuple[str, str], status_list.StatusList | status_list.StatusListError] = field(
        default_factory=dict
    )

    def verified(
        self, anchor_id: str, settings: SdJwtVcSettings, uri: str
    ) -> status_list.StatusList:
        key = (anchor_id, uri)
        if key not in self.lists:
            try:
                self.lists[key] = status_list.verify_status_list_token(
                    self._token(uri, settings.status_max_bytes),
                    expected_uri=uri,
                    keys=settings.candidate_keys,
                    allowed_algs=settings.algs,
                    max_bytes=settings.status_max_bytes,
                    at=self.at,
                    clock_skew=self.clock_skew,
                )
            except status_list.StatusListError as exc:
                self.lists[key] = exc
        found = self.lists[key]
        if isinstance(found, status_list.StatusListError):
            raise found
        return found

    def _token(self, uri: str, max_bytes: int) -> str:
        key = (uri, max_bytes)
        if key not in self.tokens:
            try:
                self.tokens[key] = status_list.fetch_status_list_token(
                    uri, fetcher=self.fetcher, max_bytes=max_bytes
                )
            except status_list.StatusListError as exc:
                self.tokens[key] = exc
        found = self.tokens[key]
        if isinstance(found, status_list.StatusListError):
            raise found
        return found


def recheck(
    db: Database,
    anchors: Iterable[Anchor],
    fetcher: Fetcher,
    *,
    at: int,
    clock_skew: int,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    randomness: Randomness | None = None,
) -> Summary:
    """Re-check the status of up to ``limit`` identities (least recently checked first) and
    apply the cascade for each one whose status changed. ``clock_skew`` is the tolerance the
    login uses (``client_auth.clock_skew``); ``randomness`` gives OCSP nonces for ``x509``
    anchors that ask for them. ``progress(done, total)`` is called once the
    targets are known and after each identity. Storage failures propagate; every step is
    idempotent, so running again finishes an interrupted run."""
    if limit is not None and limit < 1:
        raise ValueError("limit must be a positive integer")
    settings: dict[str, SdJwtVcSettings | ValueError] = {}
    checkers: dict[str, RevocationChecker | ValueError] = {}
    skipped: list[str] = []
    for anchor in anchors:
        if anchor.kind == "x509":
            try:
                checkers[anchor.id] = revocation.build_checker(
                    parse_x509_settings(anchor.settings).revocation,
                    fetcher=fetcher,
                    randomness=randomness,
                )
            except ValueError as exc:  # validated at start-up; fail closed if broken now
                checkers[anchor.id] = exc
            continue
        if anchor.kind != "sd_jwt_vc":
            continue
        try:
            parsed = parse_settings(anchor.settings)
        except ValueError as exc:  # validated at start-up; fail closed if it is broken now
            settings[anchor.id] = exc
            continue
        if parsed.status_check == "off":
            skipped.append(anchor.id)
        else:
            settings[anchor.id] = parsed
    with db.reader() as conn:
        targets = identities_repo.status_check_targets(conn, [*settings, *checkers], limit=limit)

    cache = _ListCache(fetcher, at, clock_skew)
    failures: Counter[tuple[str, str, str, str]] = Counter()
    confirmed: dict[str, list[str]] = {}
    changes: list[StatusChange] = []
    unknown = 0
    for target in _reporting(targets, progress):
        try:
            if target.anchor_id in checkers:
                observed = _observe_certificate(target, checkers[target.anchor_id], at)
            else:
                observed = _observe(target, settings[target.anchor_id], cache)
        except _Unknown as exc:
            observed = "unknown"
            unknown += 1
            failures[(target.anchor_id, exc.uri, exc.reason, exc.detail)] += 1
        status = _next_status(target.credential_status, observed)
        if status == target.credential_status:
            confirmed.setdefault(status, []).append(target.id)
            continue
        result = cascades.credential_status_changed(db, target.id, status, at=at)
        if result is not None:  # None: the identity was deleted meanwhile
            changes.append(StatusChange(target.id, target.credential_status, status, result))
    if confirmed:
        with db.transaction() as conn:
            for status, identity_ids in confirmed.items():
                identities_repo.mark_status_checked(conn, identity_ids, status, now=at)
    return Summary(
        checked=len(targets),
        changes=tuple(changes),
        unknown=unknown,
        errors=tuple(
            CheckFailure(anchor_id, uri, reason, detail, count)
            for (anchor_id, uri, reason, detail), count in sorted(failures.items())
        ),
        skipped_anchors=tuple(sorted(skipped)),
    )


def _reporting(targets: Sequence[T], progress: Callable[[int, int], None] | None) -> Iterator[T]:
    """``targets`` one by one; ``progress(done, total)`` before the first and after each one (a
    generator resumes only when the loop body asking for the next item has finished)."""
    if progress is not None:
        progress(0, len(targets))
    for done, target in enumerate(targets, start=1):
        yield target
        if progress is not None:
            progress(done, len(targets))


def _observe(
    target: StatusCheckTarget,
    settings: SdJwtVcSettings | ValueError,
    cache: _ListCache,
) -> str:
    """The status the issuer's list gives for ``target``, or :class:`_Unknown` saying why not."""
    raw_uri = target.status_reference.get("uri")
    shown_uri = raw_uri[:2048] if isinstance(raw_uri, str) else ""
    if isinstance(settings, ValueError):
        raise _Unknown(shown_uri, "anchor_settings_invalid", str(settings))
    try:
        # The stored reference goes through the login's own parser again: a row changed by
        # hand or by an older version is refused, not guessed at.
        reference = status_list.status_reference(
            {"status": {"status_list": target.status_reference}}
        )
        if reference is None:
            raise status_list.StatusListError("malformed_status_reference", "no reference")
        value = cache.verified(target.anchor_id, settings, reference.uri).status(reference.idx)
    except status_list.StatusListError as exc:
        raise _Unknown(shown_uri, exc.reason, exc.detail) from exc
    status = STATUS_VALUES.get(value)
    if status is None:
        # Application-specific or unregistered values: the login refuses them
        # (credential_status_unrecognised); here they are "no usable answer", never valid.
        raise _Unknown(shown_uri, "credential_status_unrecognised", f"status {value}")
    return status


def _observe_certificate(
    target: StatusCheckTarget, checker: RevocationChecker | ValueError, at: int
) -> str:
    """``valid`` or ``revoked`` by the anchor's revocation source, or :class:`_Unknown`. The
    ``uri`` of a failure names the certificate's issuer (never the holder's serial)."""
    if isinstance(checker, ValueError):
        raise _Unknown("", "anchor_settings_invalid", str(checker))
    try:
        certificate, issuer = certificates_of(target.status_reference)
    except ValueError as exc:
        raise _Unknown("", "malformed_status_reference", str(exc)) from exc
    shown = issuer.subject.rfc4514_string()[:2048]
    try:
        checker.check(certificate, issuer, at=at)
    except AnchorFailure as failure:
        if failure.reason == "certificate_revoked":
            return "revoked"
        raise _Unknown(shown, failure.reason, failure.detail[:500]) from failure
    return "valid"


def _next_status(previous: str, observed: str) -> str:
    """What to record, given what was recorded and what this check saw (module docstring)."""
    if previous == "revoked":
        return "revoked"
    if observed == "unknown" and previous == "suspended":
        return "suspended"
    return observed
