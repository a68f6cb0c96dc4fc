"""Slow clients against the real server: latency of ordinary requests with 0 and 64 slow
connections, before and after the body deadline (issue 10, item 6).

Two servers, each on SQLite with the production thread count (one worker, one Python thread):

* ``before``: the way ``trustanchor serve`` ran until issue 10: granian's WSGI interface
  (``trustanchor.web.wsgi:app``, ``--blocking-threads 1``, granian's header read timeout of 30 s);
* ``after``: ``trustanchor serve`` as it is now: granian's ASGI interface with
  ``trustanchor.web.serving`` (bodies read in the event loop under ``[limits]``'s deadline, the
  Flask app in a pool of one thread), header read timeout ``limits.header_read_timeout``.

For each server, three phases: no slow clients; ``--slow`` connections trickling their headers
(one header line a second); ``--slow`` connections declaring a 1000-byte body and sending one
byte a second. Slow connections reconnect as soon as they are cut off, so they stay at
``--slow`` for the whole phase. Meanwhile ``--probes`` closed-loop clients alternate
``GET /jwks`` and ``POST /token`` (client_credentials, private_key_jwt); a request not answered
within 5 s counts as failed. Each phase has ``--warmup`` seconds before ``--seconds`` measured.

Columns: answered requests per second, p50 / p99 latency of the answered ones, failed requests,
and what happened to the slow connections (answered 408, closed without an answer, still open
at the end of the phase) with the median time to the cut-off. The servers run on CPU 1, this
script on CPU 0. Only 127.0.0.1 is contacted; every wait has a deadline.

    .venv/bin/python bench/slow_clients.py                 # about 2 minutes
    .venv/bin/python bench/slow_clients.py --slow 64 --probes 4 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import REPO_ROOT, cpu_model, git_state, pin_cpu

from trustanchor.jose.jwk import public_jwk

PROBE_TIMEOUT = 5.0
DECLARED_BODY = 1000
CLIENT_ID = "bench-probe"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the servers --------------------------------------------------------------------------------


def write_config(workdir: Path, port: int, key: ec.EllipticCurvePrivateKey) -> Path:
    """Test mode, SQLite, one private_key_jwt client (over the packaged defaults)."""
    config_dir = workdir / "config"
    config_dir.mkdir(parents=True)
    jwk = {**public_jwk(key), "kid": "probe", "alg": "ES256", "use": "sig"}
    key_table = ", ".join(f"{name} = {json.dumps(value)}" for name, value in jwk.items())
    text = "\n".join(
        [
            "[service]",
            'mode = "test"',
            f'issuer = "http://127.0.0.1:{port}"',
            f"database_url = {json.dumps('sqlite:///' + str(workdir / 'trustanchor.db'))}",
            f"keys_dir = {json.dumps(str(workdir / 'keys'))}",
            "[[clients]]",
            f'client_id = "{CLIENT_ID}"',
            f'client_name = "{CLIENT_ID}"',
            'client_type = "confidential"',
            'token_endpoint_auth_method = "private_key_jwt"',
            'grant_types = ["client_credentials"]',
            f"jwks = {{ keys = [{{ {key_table} }}] }}",  # TOML inline tables
        ]
    )
    path = config_dir / "service.toml"
    path.write_text(text + "\n", encoding="utf-8")
    return path


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _command_before(config: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "wsgi",
        "--workers",
        "1",
        "--blocking-threads",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-ws",
        "trustanchor.web.wsgi:app",
    ]


def _command_after(config: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trustanchor",
        "--config",
        str(config),
        "serve",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


COMMANDS: dict[str, Callable[[Path, int], list[str]]] = {
    "before": _command_before,
    "after": _command_after,
}


def start(name: str, workdir: Path, key: ec.EllipticCurvePrivateKey, cpu: int) -> Server:
    port = free_port()
    config = write_config(workdir, port, key)
    env = {**os.environ, "TRUSTANCHOR_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    init = subprocess.run(
        [sys.executable, "-m", "trustanchor", "--config", str(config), "init"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    if init.returncode != 0:
        raise SystemExit(f"{name}: trustanchor init failed:\n{init.stderr.decode()[-2000:]}")
    log = workdir / "server.log"
    command = COMMANDS[name](config, port)
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited:\n{log.read_text()[-2000:]}")
        with suppress(requests.RequestException):
            if requests.get(server.issuer + "/jwks", timeout=2).status_code == 200:
                return server
        time.sleep(0.1)
    stop(server)
    raise SystemExit(f"{name} did not answer within 60 s:\n{log.read_text()[-2000:]}")


def stop(server: Server) -> None:
    with suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=30)


# --- probes and slow clients --------------------------------------------------------------------


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    cut_408: list[float] = field(default_factory=list)
    cut_closed: list[float] = field(default_factory=list)
    still_open: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def token_form(issuer: str, key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    return {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(claims, key, algorithm="ES256", headers={"kid": "probe"}),
    }


def probe(
    server: Server,
    key: ec.EllipticCurvePrivateKey,
    phase: Phase,
    measure_from: float,
    until: float,
) -> None:
    session = requests.Session()
    turn = 0
    while time.monotonic() < until:
        turn += 1
        began = time.perf_counter()
        try:
            if turn % 2:
                got = session.get(server.issuer + "/jwks", timeout=PROBE_TIMEOUT)
            else:
                form = token_form(server.issuer, key)
                got = session.post(server.issuer + "/token", data=form, timeout=PROBE_TIMEOUT)
            ok = got.status_code == 200
        except requests.RequestException:
            ok = False
            session = requests.Session()
        if time.monotonic() < measure_from:
            continue
        with phase.lock:
            if ok:
                phase.latencies.append(time.perf_counter() - began)
            else:
                phase.failed += 1


def _wait_answer(sock: socket.socket, until: float) -> tuple[bool, bool]:
    """(answered 408, closed) once the server speaks or closes."""
    data = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = sock.recv(4096)
        except OSError:
            return data.startswith(b"HTTP/1.1 408"), True
        if not chunk:
            return data.startswith(b"HTTP/1.1 408"), True
        data += chunk
    return data.startswith(b"HTTP/1.1 408"), False


def trickler(server: Server, kind: str, phase: Phase, until: float) -> None:
    """One slow connection after another until ``until``; every outcome is counted, warm-up
    included."""
    while time.monotonic() < until:
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        except OSError:
            time.sleep(0.1)
            continue
        with sock:
            if kind == "body":
                sock.sendall(
                    b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    b"Content-Length: %d\r\n\r\n" % DECLARED_BODY
                )
                piece = b"g"
            else:
                sock.sendall(b"GET /jwks HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                piece = b"X-Slow: 1\r\n"
            began = time.monotonic()
            outcome: tuple[bool, bool] | None = None
            while time.monotonic() < until:
                ready, _, _ = select.select([sock], [], [], 1.0)
                if ready:
                    outcome = _wait_answer(sock, time.monotonic() + 5)
                    break
                try:
                    sock.sendall(piece)
                except OSError:
                    outcome = (False, True)
                    break
            waited = time.monotonic() - began
        with phase.lock:
            if outcome is None:
                phase.still_open += 1
            elif outcome[0]:
                phase.cut_408.append(waited)
            elif outcome[1]:
                phase.cut_closed.append(waited)


def run_phase(
    server: Server, key: ec.EllipticCurvePrivateKey, kind: str, args: argparse.Namespace
) -> Phase:
    phase = Phase()
    now = time.monotonic()
    measure_from = now + args.warmup
    until = measure_from + args.seconds
    threads = [
        threading.Thread(target=probe, args=(server, key, phase, measure_from, until))
        for _ in range(args.probes)
    ]
    if kind != "none":
        threads += [
            threading.Thread(target=trickler, args=(server, kind, phase, until))
            for _ in range(args.slow)
        ]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join(timeout=args.warmup + args.seconds + 15)
    return phase


# --- output -------------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    return f"{1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]:.1f}"


def row(server: str, kind: str, slow: int, phase: Phase, seconds: float) -> str:
    slow_label = {
        "none": "0",
        "headers": f"{slow} trickling headers",
        "body": f"{slow} trickling a body",
    }[kind]
    cuts = phase.cut_408 + phase.cut_closed
    fate = (
        "–"
        if kind == "none"
        else f"{len(phase.cut_408)} × 408, {len(phase.cut_closed)} closed, "
        f"{phase.still_open} still open"
    )
    cut_at = f"{statistics.median(cuts):.1f} s" if cuts else "–"
    return (
        f"| {server} | {slow_label} | {len(phase.latencies) / seconds:.0f} | "
        f"{_ms(phase.latencies, 0.5)} | {_ms(phase.latencies, 0.99)} | {phase.failed} | "
        f"{fate} | {cut_at} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default="before,after")
    parser.add_argument("--slow", type=int, default=64, help="slow connections per phase")
    parser.add_argument("--probes", type=int, default=1, help="concurrent probe clients")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--cpu", type=int, default=0, help="CPU for this script (servers: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    names = [n for n in args.servers.split(",") if n]
    unknown = set(names) - set(COMMANDS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the servers too
    pinned = pin_cpu(args.cpu)
    key = ec.generate_private_key(ec.SECP256R1())
    rows: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="ta-bench-slow-"))
    try:
        for name in names:
            with ExitStack() as stack:
                say(f"{name}: starting")
                server = start(name, workdir / name, key, cpu=1 if args.cpu != 1 else 0)
                stack.callback(stop, server)
                for kind in ("none", "headers", "body"):
                    say(f"{name}: {kind} ({args.warmup:g} s warm-up, {args.seconds:g} s)")
                    phase = run_phase(server, key, kind, args)
                    rows.append(row(name, kind, args.slow, phase, args.seconds))
                    say(rows[-1])
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        "| server | slow clients | answered/s | p50 ms | p99 ms | failed | slow connections "
        "| cut after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print(f"- {git_state()}; {cpu_model()}; this script {pinned}, servers on the other CPU")
    print(
        f"- {args.probes} probe client(s), closed loop, GET /jwks and POST /token alternately "
        f"(client_credentials, private_key_jwt, new jti each); failed = no 200 within "
        f"{PROBE_TIMEOUT:g} s; {args.warmup:g} s warm-up then {args.seconds:g} s per phase"
    )
    print(
        "- slow connections reconnect when cut; 'cut after' is the median time from the end "
        "of the headers (body) or the first line (headers) to the 408 or the close"
    )


if __name__ == "__main__":
    main()
