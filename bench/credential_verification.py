"""SD-JWT VC credential verifications per second (anchors/sd_jwt_vc.py), next to the bare
cryptographic bound for the same signatures and hashes, measured in the same run.

What is timed, in interleaved rounds on one pinned CPU (the garbage collector stays on):

* **verify, status off**: ``SdJwtVcVerifier.verify`` of one presentation as a wallet sends it
  (issued and presented by the independent sd-jwt package of tests/support/credentials.py:
  ES256 issuer JWT with ``kid``, 7 Disclosures of which one nested, decoys, an ES256 Key
  Binding JWT), with ``status_check = "off"``;
* **verify, status required**: the same with the Token Status List checked through an
  in-memory fetcher (the fetched token verified each time: a third ES256 signature);
* **verify, status required, cached list** (trees with ``status_list.StatusListCache``): the
  same with a cache injected into the verifier, so the verified list is read again (the token
  says nothing of ``ttl``/``exp``; the cache's ``max_age`` outlasts the run since ``at`` is
  fixed): what a status-required login costs when the cache is wired in;
* **verify, status off, key cache emptied** (trees with ``jwk.clear_key_cache``): verify with
  the EC key import cache emptied before each call, so the holder key is imported as on a
  wallet's first login (the plain series present one credential again and again: a hit);
* **bare bound**: what no verifier of this presentation can do without, with pyca directly:
  the issuer's ES256 signature (the issuer key object built beforehand, the raw ``r || s``
  turned into DER), the holder key built from the point in ``cnf.jwk`` (x and y bytes decoded
  beforehand), the Key Binding JWT's ES256 signature, SHA-256 of every Disclosure and of the
  SD-JWT for ``sd_hash``. With status required, plus the status list token's signature and
  the ZLIB inflation of its list. Nothing is parsed: the signing inputs and signatures are
  sliced and decoded beforehand;
* parts, each alone on inputs prepared beforehand, to show where the difference goes
  (``--parts``): split, the issuer JWT's parse (base64url + strict JSON of the header), its
  signature check, its payload JSON, the holder key import, the KB-JWT parse, its signature,
  its claims, the Disclosures' decoding and hashing, the reconstruction, the status check, and
  the identity built from the result.

The ratio printed is verify / bare bound (per-second rates, medians over the rounds).

Run by hand from the repository root (about 40 s with the defaults)::

    .venv/bin/python bench/credential_verification.py
    .venv/bin/python bench/credential_verification.py --rounds 5 --seconds 2 --no-parts

Progress goes to stderr; the Markdown table and notes go to stdout. The process pins itself to
one CPU (``--cpu``, default the last one) when the platform allows it.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
# --tree DIR (the workers of --compare): import trustanchor from another source tree.
_TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv else str(REPO_ROOT)
sys.path.insert(0, str(REPO_ROOT / "tests"))
sys.path.insert(0, _TREE)

import cryptography  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from support.credentials import InMemoryFetcher, Issuer, Wallet  # noqa: E402

from trustanchor import digests  # noqa: E402
from trustanchor.anchors import sd_jwt, status_list  # noqa: E402
from trustanchor.anchors.base import Expectation  # noqa: E402
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier  # noqa: E402
from trustanchor.config.settings import LimitSettings  # noqa: E402
from trustanchor.domain.anchors import Anchor  # noqa: E402
from trustanchor.jose import jwk, jws  # noqa: E402
from trustanchor.jose.jwk import public_key_from_jwk  # noqa: E402

AT = 1_760_000_000
NONCE = "wallet-nonce-8f3b2c5d9e0a"
AUD = "x509_san_dns:trustanchor.example"
STATUS_URI = "https://pid-issuer.example/status/1"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)
PERSON = {
    "sub": "jp-person-0001",
    "given_name": "Taro",
    "family_name": "Yamada",
    "birthdate": "1990-04-01",
    "address": {"street_address": "1-1 Chiyoda", "locality": "Tokyo", "country": "JP"},
}
CLAIM_MAP = {k: k for k in ("given_name", "family_name", "birthdate", "address")}
EXPECTED = Expectation(nonce=NONCE, audience=AUD, required_claims=("given_name", "family_name"))
VERIFY_OFF = "verify, status off"
VERIFY_REQUIRED = "verify, status required"
VERIFY_CACHED = "verify, status required, cached list"
VERIFY_COLD_KEY = "verify, status off, key cache emptied"
BOUND_OFF = "bare bound, status off"
BOUND_REQUIRED = "bare bound, status required"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _b64(segment: str) -> bytes:
    return digests.b64url_decode(segment)


def _es256_input(token: str) -> tuple[bytes, bytes]:
    """(signing input, DER signature) of a compact ES256 JWS, sliced beforehand."""
    head, body, signature = token.split(".")
    raw = _b64(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    return f"{head}.{body}".encode("ascii"), der


def build(with_parts: bool) -> dict[str, Callable[[], object]]:
    issuer, wallet = Issuer.generate(), Wallet.generate()
    fetcher = InMemoryFetcher()
    status_token = issuer.status_list_token(STATUS_URI, [0] * 1024, iat=AT - 60)
    fetcher.serve(STATUS_URI, status_token)
    issuance = issuer.issue(
        wallet,
        claims=PERSON,
        disclosable=set(PERSON),
        nested={"address": {"street_address", "locality"}},
        iat=AT - 3600,
        exp=AT + 365 * 86400,
        status=(STATUS_URI, 5),
        decoys=True,
    )
    presentation = wallet.bind(issuance, nonce=NONCE, aud=AUD, iat=AT - 5)

    def verifier(status_check: str, **options: Any) -> SdJwtVcVerifier:
        settings = {
            "issuer": issuer.issuer,
            "jwks": issuer.jwks(),
            "vct": [issuer.vct],
            "subject_claim": "sub",
            "claims": CLAIM_MAP,
            "trust_framework": "jp_my_number_card",
            "status_check": status_check,
        }
        anchor = Anchor("jp-pid", "sd_jwt_vc", {"en": "PID"}, "high", "active", settings)
        return SdJwtVcVerifier(anchor, fetcher=fetcher, limits=LIMITS, kb_max_age=300, **options)

    off, required = verifier("off"), verifier("required")
    _CONTEXT.update(off=off, required=required, presentation=presentation)
    status_cache = getattr(status_list, "StatusListCache", None)
    cached = None
    if status_cache is not None:  # trees with the cache (opt-in: injected)
        cached = verifier("required", status_lists=status_cache(max_age=10**9))
        _CONTEXT.update(cached=cached)
    clear_key_cache = getattr(jwk, "clear_key_cache", None)

    def verify_off() -> object:
        return off.verify(presentation, expected=EXPECTED, at=AT)

    def verify_required() -> object:
        return required.verify(presentation, expected=EXPECTED, at=AT)

    # The bare bound: the same signatures and hashes, straight to pyca.
    parts = sd_jwt.split(presentation, max_bytes=65536, max_disclosures=128)
    assert parts.kb_jwt is not None
    issuer_key = issuer.private_key.public_key()
    issuer_input, issuer_sig = _es256_input(parts.issuer_jwt)
    kb_input, kb_sig = _es256_input(parts.kb_jwt)
    holder_jwk = wallet.public_jwk
    point = b"\x04" + _b64(holder_jwk["x"]) + _b64(holder_jwk["y"])
    disclosure_bytes = [d.encode("ascii") for d in parts.disclosures]
    sd_bytes = parts.sd_jwt.encode("ascii")
    status_input, status_sig = _es256_input(status_token)
    status_lst = _b64(jws.parse(status_token, max_bytes=1 << 20, allowed_algs=("ES256",))
                      .claims()["status_list"]["lst"])  # fmt: skip
    sha256, ecdsa = hashlib.sha256, ec.ECDSA(hashes.SHA256())
    curve = ec.SECP256R1()

    def bound_off() -> object:
        issuer_key.verify(issuer_sig, issuer_input, ecdsa)
        holder = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        holder.verify(kb_sig, kb_input, ecdsa)
        for item in disclosure_bytes:
            sha256(item).digest()
        return sha256(sd_bytes).digest()

    def bound_required() -> object:
        bound_off()
        issuer_key.verify(status_sig, status_input, ecdsa)
        return zlib.decompress(status_lst)

    calls: dict[str, Callable[[], object]] = {
        VERIFY_OFF: verify_off,
        VERIFY_REQUIRED: verify_required,
        BOUND_OFF: bound_off,
        BOUND_REQUIRED: bound_required,
    }
    if cached is not None:
        verifier_cached = cached

        def verify_cached() -> object:
            return verifier_cached.verify(presentation, expected=EXPECTED, at=AT)

        calls[VERIFY_CACHED] = verify_cached
    if clear_key_cache is not None:
        empty = clear_key_cache

        def verify_cold_key() -> object:
            empty()
            return off.verify(presentation, expected=EXPECTED, at=AT)

        calls[VERIFY_COLD_KEY] = verify_cold_key
    if with_parts:
        calls.update(_parts(off, required, presentation, parts))
    for call in calls.values():  # each succeeds first
        call()
    return calls


def _parts(
    off: SdJwtVcVerifier, required: SdJwtVcVerifier, presentation: str, parts: sd_jwt.SdJwtParts
) -> dict[str, Callable[[], object]]:
    """Each layer of ``verify`` alone, on inputs prepared beforehand (private methods on
    purpose: this is a profile of the verifier, not a use of it)."""
    algs, max_bytes, depth = off.settings.algs, LIMITS.max_jws_bytes, LIMITS.max_json_depth
    assert parts.kb_jwt is not None
    kb_jwt = parts.kb_jwt
    parsed = jws.parse(parts.issuer_jwt, max_bytes=max_bytes, allowed_algs=algs)
    (issuer_key,) = off.settings.candidate_keys(parsed.header)
    payload = off._issuer_payload(parts.issuer_jwt, AT)
    holder_key = off._holder_key(payload)
    kb_parsed = jws.parse(kb_jwt, max_bytes=max_bytes, allowed_algs=off.settings.holder_algs)
    disclosures = sd_jwt.decode_disclosures(parts.disclosures, max_depth=depth)
    processed = sd_jwt.reconstruct(payload, disclosures)
    reference = required._check_status(processed, AT)

    def split() -> object:
        return sd_jwt.split(presentation, max_bytes=65536, max_disclosures=128)

    def issuer_parse() -> object:
        jws.unverified_header(parts.issuer_jwt, max_bytes=max_bytes)
        return jws.parse(parts.issuer_jwt, max_bytes=max_bytes, allowed_algs=algs)

    def issuer_signature() -> object:
        jws.verify_signature(parsed, issuer_key)
        return None

    def issuer_claims() -> object:
        return parsed.claims(max_depth=depth)

    def holder() -> object:
        return public_key_from_jwk(payload["cnf"]["jwk"])

    def kb_parse() -> object:
        return jws.parse(kb_jwt, max_bytes=max_bytes, allowed_algs=off.settings.holder_algs)

    def kb_signature() -> object:
        jws.verify_signature(kb_parsed, holder_key)
        return None

    def kb_whole() -> object:
        return off._check_key_binding(parts, holder_key, EXPECTED, AT)

    def decode() -> object:
        return sd_jwt.decode_disclosures(parts.disclosures, max_depth=depth)

    def rebuild() -> object:
        return sd_jwt.reconstruct(payload, disclosures)

    def status() -> object:
        return required._check_status(processed, AT)

    def identity() -> object:
        return off._identity(presentation, payload, processed, reference, EXPECTED, AT)

    return {
        "part: split": split,
        "part: issuer JWT parse (header twice, base64, JSON header)": issuer_parse,
        "part: issuer signature (jws.verify_signature)": issuer_signature,
        "part: issuer payload JSON": issuer_claims,
        "part: holder key from cnf.jwk": holder,
        "part: KB-JWT parse": kb_parse,
        "part: KB-JWT signature (jws.verify_signature)": kb_signature,
        "part: KB-JWT all checks (parse, signature, claims, sd_hash)": kb_whole,
        "part: Disclosures decode + hash": decode,
        "part: reconstruct": rebuild,
        "part: status check (in-memory fetch, verify, inflate)": status,
        "part: identity": identity,
    }


_CONTEXT: dict[str, Any] = {}


def layers(status_check: str, iterations: int) -> dict[str, float]:
    """The steps of ``SdJwtVcVerifier.verify``, in its order and with its functions, each
    timed inside one pass (so every layer of a pass sees the same machine); µs per pass."""
    verifier: SdJwtVcVerifier = _CONTEXT[status_check]
    presentation: str = _CONTEXT["presentation"]
    settings, limits = verifier.settings, LIMITS
    takes_header = "header" in inspect.signature(jws.parse).parameters
    one_hash = "evidence_digest" in inspect.signature(verifier._identity).parameters
    totals: dict[str, int] = {}
    clock = time.thread_time_ns if _CLOCK[0] == "cpu" else time.perf_counter_ns

    def lap(name: str, started: int) -> int:
        now = clock()
        totals[name] = totals.get(name, 0) + now - started
        return now

    for _ in range(iterations):
        t = clock()
        parts = sd_jwt.split(
            presentation, max_bytes=limits.max_body_bytes, max_disclosures=limits.max_disclosures
        )
        assert not any(len(d) > limits.max_jws_bytes for d in parts.disclosures)
        t = lap("split, sizes", t)
        header = jws.unverified_header(parts.issuer_jwt, max_bytes=limits.max_jws_bytes)
        assert header.get("alg") in settings.algs and header.get("typ") == "dc+sd-jwt"
        t = lap("issuer JWT: header (base64url, strict JSON), alg, typ", t)
        extra = {"header": header} if takes_header else {}
        parsed = jws.parse(
            parts.issuer_jwt, max_bytes=limits.max_jws_bytes, allowed_algs=settings.algs, **extra
        )
        t = lap("issuer JWT: parse (payload and signature base64url, header checks)", t)
        (key,) = settings.candidate_keys(parsed.header)
        t = lap("issuer key lookup (kid)", t)
        jws.verify_signature(parsed, key)
        t = lap("issuer JWT: ES256 signature (jws.verify_signature)", t)
        payload = parsed.claims(max_depth=limits.max_json_depth)
        t = lap("issuer JWT: payload strict JSON", t)
        verifier._check_issuer_claims(payload, AT)
        t = lap("issuer claims (iss, vct, _sd_alg, times are integers)", t)
        holder_key = verifier._holder_key(payload)
        t = lap("holder key from cnf.jwk (import, point on curve)", t)
        kb = parts.kb_jwt
        assert kb is not None
        kb_parsed = jws.parse(kb, max_bytes=limits.max_jws_bytes, allowed_algs=settings.holder_algs)
        jws.check_typ(kb_parsed.header, "kb+jwt")
        t = lap("KB-JWT: parse, typ", t)
        jws.verify_signature(kb_parsed, holder_key)
        t = lap("KB-JWT: ES256 signature (jws.verify_signature)", t)
        kb_claims = kb_parsed.claims(max_depth=limits.max_json_depth)
        t = lap("KB-JWT: claims strict JSON", t)
        assert digests.equal(kb_claims["nonce"], NONCE) and kb_claims["aud"] == AUD
        if one_hash:  # one SHA-256 pass for sd_hash and the evidence digest
            hasher = hashlib.sha256(parts.sd_jwt.encode("ascii"))
            sd_hash = digests.b64url_encode(hasher.digest())
            hasher.update(kb.encode("ascii"))
        else:
            sd_hash = digests.sha256_b64url(parts.sd_jwt)
        assert digests.equal(kb_claims["sd_hash"], sd_hash)
        t = lap("KB-JWT: nonce, aud, iat, sd_hash (SHA-256 of the SD-JWT)", t)
        verifier._check_validity(payload, AT)
        t = lap("validity in time", t)
        disclosures = sd_jwt.decode_disclosures(parts.disclosures, max_depth=limits.max_json_depth)
        t = lap("Disclosures: base64url, strict JSON, SHA-256 each", t)
        processed = sd_jwt.reconstruct(payload, disclosures)
        assert not sd_jwt.top_level_disclosed_names(payload, disclosures) & {"iss", "cnf"}
        t = lap("reconstruct, forbidden disclosures", t)
        reference = verifier._check_status(processed, AT)
        t = lap("status (off: reference read; required: fetch, verify, inflate)", t)
        if one_hash:
            verifier._identity(
                presentation,
                payload,
                processed,
                reference,
                EXPECTED,
                AT,
                evidence_digest=hasher.hexdigest(),
            )
        else:
            verifier._identity(presentation, payload, processed, reference, EXPECTED, AT)
        lap("identity (claims, evidence, digest of the presentation)", t)
    return {name: total / iterations / 1000 for name, total in totals.items()}


def print_layers(iterations: int, rounds: int) -> None:
    """Median over rounds of each layer's µs per pass, for both status modes."""
    for status_check in ("off", "required", "cached"):
        if status_check not in _CONTEXT:
            continue
        samples: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, value in layers(status_check, iterations).items():
                samples.setdefault(name, []).append(value)
        medians = {name: statistics.median(values) for name, values in samples.items()}
        total = sum(medians.values())
        crypto = sum(v for name, v in medians.items() if "signature" in name)
        mode = "required, cached list" if status_check == "cached" else status_check
        print(f"\n| layer (status {mode}) | µs per verification | share |")
        print("|---|---:|---:|")
        for name, value in medians.items():
            print(f"| {name} | {value:,.1f} | {value / total:.0%} |")
        print(f"| **sum** | **{total:,.1f}** | 100% |")
        print(
            f"\nThe two signatures: {crypto:,.1f} µs ({crypto / total:.0%}); "
            f"everything else: {total - crypto:,.1f} µs."
        )


