"""Token endpoint benchmark: trustanchor against node-oidc-provider, side by side in one run.

What is measured (see docs/PERFORMANCE.md for the method):

* ``--grant client_credentials`` (default): the client_credentials grant at ``POST /token``, one
  confidential client authenticating with
  ``client_secret_basic`` on both sides (trustanchor allows that method only outside production,
  so trustanchor runs in demo mode here), answering with an ES256-signed JWT access token
  (RFC 9068, ``typ: at+jwt``);
* ``--grant transfer_code``: the authorization-code exchange of a ``value_transfer`` grant (RFC
  9396 authorization_details) with PKCE: each request redeems one single-use code minted before
  the run (bench/transfer_codes.py) and gets an ES256 JWT access token carrying the approved
  authorization_details (trustanchor adds ``anchor_set``), no refresh token, and an ES256 ID
  token; node-oidc-provider with its richAuthorizationRequests feature and a Map adapter;
* trustanchor as it is: every issued token recorded in its SQLite database (WAL,
  ``synchronous=FULL``) before it is returned; node-oidc-provider with its in-memory adapter, which
  stores nothing for JWT-format access tokens;
* ``--postgres [URL]``: trustanchor on PostgreSQL instead (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), each trustanchor server in a fresh schema
  of its own (as the test suite does: ``options=-csearch_path``), dropped at the end; the notes give
  the server's commit settings read with ``SHOW``, and the table adds the CPU of the PostgreSQL
  backends serving each server (they are not pinned and not in the server's process tree);
* trustanchor under several WSGI servers (granian, gunicorn sync, gunicorn gthread), one worker
  each, so the server can be chosen by measurement.

Every server is pinned to core 1 and ``wrk`` to core 0 (``taskset``). All servers are started
and warmed up, then the runs are interleaved (run 1 of every server, then run 2, ...; the idle ones
cost nothing), because this machine is shared and a slow spell should hit every server alike;
``--sequential`` runs each server alone instead. The table gives the median req/s, the medians of
p50 and p99 latency, the peak RSS (VmHWM summed over the server's process tree, master included,
and of its largest process), the ratio of req/s to node-oidc-provider's, and how busy each core
was, which shows when something else on the machine was competing with the server.

Run by hand from the repository root, with the project's virtualenv::

    (cd bench/peer/node-oidc-provider && npm ci)   # once
    .venv/bin/python bench/token_endpoint.py
    .venv/bin/python bench/token_endpoint.py --grant transfer_code --servers node,granian
    .venv/bin/python bench/token_endpoint.py --postgres --servers node,serve

Only 127.0.0.1 is ever contacted; every subprocess runs under a deadline.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state
from transfer_codes import (
    REDIRECT_URI,
    TRANSFER_DETAIL,
    NodeCodes,
    TrustanchorCodes,
    form_prefix,
    pkce_pair,
)
from transfer_codes import SCOPE as TRANSFER_SCOPE

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEER_DIR = BENCH_DIR / "peer" / "node-oidc-provider"
LUA_SCRIPT = BENCH_DIR / "wrk" / "post_form.lua"
CODES_LUA_SCRIPT = BENCH_DIR / "wrk" / "post_codes.lua"

HOST = "127.0.0.1"  # the only address this script ever talks to
SERVER_CPU = "1"
# Where the servers run (taskset -c): SERVER_CPU unless --server-cpus says otherwise.
SERVER_CPUS = {"list": SERVER_CPU}
LOADGEN_CPU = "0"
CLIENT_ID = "bench-client"
SCOPE = "api:read"
RESOURCE = "https://rs.bench.invalid"
TOKEN_TTL = 300
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 10.0
NODE_SERVER = "node-oidc-provider"
GUNICORN_THREADS = 4
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# Read with SHOW and printed with every PostgreSQL run: what a commit waits for.
POSTGRES_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "commit_delay",
    "commit_siblings",
    "fsync",
    "wal_sync_method",
    "full_page_writes",
    "shared_buffers",
    "max_connections",
)
# Creating and dropping a schema leaves dead rows in these catalogs; the shared server runs
# without autovacuum, so the run vacuums them at the end, as tests/conftest.py does.
POSTGRES_CATALOGS = (
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_depend",
    "pg_type",
    "pg_index",
    "pg_trigger",
    "pg_sequence",
    "pg_namespace",
    "pg_statistic",
)
TRANSFER_TTL = 60  # trustanchor's tokens.transfer_token_lifetime default
FIRST_RATE_GUESS = 3000.0  # req/s, to size the warm-up's codes; then what the server achieved
CODE_MARGIN = 4.0  # codes minted per run: CODE_MARGIN x expected rate x seconds (a shared machine
# swings 2x between the warm-up and a run)


class BenchError(Exception):
    """The benchmark cannot run or a server misbehaved; the message says what to do."""


# -- what runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration: a name for the table and how to start it on a port."""

    key: str
    label: str
    command: Callable[[int], list[str]]
    trustanchor: bool
    available: Callable[[], str | None] = lambda: None  # reason it cannot run, or None
    # ``trustanchor serve`` variants (--workers, --two-processes, --serve-variant):
    processes: int = 1  # separate server processes on one database, each with its own wrk
    env: tuple[tuple[str, str], ...] = ()  # extra environment (TRUSTANCHOR_* settings)
    pg_settings: tuple[tuple[str, str], ...] = ()  # PostgreSQL session settings (libpq options)


def _node_command(port: int) -> list[str]:
    del port  # passed through the environment
    return ["node", str(PEER_DIR / "server.js")]


def _granian_command(threads: int | None) -> Callable[[int], list[str]]:
    """``threads=None`` keeps granian's default: for WSGI that is backpressure / 2 = 512 blocking
    threads, started on demand. (``trustanchor serve`` now pins 1 thread per worker on SQLite,
    the ``granian`` row, because of what the ``granian-default`` row shows.)"""

    def command(port: int) -> list[str]:
        pinned = [] if threads is None else ["--blocking-threads", str(threads)]
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", HOST, "--port", str(port), "--workers", "1", *pinned,
            "--no-access-log", "--log-level", "warning",
            "trustanchor.web.wsgi:app",
        ]  # fmt: skip

    return command


def _serve_command(port: int, workers: int = 1) -> list[str]:
    """``trustanchor serve`` itself (settings from $TRUSTANCHOR_CONFIG, which holds this port):
    granian's ASGI interface with ``trustanchor.web.asgi:app``, bodies read in the event loop,
    the Flask app in a pool of ``threads_per_worker`` threads (1 on SQLite)."""
    return [
        sys.executable, "-m", "trustanchor", "serve", "--port", str(port),
        "--workers", str(workers),
    ]  # fmt: skip


SETTING_NAME = re.compile(r"[a-z_]{1,63}")
SETTING_VALUE = re.compile(r"[A-Za-z0-9_.]{1,32}")
ENV_NAME = re.compile(r"TRUSTANCHOR_[A-Z0-9_]{1,64}")
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")


def _workers_of(spec: ServerSpec) -> int:
    """Worker processes of one server process of ``spec`` (1 unless --workers N is given)."""
    command = spec.command(0)
    return int(command[command.index("--workers") + 1]) if "--workers" in command else 1


