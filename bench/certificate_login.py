"""Certificate login verifications per second (anchors/x509_verifier.py), next to the bare pyca
bound for the same chain, measured in the same run.

What is timed, in interleaved rounds on one pinned CPU (the garbage collector stays on):

* **login (authentication certificate)**: ``X509Verifier.verify`` of one challenge JWS as the
  card app sends it (RS256, ``x5c`` = leaf + issuing CA, RSA-2048 everywhere): strict parse,
  the JWS signature, the claims, pyca's client verifier with the anchor's roots and our
  end-entity policy plus our own checks, and revocation by the real CRL checker
  (anchors/crl.py) whose CRL is already cached (the fetcher is asked once, before timing;
  ``--revoked`` other serials on each CRL, 1,000 by default);
* **enrolment (both certificates)**: the same with the signature certificate's JWS as well
  (two chains, two signatures, two CRL look-ups, the claims mapping);
* **bare pyca bound**: for the same chain, what no certificate login can do without —
  ``PolicyBuilder().store(roots).time(at).max_chain_depth(3).extension_policies(ca_policy=
  webpki_defaults_ca(), ee_policy=permit_all()).build_client_verifier().verify(leaf, [ca])``
  (the verifier built per call, as ours must: the time is the login's) and one RSA-2048
  PKCS#1 v1.5 SHA-256 verification of the same JWS signing input; certificates parsed
  beforehand;
* parts, to see where the difference goes: parsing alone (``parse_challenge``, which includes
  the DER parse of the ``x5c`` certificates), our chain validation alone
  (``ChainValidator.validate``), and the cached CRL check alone.

The ratio printed is login / bare bound (per-second rates, medians over the rounds).

Run by hand from the repository root (about 30 s with the defaults)::

    .venv/bin/python bench/certificate_login.py
    .venv/bin/python bench/certificate_login.py --rounds 5 --seconds 3
    .venv/bin/python bench/certificate_login.py --revoked 100000   # a larger CRL

Progress goes to stderr; the Markdown table and notes go to stdout. The process pins itself to
one CPU (``--cpu``, default the last one) when the platform allows it. The certificates come
from the test JPKI (tests/support/jpki.py, pyca's builders).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

import cryptography  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store  # noqa: E402
from support.credentials import InMemoryFetcher  # noqa: E402
from support.jpki import TestPKI, b64url, challenge_jws  # noqa: E402

from trustanchor.anchors.revocation import build_checker, parse_revocation_settings  # noqa: E402
from trustanchor.anchors.x509_chain import ChainValidator  # noqa: E402
from trustanchor.anchors.x509_challenge import parse_challenge  # noqa: E402
from trustanchor.anchors.x509_verifier import (  # noqa: E402
    CertificateAnswer,
    ChallengeExpectation,
    X509Verifier,
)
from trustanchor.config.settings import LimitSettings  # noqa: E402
from trustanchor.domain.anchors import Anchor  # noqa: E402

AT = 1_800_000_000
AUD = "https://trustanchor.example"
NONCE = b64url(os.urandom(32))
TXN = "bench-txn-1"
CRLS = ("https://crl.jpki.example/auth.crl", "https://crl.jpki.example/sign.crl")
LIMITS = LimitSettings(
    max_body_bytes=1 << 20,
    max_jws_bytes=16384,
    max_json_depth=16,
    max_authorization_details=16,
    max_disclosures=128,
)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build(revoked_count: int) -> dict[str, Callable[[], object]]:
    pki = TestPKI.generate(now=AT, label="bench")
    card = pki.person(label="bench-person")
    fetcher = InMemoryFetcher()
    # Revoked serials (other cards'): a CRL of realistic shape rather than an empty one.
    revoked = [10**15 + 7 * n for n in range(revoked_count)]
    fetcher.serve(CRLS[0], pki.crl(pki.authentication_ca, revoked=revoked))
    fetcher.serve(CRLS[1], pki.crl(pki.signature_ca, revoked=revoked))
    revocation = {"source": "crl", "crl_urls": list(CRLS)}
    settings = pki.anchor_settings(revocation=revocation)
    anchor = Anchor("jpki", "x509", {"en": "JPKI"}, "high", "active", settings)
    checker = build_checker(parse_revocation_settings(revocation), fetcher=fetcher, randomness=None)
    verifier = X509Verifier(anchor, revocation=checker, limits=LIMITS, clock_skew=60)
    expected = ChallengeExpectation(audience=AUD, nonce=NONCE, txn=TXN, not_after=AT + 600)
    claims = {"aud": AUD, "nonce": NONCE, "txn": TXN, "iat": AT, "exp": AT + 120}
    auth_jws = challenge_jws(card.authentication, cert="authentication", **claims)
    sign_jws = challenge_jws(card.signature, cert="signature", **claims)
    login_answer = CertificateAnswer(authentication=auth_jws)
    enrol_answer = CertificateAnswer(authentication=auth_jws, signature=sign_jws)

    def login() -> object:
        return verifier.verify(login_answer, expected=expected, at=AT, require_signature=False)

    def enrolment() -> object:
        return verifier.verify(enrol_answer, expected=expected, at=AT, require_signature=True)

    # The bare bound, on the same chain and JWS.
    leaf, ca = card.authentication.cert, pki.authentication_ca.cert
    store = Store([pki.root.cert])
    instant = datetime.fromtimestamp(AT, tz=UTC)
    head, body, _ = auth_jws.split(".")
    signing_input = f"{head}.{body}".encode("ascii")
    parsed = parse_challenge(
        auth_jws, algs=("RS256",), max_bytes=16384, max_chain_length=4, max_x5c_bytes=16384
    )
    signature = parsed.signature
    public = leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    ca_policy, ee_policy = ExtensionPolicy.webpki_defaults_ca(), ExtensionPolicy.permit_all()

    def bare() -> object:
        chain = (
            PolicyBuilder()
            .store(store)
            .time(instant)
            .max_chain_depth(3)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
            .verify(leaf, [ca])
        )
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        return chain

    def parse_only() -> object:
        return parse_challenge(
            auth_jws, algs=("RS256",), max_bytes=16384, max_chain_length=4, max_x5c_bytes=16384
        )

    chains = ChainValidator(verifier.settings)

    def chain_only() -> object:
        return chains.validate([leaf, ca], profile="authentication", at=AT)

    def crl_only() -> object:
        checker.check(leaf, ca, at=AT)
        return None

    calls: dict[str, Callable[[], object]] = {
        "login (authentication certificate)": login,
        "enrolment (both certificates)": enrolment,
        "bare pyca bound (client verifier + 1 RSA verify)": bare,
        "part: parse_challenge": parse_only,
        "part: ChainValidator.validate": chain_only,
        "part: cached CRL check": crl_only,
    }
    for call in calls.values():  # each succeeds (and the CRLs are fetched and cached) first
        call()
    asked = len(fetcher.requests)
    login()
    assert len(fetcher.requests) == asked, "the CRL must come from the cache while timing"
    return calls


def rate(call: Callable[[], object], seconds: float) -> float:
    clock = time.perf_counter
    count, start = 0, clock()
    deadline = start + seconds
    while True:
        for _ in range(20):
            call()
        count += 20
        now = clock()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5, help="per series and round")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--revoked", type=int, default=1000, help="serials on each CRL")
    args = parser.parse_args()
    pinned = pin_cpu(args.cpu)
    progress("building the test JPKI, the verifier and the cached CRLs")
    calls = build(args.revoked)
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        rate(call, 0.3)
    for round_ in range(args.rounds):
        progress(f"round {round_ + 1}/{args.rounds}")
        for name, call in calls.items():
            rates[name].append(rate(call, args.seconds))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    bound = medians["bare pyca bound (client verifier + 1 RSA verify)"]
    print("| series | per second (median) | µs per call | vs bare bound | runs |")
    print("|---|---:|---:|---:|---|")
    for name, median in medians.items():
        runs = ", ".join(f"{value:,.0f}" for value in rates[name])
        print(f"| {name} | {median:,.0f} | {1e6 / median:,.1f} | {median / bound:.2f} | {runs} |")
    login = medians["login (authentication certificate)"]
    print()
    print(f"Ratio login / bare pyca bound: **{login / bound:.2f}**.")
    print()
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{cpu_model()}, {pinned}; {args.rounds} rounds × {args.seconds} s per series, "
        f"interleaved; {args.revoked} serials on each CRL; {git_state()}."
    )


if __name__ == "__main__":
    main()
