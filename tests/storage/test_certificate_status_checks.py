"""Periodic revocation re-check of certificate identities (anchor kind ``x509``, issue 11) on
SQLite and PostgreSQL: an identity recorded by a real certificate login (a challenge signed with
the card's key, the chain validated, the CRL checked) carries its authentication certificate and
issuer as its status reference; later the CA's CRL lists the certificate, and
``credential_checks.recheck`` records it as revoked and runs the cascade exactly as for an SD-JWT
VC whose status list says revoked. A CRL that cannot be used never reads as valid."""

from __future__ import annotations

from typing import Any

import pytest
from support.credentials import InMemoryFetcher
from support.holdings import DEPOSIT, TRANSFER_GRANT, WALLET, bind_accounts_and_grant
from support.jpki import Card, TestPKI, challenge_jws

from trustanchor.anchors.revocation import build_checker, parse_revocation_settings
from trustanchor.anchors.x509_verifier import CertificateAnswer, ChallengeExpectation, X509Verifier
from trustanchor.config.settings import LimitSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import Identity
from trustanchor.services import credential_checks
from trustanchor.services.cascades import CascadeResult
from trustanchor.storage import accounts_repo, grants_repo, identities_repo
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database

LOGIN_AT = 1_800_000_000
CHECK_AT = LOGIN_AT + 1800
ANCHOR_ID = "jpki"
AUD = "https://trustanchor.example"
AUTH_CRL = "https://crl.jpki.example/authentication.crl"
SIGN_CRL = "https://crl.jpki.example/signature.crl"
REVOCATION = {"source": "crl", "crl_urls": [AUTH_CRL, SIGN_CRL]}
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=LOGIN_AT, label="status-checks")


@pytest.fixture(scope="module")
def card(pki: TestPKI) -> Card:
    return pki.person(label="taro", name="山田\u3000太郎", birthdate="19800102")


def serve(
    pki: TestPKI, fetcher: InMemoryFetcher, *, at: int, revoked: tuple[int, ...] = ()
) -> None:
    fetcher.serve(AUTH_CRL, pki.crl(pki.authentication_ca, revoked=revoked, now=at))
    fetcher.serve(SIGN_CRL, pki.crl(pki.signature_ca, now=at))


def anchor(pki: TestPKI) -> Anchor:
    return Anchor(
        id=ANCHOR_ID,
        kind="x509",
        display_name={"en": "My Number Card"},
        assurance_level="high",
        status="active",
        settings=pki.anchor_settings(revocation=REVOCATION),
    )


def log_in(database: Database, pki: TestPKI, card: Card, fetcher: InMemoryFetcher) -> Identity:
    """The login path: a challenge answered with the card's authentication key, verified by the
    anchor's verifier (chain, signature, CRL), then recorded."""
    checker = build_checker(parse_revocation_settings(REVOCATION), fetcher=fetcher, randomness=None)
    verifier = X509Verifier(anchor(pki), revocation=checker, limits=LIMITS, clock_skew=60)
    claims: dict[str, Any] = {
        "aud": AUD,
        "nonce": "n" * 43,
        "txn": "txn-1",
        "iat": LOGIN_AT,
        "exp": LOGIN_AT + 120,
    }
    verified = verifier.verify(
        CertificateAnswer(
            authentication=challenge_jws(card.authentication, cert="authentication", **claims),
            signature=challenge_jws(card.signature, cert="signature", **claims),
        ),
        expected=ChallengeExpectation(AUD, "n" * 43, "txn-1", LOGIN_AT + 600),
        at=LOGIN_AT,
        require_signature=True,
    )
    with database.transaction() as conn:
        return identities_repo.record(
            conn, verified, new_holder_id="hol_taro", new_identity_id="idn_taro", now=LOGIN_AT
        )


def recheck(database: Database, fetcher: InMemoryFetcher) -> credential_checks.Summary:
    return credential_checks.recheck(
        database, AnchorRepository(database).list(), fetcher, at=CHECK_AT, clock_skew=30
    )


@pytest.fixture
def logged_in(database: Database, pki: TestPKI, card: Card) -> tuple[Identity, InMemoryFetcher]:
    AnchorRepository(database).upsert(anchor(pki), LOGIN_AT - 100)
    fetcher = InMemoryFetcher()
    serve(pki, fetcher, at=LOGIN_AT)
    return log_in(database, pki, card, fetcher), fetcher


def test_a_certificate_listed_on_the_crl_later_is_recorded_revoked_and_cascades(
    database: Database, pki: TestPKI, card: Card, logged_in: tuple[Identity, InMemoryFetcher]
) -> None:
    identity, fetcher = logged_in
    bind_accounts_and_grant(database, identity, ANCHOR_ID, at=LOGIN_AT)
    serve(pki, fetcher, at=CHECK_AT, revoked=(card.authentication.serial,))

    summary = recheck(database, fetcher)

    assert (summary.checked, summary.changed, summary.unknown) == (1, {"revoked": 1}, 0)
    [change] = summary.changes
    assert change.cascade == CascadeResult(revoked_grants=1, flagged_accounts=2, flagged_links=1)
    with database.reader() as conn:
        grant = grants_repo.get_grant(conn, TRANSFER_GRANT)
        accounts = [accounts_repo.get(conn, a) for a in (DEPOSIT, WALLET)]
    assert grant is not None and grant.revoked_at == CHECK_AT
    assert {a.flagged_reason for a in accounts if a} == {"credential_revoked"}


def test_a_certificate_still_not_listed_stays_valid(
    database: Database, pki: TestPKI, logged_in: tuple[Identity, InMemoryFetcher]
) -> None:
    _, fetcher = logged_in
    serve(pki, fetcher, at=CHECK_AT)
    summary = recheck(database, fetcher)
    assert (summary.checked, summary.changes, summary.unknown) == (1, (), 0)


@pytest.mark.parametrize("problem", ["unreachable", "stale", "badly_signed"])
def test_an_unusable_crl_records_unknown_never_valid(
    database: Database,
    pki: TestPKI,
    card: Card,
    logged_in: tuple[Identity, InMemoryFetcher],
    problem: str,
) -> None:
    _, fetcher = logged_in
    fetcher.bodies.clear()  # the CRLs cached by the login's checker are not this run's
    if problem == "stale":
        fetcher.serve(AUTH_CRL, pki.crl(pki.authentication_ca, now=LOGIN_AT - 90_000))
    elif problem == "badly_signed":
        fetcher.serve(
            AUTH_CRL, pki.crl(pki.authentication_ca, now=CHECK_AT, signing_key=pki.root.key)
        )
    summary = recheck(database, fetcher)
    assert summary.unknown == 1
    assert summary.changed == {"unknown": 1}
    [error] = summary.errors
    assert error.reason == "revocation_unavailable"
    shown = repr(summary)  # the issuer is named; nothing of the holder or their certificate
    assert "山田" not in shown and f"{card.authentication.serial:x}" not in shown
