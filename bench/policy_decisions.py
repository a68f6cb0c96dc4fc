"""Policy decisions in process (trustanchor.policy.engine), next to one ES256 verification.

PERFORMANCE.md's target: a policy decision's p99 below the cost of one ES256 verification, in
process. Both are measured here in the same run, on the same pinned CPU, in interleaved rounds:

* the trust world: 6 anchor sets (policies in the shapes docs/POLICY.md describes: step-up
  thresholds, limits, link-only, transfer-only, fail_open), 14 anchors (one suspended, one
  retired), 4,000 holders (7 in 10 Japanese, 3 in 10 European) with 1 to 3 identities each
  (3 % from the suspended or retired anchor; a few revoked, suspended, unknown or expired),
  built into one ``TrustSnapshot`` up front (the service keeps one and rebuilds it on change;
  its build time is reported separately);
* **link (mixed)** and **transfer (mixed)**: ``decide_link`` / ``decide_transfer`` over 5,000
  pre-built requests each, cycled (random holders, accounts bound through random identities,
  logins through random identities at random ages, amounts log-uniform from 100 to 2,000,000
  JPY); their outcome mix is printed;
* three fixed transfers for the paths that matter most: **allowed** (5,000 JPY, both parties
  with several identities), **step_up_required** (300,000 JPY after a substantial login: the
  slowest path, which also computes the ``StepUp``) and **no_common_anchor_set**;
* the references: one ES256 signature verification with pyca/cryptography (bare ECDSA P-256 /
  SHA-256 over a transfer access token's signing input, DER signature prepared beforehand), that
  whole JWT verified with PyJWT (``jwt.decode``: base64url, JSON, signature; time claims not
  checked, the world's clock being fixed), and the same token through
  ``trustanchor.jose.jws.verify`` (the service's own parse, ``typ`` check and verify).

Latency: each call timed alone with ``perf_counter_ns`` (the timer's own cost, measured and
printed, is included); p50 / p99 over every timed call of all rounds. Throughput: calls per
second in an untimed tight loop, median over the rounds. The garbage collector stays on, as in
the service.

Run by hand from the repository root (about 40 s with the defaults)::

    .venv/bin/python bench/policy_decisions.py
    .venv/bin/python bench/policy_decisions.py --rounds 5 --calls 50000

Progress goes to stderr; the Markdown table and notes go to stdout. The process pins itself to
one CPU (``--cpu``, default the last one) when the platform allows it.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import cryptography  # noqa: E402
import jwt  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from trustanchor.domain.money import Amount, parse_amount  # noqa: E402
from trustanchor.jose import jws  # noqa: E402
from trustanchor.policy.anchor_set_policy import parse_policy  # noqa: E402
from trustanchor.policy.decision import Decision  # noqa: E402
from trustanchor.policy.engine import decide_link, decide_transfer  # noqa: E402
from trustanchor.policy.facts import (  # noqa: E402
    AccountFact,
    AnchorFact,
    AnchorSetFact,
    AuthenticationFact,
    IdentityFact,
    LinkRequest,
    TransferRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot  # noqa: E402

AT = 1_800_000_000
JPY_STEP_UP = [
    {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300},
    {"currency": "JPY", "above": "500000", "assurance": "high", "max_age": 60},
]
POLICIES: dict[str, dict[str, Any]] = {
    "jp-cbdc": {
        "operations": ["account_link", "value_transfer"],
        "min_assurance_link": "substantial",
        "min_assurance_transfer": "substantial",
        "limits": {"JPY": "1000000"},
        "step_up": JPY_STEP_UP,
    },
    "jp-banks": {"operations": ["account_link"]},
    "jp-retail": {
        "operations": ["value_transfer"],
        "min_assurance_transfer": "substantial",
        "revocation_check": "fail_open",
        "limits": {"JPY": "100000"},
    },
    "eu-wallets": {"operations": ["value_transfer"], "limits": {"EUR": "5000.00"}},
    "eu-banks": {
        "operations": ["account_link", "value_transfer"],
        "min_assurance_transfer": "substantial",
        "limits": {"EUR": "15000.00"},
        "step_up": [{"currency": "EUR", "above": "1000.00", "assurance": "high", "max_age": 300}],
    },
    "sandbox": {},
}
# anchor: (status, level of the identities it issues, sets)
ANCHORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "jp-mynumber": ("active", "high", ("jp-cbdc", "jp-banks", "jp-retail")),
    "jp-bank-1": ("active", "substantial", ("jp-cbdc", "jp-banks")),
    "jp-bank-2": ("active", "substantial", ("jp-cbdc", "jp-banks")),
    "jp-bank-3": ("active", "substantial", ("jp-cbdc", "jp-banks")),
    "jp-bank-4": ("active", "substantial", ("jp-banks",)),
    "jp-wallet-ekyc": ("active", "substantial", ("jp-retail", "jp-cbdc")),
    "jp-old-ca": ("suspended", "high", ("jp-cbdc",)),
    "eu-pid-de": ("active", "high", ("eu-wallets", "eu-banks")),
    "eu-pid-fr": ("active", "high", ("eu-wallets", "eu-banks")),
    "eu-pid-it": ("active", "high", ("eu-wallets", "eu-banks")),
    "eu-bank-ekyc": ("active", "substantial", ("eu-banks",)),
    "eu-retired": ("retired", "high", ("eu-wallets",)),
    "test-anchor-1": ("active", "low", ("sandbox",)),
    "test-anchor-2": ("active", "low", ("sandbox",)),
}
JP_ANCHORS = [a for a, (status, _, _) in ANCHORS.items() if a[:3] == "jp-" and status == "active"]
EU_ANCHORS = [a for a, (status, _, _) in ANCHORS.items() if a[:3] == "eu-" and status == "active"]
INACTIVE = {"JPY": "jp-old-ca", "EUR": "eu-retired"}  # 3 % of identities are from these


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ the world


def build_snapshot() -> TrustSnapshot:
    return TrustSnapshot.build(
        [AnchorFact(a, status, frozenset(sets)) for a, (status, _, sets) in ANCHORS.items()],
        [AnchorSetFact(s, parse_policy(p), 1) for s, p in POLICIES.items()],
    )


@dataclass(frozen=True)
class Holder:
    id: str
    identities: list[IdentityFact]
    currency: str


def make_holders(count: int, rng: random.Random) -> list[Holder]:
    holders = []
    for n in range(count):
        holder_id = f"holder-{n}"
        currency = "JPY" if rng.random() < 0.7 else "EUR"
        region = JP_ANCHORS if currency == "JPY" else EU_ANCHORS
        anchors = rng.sample(region, rng.choice([1, 1, 2, 2, 3]))
        identities = []
        for k, anchor in enumerate(anchors):
            if rng.random() < 0.03:
                anchor = INACTIVE[currency]
            status = rng.choices(["valid", "revoked", "suspended", "unknown"], [94, 2, 1, 3])[0]
            expires = rng.choices([AT + 86_400 * 365, None, AT - 3600], [80, 15, 5])[0]
            identities.append(
                IdentityFact(
                    f"{holder_id}-id{k}", holder_id, anchor, ANCHORS[anchor][1], expires, status
                )
            )
        holders.append(Holder(holder_id, identities, currency))
    return holders


def bound(account_id: str, kind: Any, through: IdentityFact) -> AccountFact:
    return AccountFact(account_id, kind, through.holder_id, through.id)


def login_as(through: IdentityFact, age: int) -> AuthenticationFact:
    return AuthenticationFact(
        through.holder_id, through.id, through.anchor_id, through.level, AT - age
    )


def log_uniform_amount(rng: random.Random, currency: str) -> Amount:
    jpy = int(10 ** rng.uniform(2, 6.3))
    if currency == "JPY":
        return Amount("JPY", jpy)
    return Amount("EUR", max(1, int(jpy * 0.625)))  # in cents: about the same value (160 JPY/EUR)


Call = Callable[[], Decision]


def transfer_calls(
    snapshot: TrustSnapshot, holders: list[Holder], count: int, rng: random.Random
) -> list[Call]:
    calls: list[Call] = []
    for _ in range(count):
        debtor = rng.choice(holders)
        same_region = [h for h in rng.sample(holders, 8) if h.currency == debtor.currency]
        creditor = same_region[0] if same_region and rng.random() < 0.9 else rng.choice(holders)
        request = TransferRequest(
            log_uniform_amount(rng, debtor.currency),
            bound(f"acc_{debtor.id}_w", "cbdc_wallet", rng.choice(debtor.identities)),
            bound(f"acc_{creditor.id}_w", "cbdc_wallet", rng.choice(creditor.identities)),
        )
        login = login_as(rng.choice(debtor.identities), rng.randrange(0, 600))
        identities = debtor.identities + creditor.identities
        calls.append(_transfer(snapshot, request, login, identities))
    return calls


def link_calls(
    snapshot: TrustSnapshot, holders: list[Holder], count: int, rng: random.Random
) -> list[Call]:
    calls: list[Call] = []
    for _ in range(count):
        holder = rng.choice(holders)
        request = LinkRequest(
            "link",
            bound(f"acc_{holder.id}_d", "bank_deposit", rng.choice(holder.identities)),
            bound(f"acc_{holder.id}_w", "cbdc_wallet", rng.choice(holder.identities)),
        )
        login = login_as(rng.choice(holder.identities), rng.randrange(0, 600))
        calls.append(_link(snapshot, request, login, holder.identities))
    return calls


def _transfer(
    snapshot: TrustSnapshot,
    request: TransferRequest,
    login: AuthenticationFact,
    identities: list[IdentityFact],
) -> Call:
    return lambda: decide_transfer(snapshot, request, login, identities, at=AT)


def _link(
    snapshot: TrustSnapshot,
    request: LinkRequest,
    login: AuthenticationFact,
    identities: list[IdentityFact],
) -> Call:
    return lambda: decide_link(snapshot, request, login, identities, at=AT)


def fixed_transfers(snapshot: TrustSnapshot) -> dict[str, tuple[Call, str]]:
    """Three transfers with a known outcome, parties with two and three identities."""
    taro = [
        IdentityFact("taro-1", "taro", "jp-mynumber", "high", AT + 10**7, "valid"),
        IdentityFact("taro-2", "taro", "jp-bank-1", "substantial", None, "valid"),
    ]
    hanako = [
        IdentityFact("hanako-1", "hanako", "jp-bank-2", "substantial", None, "valid"),
        IdentityFact("hanako-2", "hanako", "jp-wallet-ekyc", "substantial", None, "unknown"),
        IdentityFact("hanako-3", "hanako", "jp-mynumber", "high", AT + 10**7, "valid"),
    ]
    pierre = [IdentityFact("pierre-1", "pierre", "eu-pid-fr", "high", None, "valid")]
    taro_wallet = bound("acc_taro_w", "cbdc_wallet", taro[0])
    hanako_wallet = bound("acc_hanako_w", "cbdc_wallet", hanako[0])
    pierre_wallet = bound("acc_pierre_w", "cbdc_wallet", pierre[0])
    high, substantial = login_as(taro[0], 30), login_as(taro[1], 30)
    return {
        "transfer allowed (5,000 JPY)": (
            _transfer(
                snapshot,
                TransferRequest(parse_amount("5000", "JPY"), taro_wallet, hanako_wallet),
                high,
                taro + hanako,
            ),
            "allowed",
        ),
        "transfer step_up_required (300,000 JPY)": (
            _transfer(
                snapshot,
                TransferRequest(parse_amount("300000", "JPY"), taro_wallet, hanako_wallet),
                substantial,
                taro + hanako,
            ),
            "step_up_required",
        ),
        "transfer no_common_anchor_set": (
            _transfer(
                snapshot,
                TransferRequest(parse_amount("5000", "JPY"), taro_wallet, pierre_wallet),
                high,
                taro + pierre,
            ),
            "no_common_anchor_set",
        ),
    }


# ------------------------------------------------------------------------------- references


def es256_references() -> dict[str, Callable[[], object]]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    claims = {
        "iss": "https://trustanchor.example",
        "sub": "pairwise-3f0c1b5e9a7d",
        "aud": "https://ledger.example",
        "client_id": "demo-bank",
        "iat": AT,
        "exp": AT + 60,
        "jti": "k3j4h5g6f7d8s9a0",
        "scope": "openid",
        "acr": "urn:trustanchor:acr:high",
        "anchor_set": "jp-cbdc",
        "authorization_details": [
            {
                "type": "value_transfer",
                "instructed_amount": {"currency": "JPY", "amount": "5000"},
                "debtor_account": "acc_AAAAAAAAAAAAAAAAAAAAAA",
                "creditor_account": "acc_BBBBBBBBBBBBBBBBBBBBBB",
            }
        ],
    }
    token = jwt.encode(claims, key, algorithm="ES256", headers={"typ": "at+jwt", "kid": "k1"})
    head, body, _ = token.split(".")
    signing_input = f"{head}.{body}".encode()
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    algorithm = ec.ECDSA(hashes.SHA256())
    options = {"verify_aud": False, "verify_exp": False, "verify_iat": False}

    def bare() -> None:
        public.verify(der, signing_input, algorithm)

    def pyjwt() -> object:
        return jwt.decode(token, public, algorithms=["ES256"], options=options)

    def ours() -> object:
        return jws.verify(token, public, allowed_algs=("ES256",), max_bytes=16384, typ="at+jwt")

    bare(), pyjwt(), ours()  # each verifies: a broken reference must not be timed
    return {
        f"ES256 verify, bare ({len(signing_input)}-byte input)": bare,
        "ES256 JWT access token, PyJWT jwt.decode": pyjwt,
        "ES256 JWT access token, trustanchor jws.verify": ours,
    }


# -------------------------------------------------------------------------------- measuring


@dataclass
class Series:
    name: str
    calls: list[Callable[[], object]]
    samples_ns: list[int]
    rates: list[float]


def timed_round(series: Series, count: int) -> None:
    calls, clock = series.calls, time.perf_counter_ns
    n = len(calls)
    samples = series.samples_ns
    for i in range(count):
        call = calls[i % n]
        start = clock()
        call()
        samples.append(clock() - start)
    start = clock()
    for i in range(count):
        calls[i % n]()
    series.rates.append(count / ((clock() - start) / 1e9))


def percentile(sorted_values: list[int], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))] / 1000


def cpu_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) clock ticks of one CPU from /proc/stat; (0, 0) where there is none."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]  # idle + iowait
                return sum(values) - idle, sum(values)
    except OSError:
        pass
    return 0, 0


def timer_overhead_ns() -> float:
    clock = time.perf_counter_ns
    values = []
    for _ in range(100_000):
        start = clock()
        values.append(clock() - start)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--calls", type=int, default=20_000, help="timed calls per series and round"
    )
    parser.add_argument("--holders", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    args = parser.parse_args()

    pinned = pin_cpu(args.cpu)

    began = time.perf_counter()
    rng = random.Random(args.seed)
    progress("building the trust world")
    build_times = []
    for _ in range(200):
        start = time.perf_counter_ns()
        snapshot = build_snapshot()
        build_times.append(time.perf_counter_ns() - start)
    holders = make_holders(args.holders, rng)
    links = link_calls(snapshot, holders, 5000, rng)
    transfers = transfer_calls(snapshot, holders, 5000, rng)
    fixed = fixed_transfers(snapshot)
    for name, (call, expected) in fixed.items():
        assert call().reason == expected, (name, call())
    outcomes = {
        "link (mixed)": collections.Counter(c().reason for c in links),
        "transfer (mixed)": collections.Counter(c().reason for c in transfers),
    }

    series = [
        Series("link (mixed)", list(links), [], []),
        Series("transfer (mixed)", list(transfers), [], []),
        *(Series(name, [call], [], []) for name, (call, _) in fixed.items()),
        *(Series(name, [call], [], []) for name, call in es256_references().items()),
    ]
    reference_name = series[-3].name  # the bare ES256 verification
    for s in series:  # warm-up
        timed_round(s, 2000)
        s.samples_ns.clear()
        s.rates.clear()
    overhead = timer_overhead_ns()
    busy_before, total_before = cpu_ticks(args.cpu)
    own_before = time.process_time()
    wall_before = time.perf_counter()
    for round_no in range(args.rounds):
        progress(f"round {round_no + 1} of {args.rounds}")
        order = series[round_no % len(series) :] + series[: round_no % len(series)]
        for s in order:
            timed_round(s, args.calls)
    wall = time.perf_counter() - wall_before
    own = (time.process_time() - own_before) / wall
    busy_after, total_after = cpu_ticks(args.cpu)
    core_busy = (busy_after - busy_before) / max(1, total_after - total_before)
    took = time.perf_counter() - began

    reference = next(s for s in series if s.name == reference_name)
    reference_p50 = percentile(sorted(reference.samples_ns), 0.50)
    print(
        "| operation | calls/s (median of rounds) | p50 µs | p99 µs | max µs "
        "| p99 / ES256 verify p50 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for s in series:
        ordered = sorted(s.samples_ns)
        p99 = percentile(ordered, 0.99)
        print(
            f"| {s.name} | {statistics.median(s.rates):,.0f} | {percentile(ordered, 0.50):.1f} "
            f"| {p99:.1f} | {ordered[-1] / 1000:.0f} | {p99 / reference_p50:.2f} |"
        )
    print()
    for name, counter in outcomes.items():
        mix = ", ".join(f"{reason} {count}" for reason, count in counter.most_common())
        print(f"- outcome mix of {name} (5,000 requests): {mix}")
    builds = sorted(build_times)
    print(
        f"- TrustSnapshot.build of {len(POLICIES)} sets (policies parsed) and {len(ANCHORS)} "
        f"anchors: {percentile(builds, 0.5):.0f} µs median (once per anchor or set change)"
    )
    print(
        f"- {args.rounds} rounds × {args.calls:,} timed calls per row, then as many untimed for "
        f"calls/s; rows rotate their order each round; timer overhead {overhead:.0f} ns per call "
        "is included in the latencies; GC on"
    )
    print(
        f"- during the measured rounds CPU {args.cpu} was busy {core_busy:.0%} of the time and "
        f"this process used {own:.0%} of a CPU (a gap between the two is other work on that "
        f"core); system load average at the end: {os.getloadavg()[0]:.1f}"
    )
    print(f"- trustanchor source: {git_state()}")
    print(
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, host CPU: {cpu_model()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}; process {pinned}"
    )
    print(
        f"- Python {platform.python_version()}, {sys.implementation.name}; cryptography "
        f"{cryptography.__version__}, PyJWT {jwt.__version__}; whole run {took:.0f} s"
    )


if __name__ == "__main__":
    main()