# --clock cpu: time the calls with this thread's CPU time (CLOCK_THREAD_CPUTIME_ID) instead
# of the wall clock, so that the time the process spends descheduled on a loaded machine is not
# counted (its caches are still disturbed by whatever ran meanwhile).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
_CLOCK = ["wall"]


def rate(call: Callable[[], object], seconds: float) -> float:
    clock = CLOCKS[_CLOCK[0]]
    count, start = 0, clock()
    deadline = start + seconds
    while True:
        for _ in range(20):
            call()
        count += 20
        now = clock()
        if now >= deadline:
            return count / (now - start)


def worker(with_parts: bool) -> None:
    """--worker: build the series, then answer "<series>\t<seconds>" lines with a rate."""
    calls = build(with_parts)
    for call in calls.values():  # warm-up
        rate(call, 0.2)
    print("\t".join(calls), flush=True)
    for line in sys.stdin:
        name, seconds = line.rstrip("\n").split("\t")
        print(f"{rate(calls[name], float(seconds))!r}", flush=True)


def compare(args: argparse.Namespace, pinned: str) -> None:
    """--compare REF: the tree at REF (git archive) and the working tree, each in a worker
    process on the same CPU, their series interleaved round by round."""
    with tempfile.TemporaryDirectory(prefix="credential-bench-") as tmp:
        archive = subprocess.run(
            ["git", "archive", args.compare, "trustanchor"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True, timeout=60)
        trees = {f"before ({args.compare})": tmp, "after (working tree)": str(REPO_ROOT)}
        command = [sys.executable, __file__, "--worker", "--cpu", str(args.cpu)]
        command += ["--clock", args.clock]
        if args.no_parts:
            command.append("--no-parts")
        workers: dict[str, subprocess.Popen[str]] = {
            label: subprocess.Popen(
                [*command, "--tree", tree], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for label, tree in trees.items()
        }
        pipes = {label: (w.stdin, w.stdout) for label, w in workers.items()}
        try:
            names: dict[str, list[str]] = {}
            for label, (_, out) in pipes.items():
                assert out is not None
                names[label] = out.readline().rstrip("\n").split("\t")
            labels = list(workers)
            # Every series either tree has (a newer tree may time more); "—" where absent.
            series = list(dict.fromkeys(n for label in labels for n in names[label]))
            rates: dict[tuple[str, str], list[float]] = {
                (label, n): [] for label in labels for n in series
            }
            for round_ in range(args.rounds):
                progress(f"round {round_ + 1}/{args.rounds}")
                shift = round_ % len(series)
                for name in series[shift:] + series[:shift]:
                    for label in labels if round_ % 2 == 0 else labels[::-1]:
                        if name not in names[label]:
                            continue
                        into, out = pipes[label]
                        assert into is not None and out is not None
                        into.write(f"{name}\t{args.seconds}\n")
                        into.flush()
                        rates[(label, name)].append(float(out.readline()))
        finally:
            for w in workers.values():
                if w.stdin is not None:
                    w.stdin.close()
                w.wait(timeout=30)
    medians = {key: statistics.median(values) for key, values in rates.items() if values}
    before, after = labels
    print(
        f"| series | {before} µs | {after} µs | time after / before "
        f"| {before} per s | {after} per s |"
    )
    print("|---|---:|---:|---:|---|---|")
    for name in series:
        b, a = medians.get((before, name)), medians.get((after, name))
        runs_b = ", ".join(f"{v:,.0f}" for v in rates[(before, name)]) or "—"
        runs_a = ", ".join(f"{v:,.0f}" for v in rates[(after, name)]) or "—"
        us_b = f"{1e6 / b:,.1f}" if b else "—"
        us_a = f"{1e6 / a:,.1f}" if a else "—"
        change = f"{b / a:.2f}" if a and b else "—"
        print(f"| {name} | {us_b} | {us_a} | {change} | {runs_b} | {runs_a} |")
    print()
    for label in labels:
        off = medians[(label, VERIFY_OFF)] / medians[(label, BOUND_OFF)]
        req = medians[(label, VERIFY_REQUIRED)] / medians[(label, BOUND_REQUIRED)]
        print(
            f"Ratio verify / bare bound, {label}: status off **{off:.2f}**, "
            f"status required **{req:.2f}**."
        )
        pairs = [
            (VERIFY_OFF, BOUND_OFF),
            (VERIFY_REQUIRED, BOUND_REQUIRED),
            (VERIFY_COLD_KEY, BOUND_OFF),
            (VERIFY_CACHED, BOUND_REQUIRED),
            (VERIFY_CACHED, BOUND_OFF),
        ]
        for verify_name, bound_name in pairs:
            if not rates[(label, verify_name)]:
                continue
            # Within one round both series ran close together: less exposed to a slow spell.
            per_round = [
                v / b
                for v, b in zip(
                    rates[(label, verify_name)], rates[(label, bound_name)], strict=True
                )
            ]
            print(
                f"  {verify_name} / {bound_name}, round by round: "
                + ", ".join(f"{r:.2f}" for r in per_round)
                + f" (median {statistics.median(per_round):.2f})"
            )
    print()
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{cpu_model()}, {pinned}; {args.rounds} rounds × {args.seconds} s per series and tree, "
        f"interleaved; {git_state()}; {args.clock} clock; "
        f"load average {os.getloadavg()[0]:.1f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0, help="per series and round")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--no-parts", action="store_true", help="only verify and the bounds")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="time with the wall clock or with the thread's CPU time (loaded machines)",
    )
    parser.add_argument("--compare", metavar="REF", help="also measure the tree at this commit")
    parser.add_argument(
        "--layers", type=int, metavar="N", help="only the split by layer, N passes per round"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _CLOCK[0] = args.clock
    pinned = pin_cpu(args.cpu)
    if args.worker:
        worker(not args.no_parts)
        return
    if args.compare:
        compare(args, pinned)
        return
    if args.layers:
        build(False)
        progress("timing the layers of one verification, pass by pass")
        layers("off", 300)  # warm-up
        print_layers(args.layers, args.rounds)
        print(
            f"\n{_TREE}: {git_state()}; {pinned}; {args.clock} clock; "
            f"load average {os.getloadavg()[0]:.1f}."
        )
        return
    progress("issuing a credential and building the verifiers")
    calls = build(not args.no_parts)
    rates: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        rate(call, 0.2)
    for round_ in range(args.rounds):
        progress(f"round {round_ + 1}/{args.rounds}")
        names = list(calls)
        shift = round_ % len(names)  # rotate who goes first
        for name in names[shift:] + names[:shift]:
            rates[name].append(rate(calls[name], args.seconds))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print("| series | per second (median) | µs per call | vs bound (status off) | runs |")
    print("|---|---:|---:|---:|---|")
    bound_off = medians[BOUND_OFF]
    for name, median in medians.items():
        runs = ", ".join(f"{value:,.0f}" for value in rates[name])
        print(
            f"| {name} | {median:,.0f} | {1e6 / median:,.1f} | {median / bound_off:.2f} | {runs} |"
        )
    print()
    print(
        f"Ratio verify / bare bound: status off **{medians[VERIFY_OFF] / bound_off:.2f}**, "
        f"status required **{medians[VERIFY_REQUIRED] / medians[BOUND_REQUIRED]:.2f}**."
    )
    if VERIFY_COLD_KEY in medians:
        print(f"Status off, key cache emptied: **{medians[VERIFY_COLD_KEY] / bound_off:.2f}**.")
    if VERIFY_CACHED in medians:
        print(
            "Status required, cached list: "
            f"**{medians[VERIFY_CACHED] / medians[BOUND_REQUIRED]:.2f}** of the status-required "
            f"bound, {medians[VERIFY_CACHED] / bound_off:.2f} of the status-off bound."
        )
    print()
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{cpu_model()}, {pinned}; {args.rounds} rounds × {args.seconds} s per series, "
        f"interleaved; {git_state()}; {args.clock} clock; "
        f"load average {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