def serve_variant(text: str) -> ServerSpec:
    """A row of ``trustanchor serve`` from ``NAME:KEY=VALUE,KEY=VALUE`` (--serve-variant):
    ``workers=N`` (granian worker processes), ``processes=N`` (separate ``trustanchor serve``
    processes on one database, each loaded by its own wrk with its share of the connections),
    ``pg.SETTING=VALUE`` (a PostgreSQL session setting on every connection of the service,
    through libpq's ``options``: e.g. ``pg.commit_delay=100``) and ``TRUSTANCHOR_...=VALUE``
    (an environment setting, e.g. ``TRUSTANCHOR_SERVICE_LEAN_TOKEN_ENDPOINT=false``)."""
    name, _, rest = text.partition(":")
    if not VARIANT_NAME.fullmatch(name):
        raise ValueError(f"variant name {name!r}: letters, digits, _ . - (at most 40)")
    workers = processes = 1
    env: list[tuple[str, str]] = []
    pg: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: expected KEY=VALUE")
        if key in ("workers", "processes"):
            if not value.isdigit() or not 1 <= int(value) <= 8:
                raise ValueError(f"{key}={value}: 1..8")
            workers, processes = (
                (int(value), processes) if key == "workers" else (workers, int(value))
            )
        elif key.startswith("pg."):
            setting = key.removeprefix("pg.")
            if not SETTING_NAME.fullmatch(setting) or not SETTING_VALUE.fullmatch(value):
                raise ValueError(f"{item!r}: pg.<name>=<value> with plain names and values")
            pg.append((setting, value))
        elif ENV_NAME.fullmatch(key):
            env.append((key, value))
        else:
            raise ValueError(f"{item!r}: keys are workers, processes, pg.<setting>, TRUSTANCHOR_*")
    shown = [f"{workers} worker{'s' if workers > 1 else ''}"]
    if processes > 1:
        shown.insert(0, f"{processes} processes ×")
    shown += [f"{k}={v}" for k, v in pg] + [
        f"{k.removeprefix('TRUSTANCHOR_').lower()}={v}" for k, v in env
    ]
    return ServerSpec(
        name,
        f"trustanchor · serve {name} ({' '.join(shown)})",
        partial(_serve_command, workers=workers),
        trustanchor=True,
        available=_module_missing("granian", "it is a project dependency"),
        processes=processes,
        env=tuple(env),
        pg_settings=tuple(pg),
    )


def _gunicorn_command(worker: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        extra = ["--threads", str(GUNICORN_THREADS)] if worker == "gthread" else []
        return [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{HOST}:{port}", "--workers", "1", "--worker-class", worker, *extra,
            "--keep-alive", "65", "--log-level", "warning",
            "trustanchor.web.wsgi:app",
        ]  # fmt: skip

    return command


def _module_missing(module: str, hint: str) -> Callable[[], str | None]:
    def check() -> str | None:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, timeout=30
        )
        return None if probe.returncode == 0 else f"{module} is not installed ({hint})"

    return check


SERVERS: dict[str, ServerSpec] = {
    spec.key: spec
    for spec in (
        ServerSpec("node", NODE_SERVER, _node_command, trustanchor=False),
        ServerSpec(
            "granian",
            "trustanchor · granian WSGI (1 worker, 1 thread)",
            _granian_command(1),
            trustanchor=True,
            available=_module_missing("granian", "it is a project dependency"),
        ),
        ServerSpec(
            "serve",
            "trustanchor · trustanchor serve: granian ASGI + serving.py (1 worker)",
            _serve_command,
            trustanchor=True,
            available=_module_missing("granian", "it is a project dependency"),
        ),
        ServerSpec(
            "granian-default",
            "trustanchor · granian default threads (1 worker, ≤512 threads)",
            _granian_command(None),
            trustanchor=True,
            available=_module_missing("granian", "it is a project dependency"),
        ),
        ServerSpec(
            "gunicorn-sync",
            "trustanchor · gunicorn sync (1 worker)",
            _gunicorn_command("sync"),
            trustanchor=True,
            available=_module_missing("gunicorn", ".venv/bin/pip install gunicorn"),
        ),
        ServerSpec(
            "gunicorn-gthread",
            f"trustanchor · gunicorn gthread (1 worker, {GUNICORN_THREADS} threads)",
            _gunicorn_command("gthread"),
            trustanchor=True,
            available=_module_missing("gunicorn", ".venv/bin/pip install gunicorn"),
        ),
    )
}


