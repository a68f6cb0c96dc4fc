"""Signing one access token: PyJWT against the direct encoder against the bare pyca signature.

Issue 13 asks for a direct JWS encoder where the library adds measured overhead. For each
algorithm the signing keystore issues keys for (``ES256`` on P-256 and ``EdDSA`` on Ed25519:
``trustanchor.keystore.signing_keys.new_private_key``), one run measures, on one pinned CPU, in
interleaved rounds:

* **bare pyca signature**: ``key.sign`` over a prepared signing input (the JWS header and
  payload already encoded), nothing else: the bound;
* **bare pyca signature + JWS encoding**: the same, plus for ES256 the DER to ``r || s``
  conversion, the payload's ``json.dumps`` and the base64url encodings: the least a signer can do;
* **PyJWT jwt.encode**: ``jwt.encode(claims, key, algorithm=alg, headers={"typ", "kid"})``, what
  ``trustanchor.jose.jws.sign`` calls (``TokenSigner`` called it for every token until issue 13);
* **direct encoder**: ``trustanchor.jose.jws_encoder.CompactSigner.sign`` (header cached);
* **TokenSigner.access_token**: the service's call (current key from the keystore, ``iss``
  added, the direct encoder).

The claims are those the token endpoint puts in a client-credentials access token with a DPoP
binding (``sub``, ``client_id``, ``aud``, ``iat``, ``exp``, ``jti``, ``scope``, ``cnf.jkt``,
``iss``). Each series: calls per second in an untimed loop for ``--seconds``, median over
``--rounds``; printed as µs per token, with the ratio to the bare signature.

Run by hand from the repository root (about 25 s with the defaults)::

    .venv/bin/python bench/jws_signing.py
    .venv/bin/python bench/jws_signing.py --rounds 7 --seconds 1

Progress goes to stderr; the Markdown table and notes go to stdout. The process pins itself to
one CPU (``--cpu``, default the last one) when the platform allows it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import cryptography  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from trustanchor.jose.jws_encoder import CompactSigner  # noqa: E402
from trustanchor.keystore.signing_keys import SigningKeyStore, generate_key  # noqa: E402
from trustanchor.oauth.jwt_tokens import TokenSigner  # noqa: E402

ISSUER = "https://as.example.com"
ALGS = ("ES256", "EdDSA")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def claims(now: int) -> dict[str, Any]:
    return {
        "sub": "bench-client-7f3a",
        "client_id": "bench-client-7f3a",
        "aud": "https://ledger.example.com",
        "iat": now,
        "exp": now + 300,
        "jti": "c2K9xQv3L0m8TfZ1aB7eRw",
        "scope": "payments:read payments:write",
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
    }


def series(alg: str, keys_dir: Path) -> dict[str, Callable[[], object]]:
    now = int(time.time())
    generate_key(keys_dir, alg=alg, now=now, demo=True)
    store = SigningKeyStore.open(keys_dir, retention=3600)
    key = store.current()
    private = key.private_key
    body = {**claims(now), "iss": ISSUER}
    headers = {"typ": "at+jwt", "kid": key.kid}
    direct = CompactSigner(private, alg=alg, kid=key.kid)
    signer = TokenSigner(store, issuer=ISSUER)
    token = direct.sign(body, typ="at+jwt")
    signing_input = token.rsplit(".", 1)[0].encode("ascii")
    header_segment = direct.header_segment("at+jwt")

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    if alg == "ES256":
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        ecdsa = ec.ECDSA(hashes.SHA256())

        def bare() -> object:
            return private.sign(signing_input, ecdsa)

        def bare_encoded() -> object:
            data = header_segment + b64(json.dumps(body, separators=(",", ":")).encode())
            r, s = decode_dss_signature(private.sign(data, ecdsa))
            return data + b"." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    else:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        sign = private.sign

        def bare() -> object:
            return sign(signing_input)

        def bare_encoded() -> object:
            data = header_segment + b64(json.dumps(body, separators=(",", ":")).encode())
            return data + b"." + b64(sign(data))

    base = claims(now)
    return {
        "bare pyca signature": bare,
        "bare pyca signature + JWS encoding": bare_encoded,
        "PyJWT jwt.encode": lambda: jwt.encode(body, private, algorithm=alg, headers=headers),
        "direct encoder (CompactSigner.sign)": lambda: direct.sign(body, typ="at+jwt"),
        "TokenSigner.access_token": lambda: signer.access_token(base),
    }


def rate(call: Callable[[], object], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            call()
        count += 200
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per series and round")
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    args = parser.parse_args()
    pinned = pin_cpu(args.cpu)
    with tempfile.TemporaryDirectory() as tmp:
        calls = {
            (alg, name): call for alg in ALGS for name, call in series(alg, Path(tmp) / alg).items()
        }
        rates: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        for call in calls.values():  # warm-up
            rate(call, 0.1)
        for round_ in range(args.rounds):
            progress(f"round {round_ + 1}/{args.rounds}")
            order = list(calls.items())
            shift = round_ % len(order)
            for key, call in order[shift:] + order[:shift]:
                rates[key].append(rate(call, args.seconds))
    print("| alg | series | µs per token (median) | vs bare signature | tokens/s per round |")
    print("|---|---|---:|---:|---|")
    for alg in ALGS:
        bare = statistics.median(rates[(alg, "bare pyca signature")])
        for (key_alg, name), values in rates.items():
            if key_alg != alg:
                continue
            median = statistics.median(values)
            runs = ", ".join(f"{value:,.0f}" for value in values)
            print(f"| {alg} | {name} | {1e6 / median:,.1f} | {bare / median:.2f} | {runs} |")
    print()
    for alg in ALGS:
        pyjwt = 1e6 / statistics.median(rates[(alg, "PyJWT jwt.encode")])
        direct = 1e6 / statistics.median(rates[(alg, "direct encoder (CompactSigner.sign)")])
        print(
            f"{alg}: PyJWT adds {pyjwt - direct:,.1f} µs per token over the direct encoder "
            f"({pyjwt / direct:.2f}×)."
        )
    print()
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"PyJWT {jwt.__version__}, {cpu_model()}, {pinned}; {args.rounds} rounds × "
        f"{args.seconds} s per series, interleaved; {git_state()}."
    )


if __name__ == "__main__":
    main()