@dataclass
class RunResult:
    requests: int
    seconds: float
    p50_us: int
    p99_us: int
    errors: dict[str, int]
    codes_taken: int = 0  # transfer codes wrk handed out (answered or in flight at the end)
    server_cpu: float = 0.0  # share of one core used by the server's processes
    database_cpu: float = 0.0  # share of one core used by its PostgreSQL backends (0 on SQLite)
    core_busy: dict[str, float] = field(default_factory=dict)  # CPU -> busy share, all processes
    process_cpu: list[float] = field(default_factory=list)  # per server process (processes > 1)
    wal_syncs: int | None = None  # PostgreSQL: WAL fsyncs during the run, whole server
    audit_lag_ms: float | None = None  # trustanchor: most the signed checkpoint fell behind

    @property
    def wal_syncs_per_request(self) -> float:
        """WAL fsyncs per answered request (server-wide counter: includes other sessions)."""
        return (self.wal_syncs or 0) / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per answered request: less sensitive to a busy machine than req/s."""
        return 1e6 * self.server_cpu / self.rps if self.requests else 0.0

    @property
    def database_cpu_us_per_request(self) -> float:
        """PostgreSQL backend CPU time per answered request (the backends run outside the
        server's process tree and are not pinned)."""
        return 1e6 * self.database_cpu / self.rps if self.requests else 0.0


@dataclass
class ServerResult:
    spec: ServerSpec
    runs: list[RunResult] = field(default_factory=list)
    peak_rss_kib: int = 0  # VmHWM summed over the process tree
    largest_rss_kib: int = 0  # VmHWM of the largest process in the tree
    threads: int = 0  # most OS threads seen in the process tree right after a run
    recorded_tokens: int | None = None  # rows in trustanchor's access_tokens table
    issued_requests: int = 0  # every request wrk sent, warm-up and the sanity check included
    open_loop: dict[str, Any] | None = None  # --rate-fraction: bench/open_loop.py's answer

    def median(self, attr: str) -> float:
        return statistics.median(float(getattr(run, attr)) for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(sum(run.errors.values()) for run in self.runs)


def _for_database(spec: ServerSpec, postgres: str | None) -> ServerSpec:
    """``trustanchor serve`` picks its thread count by database (service.threads = 0, the
    default; service.group_commit on, the default) and runs /token on the event loop under
    group commit: say so in its label."""
    if spec.key != "serve":
        return spec
    from trustanchor.web.serving import threads_per_worker

    threads = threads_per_worker("postgresql" if postgres else "sqlite", group_commit=True)
    # service.token_on_loop (the default) puts /token on the event loop's thread under group
    # commit, i.e. on SQLite; the request threads serve the other routes
    where = "request threads" if postgres else "/token on the event loop; other routes in threads"
    return replace(
        spec,
        label="trustanchor · trustanchor serve: granian ASGI + serving.py "
        f"(1 worker, {threads} {where})",
    )


# -- preflight ---------------------------------------------------------------------------------


def preflight(specs: Sequence[ServerSpec]) -> list[ServerSpec]:
    """Refuse to start when a required tool is missing; drop optional servers that cannot run.
    node-oidc-provider is needed only when it is among ``specs`` (a run without it, such as
    ``--servers granian,serve``, compares trustanchor's servers with each other)."""
    with_node = any(spec.key == "node" for spec in specs)
    tools = ("wrk", "node", "taskset") if with_node else ("wrk", "taskset")
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        hints = {
            "wrk": "apt-get install -y wrk",
            "node": "install Node.js 20.19+ or 22 LTS (node-oidc-provider 9.x needs it)",
            "taskset": "apt-get install -y util-linux",
        }
        raise BenchError(
            "missing tools: "
            + ", ".join(f"{tool} ({hints[tool]})" for tool in missing)
            + "; the comparison needs all of them, so nothing was run"
        )
    if with_node and not (PEER_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        raise BenchError(
            f"node-oidc-provider is not installed: run `npm ci` (or `npm install`) in {PEER_DIR}"
        )
    cpus = os.sched_getaffinity(0)
    if not {int(SERVER_CPU), int(LOADGEN_CPU)} <= cpus:
        raise BenchError(
            f"needs CPUs {LOADGEN_CPU} and {SERVER_CPU} (load generator and server pinned apart); "
            f"this process may use {sorted(cpus)}"
        )
    usable: list[ServerSpec] = []
    for spec in specs:
        reason = spec.available()
        if reason is None:
            usable.append(spec)
        else:
            print(f"skipping {spec.label}: {reason}", file=sys.stderr)
    if not any(s.trustanchor for s in usable):
        raise BenchError("need at least one trustanchor server")
    return usable


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        found.extend(int(child) for child in text.split())
    return found


def process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(_children(current))
    return tree


def thread_count(pid: int) -> int:
    """OS threads in ``pid``'s process tree (granian starts blocking threads on demand)."""
    total = 0
    for member in process_tree(pid):
        try:
            total += len(os.listdir(f"/proc/{member}/task"))
        except OSError:
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants."""
    ticks = 0
    for member in process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _pid_cpu(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each of ``pids`` (gone ones are left out)."""
    found: dict[int, float] = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def core_ticks() -> dict[str, tuple[int, int]]:
    """Per pinned CPU: (busy, total) jiffies from /proc/stat."""
    found: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name = line.split(" ", 1)[0]
        if name in (f"cpu{SERVER_CPU}", f"cpu{LOADGEN_CPU}"):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]  # idle + iowait
            found[name.removeprefix("cpu")] = (sum(values[:8]) - idle, sum(values[:8]))
    return found


def peak_rss_kib(pid: int) -> tuple[int, int]:
    """VmHWM (peak resident set) summed over ``pid`` and all its descendants, and the largest
    single process's (for a pre-fork server: the worker, which is what grows with load)."""
    total = largest = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                kib = int(line.split()[1])
                total += kib
                largest = max(largest, kib)
    return total, largest


@contextmanager
def running(
    command: list[str], *, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` pinned to the server core in its own process group; always stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPUS["list"], *command],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our own session: only what we started
        proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_DEADLINE)
    except ProcessLookupError:
        pass


# -- HTTP checks -------------------------------------------------------------------------------


def token_request(port: int, body: str, authorization: str) -> tuple[int, bytes]:
    url = f"http://{HOST}:{port}/token"
    assert urllib.parse.urlsplit(url).hostname == HOST
    request = urllib.request.Request(
        url,
        data=body.encode("ascii"),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": authorization,
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # only 127.0.0.1
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Poll the discovery document until the server answers 200."""
    url = f"http://{HOST}:{port}/.well-known/openid-configuration"
    deadline = time.monotonic() + STARTUP_DEADLINE
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}; see its log:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # only 127.0.0.1
                if response.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise BenchError(f"server not ready after {STARTUP_DEADLINE:.0f} s ({last}):\n{tail(log)}")


def sanity_check(port: int, body: str, authorization: str, grant: str) -> dict[str, Any]:
    """One token request: it must answer 200; return the decoded access-token header+claims."""
    status, payload = token_request(port, body, authorization)
    if status != 200:
        raise BenchError(f"token request answered {status}: {payload[:300]!r}")
    return check_token(json.loads(payload), grant)


def check_token(response: dict[str, Any], grant: str) -> dict[str, Any]:
    """Both servers must answer with the same kind of token: ES256, typ at+jwt, our claims (and
    for transfer codes: exactly the approved authorization_details, an ID token, no refresh)."""
    token = response.get("access_token")
    if not isinstance(token, str) or token.count(".") != 2:
        raise BenchError(f"no compact JWS access token in {response}")
    header_b64, claims_b64, _ = token.split(".")
    header = json.loads(_b64url(header_b64))
    claims = json.loads(_b64url(claims_b64))
    if header.get("alg") != "ES256" or header.get("typ") != "at+jwt":
        raise BenchError(f"access token header is {header}, expected ES256 at+jwt")
    if claims.get("client_id") != CLIENT_ID:
        raise BenchError(f"unexpected access token claims {claims}")
    if claims.get("aud") != RESOURCE:
        raise BenchError(f"access token audience is {claims.get('aud')!r}, expected {RESOURCE}")
    if grant == "client_credentials" and claims.get("scope") != SCOPE:
        raise BenchError(f"unexpected access token scope {claims.get('scope')!r}")
    if grant == "transfer_code":
        if claims.get("authorization_details") != [TRANSFER_DETAIL]:
            raise BenchError(f"access token lacks the approved details: {claims}")
        if response.get("authorization_details") != [TRANSFER_DETAIL]:
            raise BenchError(f"token response lacks authorization_details: {sorted(response)}")
        if "refresh_token" in response or not isinstance(response.get("id_token"), str):
            raise BenchError(f"expected an ID token and no refresh token: {sorted(response)}")
        if claims["exp"] - claims["iat"] != TRANSFER_TTL:
            raise BenchError(f"transfer token lifetime {claims['exp'] - claims['iat']} s")
    return {"header": header, "claims": sorted(claims), "bytes": len(token)}


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- load --------------------------------------------------------------------------------------


def run_wrk(
    server_pids: Sequence[int],
    ports: Sequence[int],
    *,
    seconds: int,
    connections: int,
    body: str,
    authorization: str,
    codes_files: Sequence[Path] | None = None,
    database_pids: Callable[[], list[int]] | None = None,
    wal_syncs: Callable[[], int] | None = None,
) -> RunResult:
    """One wrk run per port, all at once, each with its share of ``connections`` (one port: one
    wrk, as always). With ``codes_files`` (one per port) each request redeems the next code
    from its file (``body`` is then the form up to "&code="); each wrk runs one thread, so
    every code is handed out once. ``database_pids`` lists the PostgreSQL backends serving this
    server, whose CPU is counted apart from the server's. With several ports the requests and
    errors are summed, p50 is the mean of the wrk instances' p50 weighted by their requests and
    p99 the largest of their p99 (percentiles cannot be merged exactly)."""
    if len(ports) != len(server_pids) or (
        codes_files is not None and len(codes_files) != len(ports)
    ):
        raise BenchError("one wrk per server process")
    shares = [connections // len(ports) + (i < connections % len(ports)) for i in range(len(ports))]
    commands: list[tuple[list[str], dict[str, str]]] = []
    for index, port in enumerate(ports):
        url = f"http://{HOST}:{port}/token"
        assert urllib.parse.urlsplit(url).hostname == HOST
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BENCH_AUTHORIZATION": authorization,
        }
        if codes_files is None:
            env["BENCH_FORM_BODY"] = body
            script = LUA_SCRIPT
        else:
            env.update(BENCH_FORM_PREFIX=body, BENCH_CODES_FILE=str(codes_files[index]))
            script = CODES_LUA_SCRIPT
        command = [
            "taskset", "-c", LOADGEN_CPU,
            "wrk", "--threads", "1", "--connections", str(shares[index]),
            "--duration", f"{seconds}s", "--timeout", "5s", "--script", str(script), url,
        ]  # fmt: skip
        commands.append((command, env))
    db_before = _pid_cpu(database_pids() if database_pids else [])
    wal_before = wal_syncs() if wal_syncs else None
    cpu_before = [cpu_seconds(pid) for pid in server_pids]
    cores_before, wall_before = core_ticks(), time.monotonic()
    procs = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command, env in commands
    ]
    outputs: list[tuple[int, str, str]] = []
    try:
        for proc in procs:
            out, err = proc.communicate(
                timeout=max(1.0, wall_before + seconds + 30 - time.monotonic())
            )
            outputs.append((proc.returncode, out, err))
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {seconds + 30} s") from exc
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=STOP_DEADLINE)
    wall = time.monotonic() - wall_before
    process_cpu = [
        (cpu_seconds(pid) - before) / wall
        for pid, before in zip(server_pids, cpu_before, strict=True)
    ]
    cores_after = core_ticks()
    db_after = _pid_cpu(database_pids() if database_pids else [])
    wal_after = wal_syncs() if wal_syncs else None
    # A backend that started during the run counts from zero; one that ended is lost (the
    # service's pool keeps its connections, so that is rare).
    database_cpu = sum(cpu - db_before.get(pid, 0.0) for pid, cpu in db_after.items()) / wall
    core_busy = {
        cpu: (cores_after[cpu][0] - busy) / max(1, cores_after[cpu][1] - total)
        for cpu, (busy, total) in cores_before.items()
    }
    parts: list[dict[str, Any]] = []
    for returncode, out, err in outputs:
        if returncode != 0:
            raise BenchError(f"wrk failed ({returncode}): {err.strip()[:500]}")
        found = [line for line in out.splitlines() if line.startswith("BENCH_RESULT ")]
        if not found:
            raise BenchError(f"no BENCH_RESULT line in wrk output:\n{out[-1000:]}")
        parts.append(json.loads(found[-1].removeprefix("BENCH_RESULT ")))
    requests = sum(int(part["requests"]) for part in parts)
    errors: dict[str, int] = {}
    for part in parts:
        for kind, number in part["errors"].items():
            errors[kind] = errors.get(kind, 0) + int(number)
    p50 = (
        sum(part["latency_us"]["p50"] * part["requests"] for part in parts) / requests
        if requests
        else 0
    )
    return RunResult(
        requests=requests,
        seconds=max(part["duration_us"] for part in parts) / 1e6,
        p50_us=int(p50),
        p99_us=max(int(part["latency_us"]["p99"]) for part in parts),
        errors=errors,
        codes_taken=sum(int(part.get("codes_taken", 0)) for part in parts),
        server_cpu=sum(process_cpu),
        database_cpu=database_cpu,
        core_busy=core_busy,
        process_cpu=process_cpu,
        wal_syncs=None if wal_before is None or wal_after is None else wal_after - wal_before,
    )


# -- trustanchor set-up ------------------------------------------------------------------------


def _client_lines(grant: str) -> list[str]:
    if grant == "transfer_code":
        return [
            'grant_types = ["authorization_code"]',
            f"redirect_uris = [{json.dumps(REDIRECT_URI)}]",
            f"scope = {json.dumps(TRANSFER_SCOPE)}",
            'authorization_details_types = ["value_transfer"]',
        ]
    return ['grant_types = ["client_credentials"]', f"scope = {json.dumps(SCOPE)}"]


class Postgres:
    """The PostgreSQL of ``--postgres``: one fresh schema per trustanchor server (a URL whose
    ``search_path`` is that schema and whose ``application_name`` names it, so its backends can
    be found), all dropped by :meth:`close`; nothing outside those schemas is touched."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise BenchError(f"--postgres needs a postgresql:// URL, not {parsed.drivername}://")
        if parsed.host != HOST:
            raise BenchError(f"--postgres: only {HOST} is contacted, not {parsed.host!r}")
        if "options" in parsed.query or "application_name" in parsed.query:
            raise BenchError("--postgres: the URL must not set options or application_name")
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed.render_as_string(hide_password=False)
        self.shown = parsed.render_as_string(hide_password=True)
        self.schemas: list[str] = []
        self._admin = create_engine(self.url, connect_args={"connect_timeout": 3})
        try:
            self.settings = self._show()
        except Exception as exc:  # any failure means "cannot run on it"
            self._admin.dispose()
            raise BenchError(
                f"PostgreSQL not reachable at {self.shown}: {exc.__class__.__name__}"
            ) from exc

    def _show(self) -> dict[str, str]:
        from sqlalchemy import text

        with self._admin.connect() as conn:
            return {
                name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
                for name in POSTGRES_SETTINGS
            }

    def new_database(self, settings: Sequence[tuple[str, str]] = ()) -> str:
        """A fresh schema; the URL trustanchor is configured with. ``settings``: PostgreSQL
        session settings for every connection made with that URL (libpq ``options``, ``-c
        name=value`` each; ``commit_delay`` needs a superuser connection). Nothing is changed
        server-wide: each setting lives and dies with the service's own sessions."""
        from sqlalchemy import text

        schema = f"ta_bench_{os.getpid()}_{secrets.token_hex(4)}"
        with self._admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        sep = "&" if "?" in self.url else "?"
        options = "%20".join(
            f"-c{name}%3D{value}" for name, value in (("search_path", schema), *settings)
        )
        return f"{self.url}{sep}options={options}&application_name={schema}"

    def session_settings(self, url: str, names: Sequence[str]) -> dict[str, str]:
        """What a connection made with ``url`` sees for ``names`` (SHOW): checks that the
        session settings of a variant took effect."""
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return {
                    name: str(conn.execute(text(f"SHOW {name}")).scalar_one()) for name in names
                }
        finally:
            engine.dispose()

    def check_connections(self, specs: Sequence[ServerSpec]) -> None:
        """Every server stays up for the whole interleaved run and its pools keep their
        connections: refuse a plan that would pass max_connections (the service would answer
        503 for want of a connection, which measures the plan, not the service). Estimate:
        per worker, the request threads (4 on PostgreSQL) plus the audit integrator and one
        spare."""
        from sqlalchemy import text

        with self._admin.connect() as conn:
            in_use = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar_one())
        budget = int(self.settings["max_connections"]) - in_use - 3  # superuser reserve
        need = sum(6 * spec.processes * _workers_of(spec) for spec in specs if spec.trustanchor)
        if need > budget:
            raise BenchError(
                f"this plan may open about {need} PostgreSQL connections and the server has "
                f"about {budget} free (max_connections {self.settings['max_connections']}, "
                f"{in_use} in use): run fewer rows at a time, or --sequential"
            )

    def wal_syncs(self) -> int:
        """``pg_stat_wal.wal_sync``: WAL fsyncs so far, by every session of the server (this
        shared server has other clients, which the count includes)."""
        from sqlalchemy import text

        with self._admin.connect() as conn:
            return int(conn.execute(text("SELECT wal_sync FROM pg_stat_wal")).scalar_one())

    def backend_pids(self, url: str) -> list[int]:
        """The server processes of PostgreSQL connected with ``url``'s application_name."""
        from sqlalchemy import text

        name = url.rsplit("application_name=", 1)[1]
        with self._admin.connect() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            )
            return [int(pid) for (pid,) in rows]

    def close(self) -> None:
        """Drop every schema made (the servers have stopped), then vacuum the catalogs."""
        from sqlalchemy import create_engine, text

        try:
            with self._admin.begin() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            self._admin.dispose()
        if not self.schemas:
            return
        tables = ", ".join(f"pg_catalog.{name}" for name in POSTGRES_CATALOGS)
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:  # SKIP_LOCKED: never wait for another session's
                conn.execute(text(f"VACUUM (SKIP_LOCKED, ANALYZE) {tables}"))
        except Exception as exc:  # upkeep only: the results do not depend on it
            print(f"could not vacuum PostgreSQL's catalogs: {exc}", file=sys.stderr)
        finally:
            engine.dispose()

    def note(self) -> str:
        settings = ", ".join(
            f"{name}={value}" for name, value in self.settings.items() if name != "server_version"
        )
        return (
            f"database: PostgreSQL {self.settings['server_version']} at {self.shown}, one fresh "
            f"schema per trustanchor server (dropped at the end); server settings (SHOW): "
            f"{settings}; PostgreSQL's processes are not pinned (they share both cores with the "
            "server and wrk); database CPU: the CPU of the backends connected for that server "
            "(found by application_name), per second of wall time, not counted in server CPU; "
            "the WAL writer's and checkpointer's CPU is in neither; WAL fsyncs/req: the growth "
            "of pg_stat_wal.wal_sync during the run over the requests answered, a server-wide "
            "counter, so it includes the commits of anything else using this server (the "
            "node-oidc-provider row, which stores nothing, shows that background per request)"
        )


def sqlite_note(config: Path) -> str:
    """What the service's own SQLite connections run with (read through its Database)."""
    from sqlalchemy import text

    from trustanchor.config import load_settings
    from trustanchor.storage.database import Database

    db = Database(load_settings(config, environ={}).service.database_url)
    try:
        with db.reader() as conn:
            version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
            journal = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            synchronous = conn.execute(text("PRAGMA synchronous")).scalar_one()
    finally:
        db.dispose()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return (
        f"database: SQLite {version}, one file per trustanchor server in the temporary directory, "
        f"journal_mode={journal}, synchronous={names.get(int(synchronous), synchronous)} (as the "
        "service's connections set them)"
    )


def prepare_trustanchor(
    workdir: Path, port: int, secret: str, grant: str, database_url: str | None = None
) -> Path:
    """A demo-mode configuration, fresh keys and a fresh database (a SQLite file in ``workdir``
    unless ``database_url`` is given), made by trustanchor's own bootstrap (the same code
    `trustanchor init` runs). Returns the configuration file."""
    from trustanchor.bootstrap import initialise
    from trustanchor.config import load_settings
    from trustanchor.storage.database import Database

    workdir.mkdir(parents=True)
    config = workdir / "bench.toml"
    if database_url is None:
        database_url = "sqlite:///" + str(workdir / "trustanchor.db")
    config.write_text(
        "\n".join(
            [
                "[service]",
                'mode = "demo"',
                f"issuer = {json.dumps(f'http://{HOST}:{port}')}",
                f"database_url = {json.dumps(database_url)}",
                f"keys_dir = {json.dumps(str(workdir / 'keys'))}",
                f"host = {json.dumps(HOST)}",
                f"port = {port}",
                "workers = 1",
                "",
                "[tokens]",
                f"access_token_lifetime = {TOKEN_TTL}",
                'signing_alg = "ES256"',
                "",
                "[[clients]]",
                f"client_id = {json.dumps(CLIENT_ID)}",
                'client_type = "confidential"',
                'token_endpoint_auth_method = "client_secret_basic"',
                f"client_secret = {json.dumps(secret)}",
                *_client_lines(grant),
                f"audiences = [{json.dumps(RESOURCE)}]",
                "",
            ]
        ),
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    db = Database(settings.service.database_url)
    try:
        initialise(settings, db, now=int(time.time()), generate_keys=True)
    finally:
        db.dispose()
    return config


def count_recorded_tokens(config: Path) -> int:
    from sqlalchemy import func, select

    from trustanchor.config import load_settings
    from trustanchor.storage.database import Database
    from trustanchor.storage.tables import access_tokens

    settings = load_settings(config, environ={})
    db = Database(settings.service.database_url)
    try:
        with db.reader() as conn:
            return int(conn.execute(select(func.count()).select_from(access_tokens)).scalar_one())
    finally:
        db.dispose()


# -- one server --------------------------------------------------------------------------------


@dataclass
class Target:
    """One server of this run: how to start it, how to call it, and what was measured."""

    spec: ServerSpec
    port: int
    env: dict[str, str]
    cwd: Path
    log: Path
    body: str
    authorization: str
    config: Path | None  # trustanchor's configuration file
    result: ServerResult
    grant: str = "client_credentials"
    codes: TrustanchorCodes | NodeCodes | None = None  # transfer codes: who mints them
    expected_rps: float = FIRST_RATE_GUESS
    token_info: dict[str, Any] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    database_pids: Callable[[], list[int]] | None = None  # its PostgreSQL backends
    wal_syncs: Callable[[], int] | None = None  # PostgreSQL's WAL fsync counter
    ports: list[int] = field(default_factory=list)  # one per process; ports[0] == port

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.procs[0] if self.procs else None

    def log_of(self, index: int) -> Path:
        return self.log if index == 0 else self.log.with_name(f"{self.log.stem}-{index}.log")

    def codes_for(self, seconds: int) -> list[Path]:
        """Mint enough codes for a run of ``seconds`` (the server is idle) into a file per
        process (all in the one database: any process could redeem any of them)."""
        assert self.codes is not None
        count = int(CODE_MARGIN * self.expected_rps * seconds) + 100
        codes = self.codes.mint(count)
        paths = []
        for index in range(len(self.ports)):
            path = self.log.with_suffix(f".{index}.codes")
            share = codes[index :: len(self.ports)]
            path.write_text("\n".join(share) + "\n", encoding="ascii")
            paths.append(path)
        return paths


def plan(
    spec: ServerSpec,
    workdir: Path,
    secret: str,
    grant: str,
    verifier: str,
    challenge: str,
    postgres: Postgres | None = None,
) -> Target:
    ports = [free_port() for _ in range(spec.processes)]
    while len(set(ports)) < len(ports):
        ports = [free_port() for _ in range(spec.processes)]
    port = ports[0]
    if grant == "transfer_code":
        body = form_prefix(verifier)
    else:
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE})
    basic = f"{urllib.parse.quote_plus(CLIENT_ID)}:{urllib.parse.quote_plus(secret)}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(workdir)),
        "LANG": "C.UTF-8",
    }
    config: Path | None = None
    codes: TrustanchorCodes | NodeCodes | None = None
    database_pids: Callable[[], list[int]] | None = None
    wal_syncs: Callable[[], int] | None = postgres.wal_syncs if postgres is not None else None
    if spec.trustanchor:
        database_url = None
        if postgres is not None:
            database_url = postgres.new_database(spec.pg_settings)
            database_pids = partial(postgres.backend_pids, database_url)
            if spec.pg_settings:
                seen = postgres.session_settings(database_url, [n for n, _ in spec.pg_settings])
                print(f"  {spec.label}: session settings {seen}", file=sys.stderr)
        elif spec.pg_settings:
            raise BenchError(f"{spec.label}: pg.* settings need --postgres")
        config = prepare_trustanchor(workdir / spec.key, port, secret, grant, database_url)
        env["TRUSTANCHOR_CONFIG"] = str(config)
        env.update(spec.env)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cwd = REPO_ROOT
        if grant == "transfer_code":
            codes = TrustanchorCodes(config, CLIENT_ID, challenge)
    else:
        env.update(
            NODE_ENV="production",
            BENCH_PORT=str(port),
            BENCH_CLIENT_ID=CLIENT_ID,
            BENCH_CLIENT_SECRET=secret,
            BENCH_SCOPE=SCOPE,
            BENCH_RESOURCE=RESOURCE,
            BENCH_TOKEN_TTL=str(TOKEN_TTL),
        )
        if grant == "transfer_code":
            mint_token = base64.urlsafe_b64encode(os.urandom(18)).decode()
            env.update(
                BENCH_GRANT="transfer_code",
                BENCH_SCOPE=TRANSFER_SCOPE,
                BENCH_REDIRECT_URI=REDIRECT_URI,
                BENCH_CODE_CHALLENGE=challenge,
                BENCH_TRANSFER_DETAIL=json.dumps(TRANSFER_DETAIL),
                BENCH_TRANSFER_TTL=str(TRANSFER_TTL),
                BENCH_MINT_TOKEN=mint_token,
            )
            codes = NodeCodes(port, mint_token)
        cwd = PEER_DIR
    return Target(
        spec=spec,
        port=port,
        env=env,
        cwd=cwd,
        log=workdir / f"{spec.key}.log",
        body=body,
        authorization="Basic " + base64.b64encode(basic.encode()).decode(),
        config=config,
        result=ServerResult(spec),
        grant=grant,
        codes=codes,
        database_pids=database_pids,
        wal_syncs=wal_syncs,
        ports=ports,
    )


def start(target: Target, stack: ExitStack) -> None:
    """Start every process of ``target`` (one after the other: each runs the start-up's
    migrations and declarations on the one database), then one token from each."""
    for index, port in enumerate(target.ports):
        print(f"  {target.spec.label}: starting on {HOST}:{port}", file=sys.stderr, flush=True)
        proc = stack.enter_context(
            running(
                target.spec.command(port), env=target.env, cwd=target.cwd, log=target.log_of(index)
            )
        )
        target.procs.append(proc)
        wait_until_up(proc, port, target.log_of(index))
    for port in target.ports:
        body = target.body
        if target.codes is not None:
            body += target.codes.mint(1)[0]
        target.token_info = sanity_check(port, body, target.authorization, target.grant)
        target.result.issued_requests += 1


class AuditLag:
    """How far the signed audit checkpoint falls behind issuance while a run goes on (issue 13:
    at most 1 s). Every ``interval`` seconds it reads the newest leaf id and the latest
    checkpoint's size from the server's database; a checkpoint of size S is behind by the time
    since the first sample that saw more than S leaves (resolution: ``interval``)."""

    def __init__(self, config: Path, interval: float = 0.1) -> None:
        from sqlalchemy import func, select

        from trustanchor.config import load_settings
        from trustanchor.storage.database import Database
        from trustanchor.storage.tables import audit_checkpoints, audit_leaves

        self._db = Database(load_settings(config, environ={}).service.database_url)
        self._leaves = select(func.coalesce(func.max(audit_leaves.c.id), 0))
        self._size = select(func.coalesce(func.max(audit_checkpoints.c.size), 0))
        self._interval = interval
        self._stop = threading.Event()
        self._seen: list[tuple[float, int]] = []  # (time, leaves) in time order
        self.worst = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> AuditLag:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._db.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._db.reader() as conn:
                leaves = int(conn.execute(self._leaves).scalar_one())
                size = int(conn.execute(self._size).scalar_one())
            now = time.monotonic()
            self._seen.append((now, leaves))
            if size >= leaves:
                continue
            first = next(t for t, count in self._seen if count > size)
            self.worst = max(self.worst, now - first)


def load(target: Target, seconds: int, connections: int, label: str) -> RunResult:
    for index, proc in enumerate(target.procs):
        if proc.poll() is not None:
            raise BenchError(f"{target.spec.label} has exited:\n{tail(target.log_of(index))}")
    codes_files = target.codes_for(seconds) if target.codes is not None else None
    with ExitStack() as lag_stack:
        lag = lag_stack.enter_context(AuditLag(target.config)) if target.config else None
        run = run_wrk(
            [proc.pid for proc in target.procs],
            target.ports,
            seconds=seconds,
            connections=connections,
            body=target.body,
            authorization=target.authorization,
            codes_files=codes_files,
            database_pids=target.database_pids,
            wal_syncs=target.wal_syncs,
        )
    if lag is not None:
        run.audit_lag_ms = lag.worst * 1000
    if codes_files is not None:
        minted = sum(len(path.read_text(encoding="ascii").split()) for path in codes_files)
        if run.codes_taken > minted:
            raise BenchError(
                f"{target.spec.label} took {run.codes_taken} codes, {minted} were minted: "
                "raise CODE_MARGIN in bench/token_endpoint.py"
            )
        target.expected_rps = max(run.rps, 100.0)
    target.result.issued_requests += run.requests
    target.result.threads = max(
        target.result.threads, sum(thread_count(proc.pid) for proc in target.procs)
    )
    print(
        f"  {label:>7} {target.spec.label}: {run.rps:6.0f} req/s  p50 {run.p50_us / 1000:6.2f} ms  "
        f"p99 {run.p99_us / 1000:6.2f} ms  errors {sum(run.errors.values())}  "
        f"server CPU {run.server_cpu:4.0%}  "
        + (
            "(" + " + ".join(f"{cpu:.0%}" for cpu in run.process_cpu) + ")  "
            if len(run.process_cpu) > 1
            else ""
        )
        + (f"database CPU {run.database_cpu:4.0%}  " if target.database_pids else "")
        + (
            f"WAL fsyncs/req {run.wal_syncs_per_request:4.2f}  "
            if run.wal_syncs is not None
            else ""
        )
        + (f"audit lag {run.audit_lag_ms:4.0f} ms  " if run.audit_lag_ms is not None else "")
        + f"core {SERVER_CPU} busy {run.core_busy.get(SERVER_CPU, 0):4.0%}  "
        f"core {LOADGEN_CPU} busy {run.core_busy.get(LOADGEN_CPU, 0):4.0%}",
        file=sys.stderr,
        flush=True,
    )
    return run


def finish(target: Target) -> None:
    """Peak memory while the server still runs; then (after it stopped) the recorded rows."""
    total = largest = 0
    for index, proc in enumerate(target.procs):
        if proc.poll() is not None:
            raise BenchError(
                f"{target.spec.label} exited during the run:\n{tail(target.log_of(index))}"
            )
        each_total, each_largest = peak_rss_kib(proc.pid)
        total, largest = total + each_total, max(largest, each_largest)
    target.result.peak_rss_kib, target.result.largest_rss_kib = total, largest


def measure(targets: Sequence[Target], args: argparse.Namespace) -> None:
    """Sequential: each server alone, warm-up then its runs. Interleaved (default): all servers
    started (idle ones cost nothing), each warmed up, then run 1 of every server, run 2 of every
    server, ... so a slow spell on this shared machine hits every server, not just one."""
    if args.sequential:
        for target in targets:
            with ExitStack() as stack:
                start(target, stack)
                load(target, args.warmup, args.connections, "warm-up")
                for index in range(args.runs):
                    run = load(target, args.duration, args.connections, f"run {index + 1}")
                    target.result.runs.append(run)
                finish(target)
    else:
        with ExitStack() as stack:
            for target in targets:
                start(target, stack)
            for target in targets:
                load(target, args.warmup, args.connections, "warm-up")
            for index in range(args.runs):
                shift = index % len(targets)  # rotate who goes first
                for target in [*targets[shift:], *targets[:shift]]:
                    run = load(target, args.duration, args.connections, f"run {index + 1}")
                    target.result.runs.append(run)
            if args.rate_fraction:
                open_loop(targets, args)
            for target in targets:
                finish(target)
    for target in targets:
        if target.config is not None:
            target.result.recorded_tokens = count_recorded_tokens(target.config)


def open_loop(targets: Sequence[Target], args: argparse.Namespace) -> None:
    """Each server in turn under the same fixed request rate: ``args.rate_fraction`` of
    node-oidc-provider's median peak rate of this run (bench/open_loop.py, on the load core)."""
    node = next((t for t in targets if t.spec.key == "node"), None)
    if node is None or not node.result.runs or args.grant != "client_credentials":
        print("  open loop: needs the node row and client_credentials; skipped", file=sys.stderr)
        return
    rate = args.rate_fraction * node.result.median("rps")
    for target in targets:
        script = str(Path(__file__).with_name("open_loop.py"))
        command = [
            "taskset", "-c", LOADGEN_CPU, sys.executable, script,
            "--port", str(target.ports[0]), "--rate", f"{rate:.1f}",
            "--seconds", str(args.duration),
            "--body", target.body, "--authorization", target.authorization,
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.duration * 4 + 60
        )
        if done.returncode != 0:
            raise BenchError(f"open loop against {target.spec.label} failed:\n{done.stderr}")
        target.result.open_loop = json.loads(done.stdout)
        answer = target.result.open_loop
        print(
            f"  open loop {target.spec.label}: offered {rate:.0f} req/s, answered "
            f"{answer['achieved_rate']:.0f} req/s, p50 {answer['p50_us'] / 1000:.2f} ms, "
            f"p99 {answer['p99_us'] / 1000:.2f} ms, statuses {answer['statuses']}",
            file=sys.stderr,
            flush=True,
        )


def open_loop_table(results: Sequence[ServerResult], fraction: float) -> str | None:
    rows = [r for r in results if r.open_loop is not None]
    if not rows:
        return None
    node = next((r for r in rows if r.spec.key == "node"), None)
    node_p99 = node.open_loop["p99_us"] if node and node.open_loop else None
    lines = [
        f"Open loop at {fraction:.0%} of node-oidc-provider's median peak rate "
        "(latency from each request's scheduled time; bench/open_loop.py):",
        "",
        "| server | offered req/s | answered req/s | p50 ms | p90 ms | p99 ms | max ms "
        "| p99 vs node-oidc-provider | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        o = r.open_loop
        assert o is not None
        ratio = f"{o['p99_us'] / node_p99:.2f}×" if node_p99 else "—"
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(o["statuses"].items()))
        lines.append(
            f"| {r.spec.label} | {o['offered_rate']:.0f} | {o['achieved_rate']:.0f} "
            f"| {o['p50_us'] / 1000:.2f} | {o['p90_us'] / 1000:.2f} | {o['p99_us'] / 1000:.2f} "
            f"| {o['max_us'] / 1000:.2f} | {ratio} | {statuses} |"
        )
    return "\n".join(lines)


# -- report ------------------------------------------------------------------------------------


def table(results: Sequence[ServerResult], *, database_cpu: bool = False) -> str:
    """``database_cpu`` (PostgreSQL): two more columns, the backends' CPU share and per request."""
    node = next((r for r in results if r.spec.key == "node"), None)
    node_rps = node.median("rps") if node else None
    db_head, db_rule = (
        ("database CPU | database CPU µs/req | WAL fsyncs/req | ", "---:|---:|---:|")
        if database_cpu
        else ("", "")
    )
    lines = [
        "| server | req/s (median) | runs (req/s) | p50 ms | p99 ms | peak RSS MiB (all / largest) "
        f"| vs node-oidc-provider | server CPU | CPU µs/req | {db_head}core {SERVER_CPU} busy "
        f"| core {LOADGEN_CPU} busy | errors |",
        f"|---|---:|---|---:|---:|---:|---:|---:|---:|{db_rule}---:|---:|---:|",
    ]
    for r in results:
        rps = r.median("rps")
        ratio = f"{rps / node_rps:.2f}×" if node_rps else "—"
        runs = " / ".join(f"{run.rps:.0f}" for run in r.runs)
        busy = {
            cpu: statistics.median(run.core_busy.get(cpu, 0.0) for run in r.runs)
            for cpu in (SERVER_CPU, LOADGEN_CPU)
        }
        db_cells = ""
        if database_cpu:
            db_cells = (
                f"{r.median('database_cpu'):.0%} | {r.median('database_cpu_us_per_request'):.0f} | "
                f"{r.median('wal_syncs_per_request'):.2f} | "
                if r.spec.trustanchor
                else f"— | — | {r.median('wal_syncs_per_request'):.2f} | "
            )
        lines.append(
            f"| {r.spec.label} | {rps:,.0f} | {runs} | {r.median('p50_us') / 1000:.2f} "
            f"| {r.median('p99_us') / 1000:.2f} "
            f"| {r.peak_rss_kib / 1024:.0f} / {r.largest_rss_kib / 1024:.0f} | {ratio} "
            f"| {r.median('server_cpu'):.0%} | {r.median('cpu_us_per_request'):.0f} "
            f"| {db_cells}{busy[SERVER_CPU]:.0%} | {busy[LOADGEN_CPU]:.0%} "
            f"| {r.errors} |"
        )
    return "\n".join(lines)


def _grant_notes(grant: str, database: str) -> list[str]:
    """``database``: how trustanchor stores, e.g. "SQLite (WAL, synchronous=FULL)"."""
    auth = (
        "client authentication: client_secret_basic on both sides (demo-mode method in "
        "trustanchor, refused in production)"
    )
    if grant == "transfer_code":
        return [
            f"{auth}; grant: authorization_code with PKCE S256, each request redeeming one "
            "single-use code of a value_transfer grant minted before the run (all codes of a "
            f"server share one grant), scope {TRANSFER_SCOPE}; answer: ES256 JWT access token "
            f"(typ at+jwt, audience {RESOURCE}, {TRANSFER_TTL} s, the approved "
            "authorization_details; trustanchor adds anchor_set) plus an ES256 ID token, no "
            "refresh token; no DPoP on either side (a proof per request would have to be made "
            "during the run)",
            "trustanchor consumes the code (conditional UPDATE), reads the grant, records the "
            f"access token and two audit leaves (access and ID token) in {database} before "
            "answering; node-oidc-provider keeps codes in a Map "
            "adapter (consumed codes stay, marked, to detect reuse), stores nothing for JWT "
            "access tokens; its RSS includes every minted code",
        ]
    return [
        f"{auth}; grant: client_credentials, scope {SCOPE}, audience {RESOURCE}; answer: "
        "ES256 JWT access token (typ at+jwt)",
        f"trustanchor records every issued token in {database} before answering; "
        "node-oidc-provider's in-memory adapter stores nothing for JWT access tokens",
    ]


def _peer_versions() -> str:
    if shutil.which("node") is None:
        return "no Node.js"
    node_version = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()
    package = PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not package.is_file():
        return f"Node.js {node_version}, oidc-provider not installed"
    return f"Node.js {node_version}, oidc-provider {json.loads(package.read_text())['version']}"


def serving_model_note(results: Sequence[ServerResult], postgres: bool = False) -> str | None:
    """``trustanchor serve`` (ASGI + serving.py) next to granian's WSGI interface with one
    blocking thread. ``serve`` now runs several request threads (16 on SQLite with group
    commit, 4 on PostgreSQL), so the ratio is not the serving model alone; the note says so."""
    del postgres  # both databases: serve runs more threads than the granian row
    by_key = {r.spec.key: r for r in results}
    asgi, wsgi = by_key.get("serve"), by_key.get("granian")
    if asgi is None or wsgi is None or not asgi.runs or not wsgi.runs:
        return None
    per_run = " / ".join(f"{a.rps / w.rps:.2f}" for a, w in zip(asgi.runs, wsgi.runs, strict=True))
    return (
        f"serving model: trustanchor serve (ASGI) / granian WSGI = "
        f"{asgi.median('rps') / wsgi.median('rps'):.3f}× req/s (run by run: {per_run}), "
        f"{asgi.median('cpu_us_per_request') / wsgi.median('cpu_us_per_request'):.3f}× "
        "CPU µs/req (serve runs more request threads than the granian row's one, and on SQLite "
        "group commit, so this is not the serving model alone)"
    )


def environment_notes(args: argparse.Namespace, database_note: str | None) -> list[str]:
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, timeout=10
    ).stdout.splitlines()
    return [
        f"trustanchor source: {git_state()}",
        f"date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        f"Python {platform.python_version()}, {_peer_versions()}, "
        f"{wrk_version[0] if wrk_version else 'wrk'}",
        f"server on CPU {SERVER_CPU}, wrk on CPU {LOADGEN_CPU} (taskset); wrk 1 thread, "
        f"{args.connections} connections; warm-up {args.warmup} s, "
        f"{args.runs} runs × {args.duration} s per server, "
        + ("one server after the other" if args.sequential else "runs interleaved across servers")
        + "; p50/p99 are medians over the runs",
        *_grant_notes(
            args.grant,
            "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=FULL)",
        ),
        *([database_note] if database_note else []),
        "server CPU: CPU time of the server's process tree per second of wall time (100 % = one "
        "core); CPU µs/req: that CPU time per answered request; core busy: all processes on "
        f"that CPU, from /proc/stat (core {SERVER_CPU} minus server CPU is mostly kernel network "
        "work plus anything else running on this shared machine; "
        f"core {LOADGEN_CPU} near 100 % would mean wrk is the limit)",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated, from {', '.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--grant",
        choices=("client_credentials", "transfer_code"),
        default="client_credentials",
        help="client_credentials (default), or transfer_code: redeem authorization codes of a "
        "value_transfer grant (authorization_details, PKCE, ID token)",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5, help="seconds (default 5)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="run each server alone, one after the other (default: interleave the runs)",
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_URL,
        default=None,
        metavar="URL",
        help="run trustanchor on PostgreSQL instead of SQLite (URL default: "
        f"{POSTGRES_URL}; host {HOST} only): each trustanchor server gets a fresh schema "
        "there, dropped at the end",
    )
    parser.add_argument(
        "--workers",
        default="",
        metavar="N,N,...",
        help="add a row of `trustanchor serve --workers N` for each N (e.g. 1,2,4)",
    )
    parser.add_argument(
        "--two-processes",
        action="store_true",
        help="add a row of two separate `trustanchor serve` processes (1 worker each) on one "
        "database, each loaded by its own wrk with half the connections (req/s summed)",
    )
    parser.add_argument(
        "--serve-variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="add a row of `trustanchor serve` (repeatable); keys: workers=N, processes=N, "
        "pg.<setting>=<value> (PostgreSQL session setting, e.g. pg.commit_delay=100), "
        "TRUSTANCHOR_<SECTION>_<KEY>=<value> (environment setting)",
    )
    parser.add_argument(
        "--server-cpus",
        default=SERVER_CPU,
        metavar="LIST",
        help=f"taskset CPU list for the servers (default {SERVER_CPU}; wrk stays on "
        f"{LOADGEN_CPU}): e.g. 0,1 to let several workers use both cores",
    )
    parser.add_argument(
        "--rate-fraction",
        type=float,
        default=0.0,
        help="after the runs, load every server open-loop at this fraction of "
        "node-oidc-provider's median peak rate for --duration seconds and report its latency "
        "(client_credentials only; e.g. 0.8)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if not all(part in ("0", "1") for part in args.server_cpus.split(",")):
        parser.error("--server-cpus: a comma-separated list of 0 and 1")
    SERVER_CPUS["list"] = args.server_cpus
    if not (1 <= args.warmup <= 60 and 1 <= args.duration <= 60 and 1 <= args.runs <= 9):
        parser.error("warm-up and duration are 1..60 s, runs 1..9 (the whole run stays short)")
    if not 1 <= args.connections <= 1024:
        parser.error("connections must be 1..1024")
    keys = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SERVERS]
    if unknown:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")
    variant_texts = [
        f"serve-w{n.strip()}:workers={n.strip()}" for n in args.workers.split(",") if n.strip()
    ]
    if args.two_processes:
        variant_texts.append("serve-2p:processes=2")
    variant_texts += args.serve_variant
    try:
        variants = [serve_variant(text) for text in variant_texts]
    except ValueError as exc:
        parser.error(f"--workers / --serve-variant: {exc}")
    names = keys + [v.key for v in variants]
    if len(set(names)) != len(names):
        parser.error(f"row names must differ: {names}")
    try:
        specs = [
            _for_database(spec, args.postgres)
            for spec in preflight([*(SERVERS[k] for k in keys), *variants])
        ]
        postgres = Postgres(args.postgres) if args.postgres else None
        workdir = Path(tempfile.mkdtemp(prefix="trustanchor-bench-"))
        secret = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        try:
            print(f"working directory {workdir}", file=sys.stderr)
            verifier, challenge = pkce_pair()
            if postgres is not None and not args.sequential:
                postgres.check_connections(specs)
            targets = [
                plan(spec, workdir, secret, args.grant, verifier, challenge, postgres)
                for spec in specs
            ]
            measure(targets, args)
            results = [target.result for target in targets]
            tokens = {target.spec.label: target.token_info for target in targets}
            if postgres is not None:
                database_note = postgres.note()
            else:
                config = next(t.config for t in targets if t.config is not None)
                database_note = sqlite_note(config)
        finally:
            if args.keep:
                print(f"kept {workdir}", file=sys.stderr)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
            if postgres is not None:
                postgres.close()
    except BenchError as exc:
        print(f"token_endpoint benchmark: {exc}", file=sys.stderr)
        return 2
    print()
    print(table(results, database_cpu=postgres is not None))
    latency = open_loop_table(results, args.rate_fraction)
    if latency is not None:
        print()
        print(latency)
    print()
    for note in environment_notes(args, database_note):
        print(f"- {note}")
    model = serving_model_note(results, postgres is not None)
    if model is not None:
        print(f"- {model}")
    if SERVER_CPUS["list"] != SERVER_CPU:
        print(
            f"- servers ran on CPUs {SERVER_CPUS['list']} (taskset), not on CPU {SERVER_CPU} alone"
        )
    for r in results:
        if r.errors:
            kinds: dict[str, int] = {}
            for run in r.runs:
                for kind, number in run.errors.items():
                    kinds[kind] = kinds.get(kind, 0) + number
            print(
                f"- {r.spec.label}: errors over the measured runs by kind (wrk): "
                + ", ".join(f"{kind} {number}" for kind, number in kinds.items() if number)
            )
        if r.spec.processes > 1:
            per_process = [
                statistics.median(run.process_cpu[i] for run in r.runs)
                for i in range(r.spec.processes)
            ]
            print(
                f"- {r.spec.label}: {r.spec.processes} `trustanchor serve` processes on one "
                "database, one wrk each with its share of the connections; req/s and errors "
                "summed, p50 the request-weighted mean of their p50, p99 the largest p99; "
                "server CPU per process (median): "
                + " / ".join(f"{cpu:.0%}" for cpu in per_process)
            )
        if r.spec.env or r.spec.pg_settings:
            print(
                f"- {r.spec.label}: environment {dict(r.spec.env)}, PostgreSQL session "
                f"settings {dict(r.spec.pg_settings)} (libpq options on the service's URL)"
            )
    print(
        "- most OS threads in the server's process tree, seen right after a run: "
        + ", ".join(f"{r.spec.label}: {r.threads}" for r in results)
    )
    for r in results:
        if r.recorded_tokens is not None:
            print(
                f"- {r.spec.label}: {r.recorded_tokens:,} access_tokens rows for "
                f"{r.issued_requests:,} requests sent"
            )
        lags = [run.audit_lag_ms for run in r.runs if run.audit_lag_ms is not None]
        if lags:
            print(
                f"- {r.spec.label}: signed audit checkpoint behind issuance, most per run "
                f"(sampled every 0.1 s): {' / '.join(f'{lag:.0f} ms' for lag in lags)}"
            )
    for label, info in tokens.items():
        print(
            f"- {label}: token header {json.dumps(info['header'], sort_keys=True)}, "
            f"claims {', '.join(info['claims'])}, {info['bytes']} bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
