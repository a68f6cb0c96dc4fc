"""Where one token's CPU goes, in process: the lean ``POST /token`` handler called directly in
one thread (no HTTP, no event loop, no other thread), timed with ``time.thread_time`` so that
waiting on the disk is left out and the kernel's work for this thread is not.

The configuration is the one ``bench/token_endpoint.py`` runs (demo mode, SQLite WAL with
``synchronous=FULL``, client_secret_basic, client credentials, ES256), made the same way; the
audit integrator does not run. ``--synchronous OFF`` takes the fsync out, to see the handler's
own work; ``--profile`` prints the functions with the most CPU time (cProfile timed by thread
CPU time), ``--split`` the time of a few named layers measured around their calls.

    .venv/bin/python bench/token_profile.py --calls 3000
    .venv/bin/python bench/token_profile.py --synchronous OFF --profile 30
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from token_endpoint import CLIENT_ID, SCOPE, prepare_trustanchor  # noqa: E402


def _request(authorization: str, body: bytes, rid: str) -> Any:
    from trustanchor.web.serving import LeanRequest

    return LeanRequest(
        method="POST",
        path="/token",
        query_string=b"",
        headers=[
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", authorization.encode()),
        ],
        body=body,
        client=("127.0.0.1", 40000),
        request_id=rid,
    )


@contextmanager
def _timed(into: dict[str, list[float]], name: str) -> Iterator[None]:
    start = time.thread_time()
    try:
        yield
    finally:
        into.setdefault(name, []).append(time.thread_time() - start)


def _wrap(into: dict[str, list[float]], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with _timed(into, name):
            return fn(*args, **kwargs)

    return wrapped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL", "OFF"], default="FULL")
    parser.add_argument("--profile", type=int, metavar="N", default=0, help="top N functions")
    parser.add_argument("--split", action="store_true", help="time named layers")
    parser.add_argument(
        "--asgi",
        type=int,
        metavar="CLIENTS",
        default=0,
        help="drive the whole ASGI app (serving.py) on uvloop with this many concurrent "
        "clients instead of calling the handler: CPU of the process per token",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="trustanchor-profile-"))
    secret = secrets.token_urlsafe(24)
    config = prepare_trustanchor(workdir / "svc", 18999, secret, "client_credentials")
    os.environ["TRUSTANCHOR_CONFIG"] = str(config)

    from sqlalchemy import event

    from trustanchor.config import load_settings
    from trustanchor.web.app import create_app, security_headers
    from trustanchor.web.token_route import TokenRoute

    settings = load_settings(config, environ=dict(os.environ))  # TRUSTANCHOR_* variants
    flask_app = create_app(settings, audit_integrator=False)
    services = flask_app.extensions["trustanchor"]
    if args.synchronous != "FULL":

        @event.listens_for(services.db.engine, "connect")
        def _sync(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={args.synchronous}")

        services.db.engine.dispose()
        if services.db.group is not None:
            services.db.group.close()
    route = TokenRoute(services, security_headers=security_headers(services), integrator=None)
    basic = f"{urllib.parse.quote_plus(CLIENT_ID)}:{urllib.parse.quote_plus(secret)}"
    authorization = "Basic " + base64.b64encode(basic.encode()).decode()
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPE}).encode()

    layers: dict[str, list[float]] = {}
    if args.split:
        from trustanchor.services import audit_trail
        from trustanchor.services.grants import client_credentials, issuing
        from trustanchor.storage import grants_repo

        signer = services.signer
        signer.access_token = _wrap(layers, "sign access token", signer.access_token)
        auth = services.client_auth
        auth.authenticate = _wrap(layers, "client authentication", auth.authenticate)
        audit_trail_record = audit_trail.record
        issuing.audit_trail.record = _wrap(layers, "audit entry (record)", audit_trail_record)  # type: ignore[attr-defined]
        issuing.grants_repo.record_access_token = _wrap(  # type: ignore[attr-defined]
            layers, "token row INSERT", grants_repo.record_access_token
        )
        group = services.db.group
        if group is not None:
            group._commit = _wrap(layers, "COMMIT", group._commit)  # type: ignore[method-assign]
        client_credentials.access_token = _wrap(  # type: ignore[attr-defined]
            layers, "access_token() (row, audit, sign)", issuing.access_token
        )

    if args.asgi:
        return _asgi(args, services, route, authorization, body)
    for i in range(args.warmup):
        status, _, _ = route(_request(authorization, body, f"w{i}")) or (0, [], b"")
        if status != 200:
            print(f"warm-up request {i} answered {status}", file=sys.stderr)
            return 1
    layers.clear()
    requests = [_request(authorization, body, f"r{i}") for i in range(args.calls)]
    times: list[float] = []
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    if profiler is not None:
        profiler.enable()
    for request in requests:
        start = time.thread_time()
        answer = route(request)
        times.append(time.thread_time() - start)
        assert answer is not None and answer[0] == 200
    if profiler is not None:
        profiler.disable()
    print(
        f"synchronous={args.synchronous}: {args.calls} tokens, thread CPU µs per token: "
        f"median {statistics.median(times) * 1e6:.1f}, mean {statistics.fmean(times) * 1e6:.1f}"
    )
    for name, values in sorted(layers.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"  {name:40s} median {statistics.median(values) * 1e6:7.1f} µs "
            f"mean {statistics.fmean(values) * 1e6:7.1f} µs  ({len(values)} calls)"
        )
    if profiler is not None:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.profile)
    return 0


def _asgi(
    args: argparse.Namespace, services: Any, route: Any, authorization: str, body: bytes
) -> int:
    """The whole ASGI path of ``trustanchor serve`` (WsgiOverAsgi, the lean route on the
    loop's thread, group commit with its committer thread), called by ``args.asgi`` concurrent
    clients on uvloop; granian's own part (HTTP parsing, its Rust threads) is left out."""
    import asyncio

    import uvloop

    from trustanchor.web.serving import BodyDeadline, WsgiOverAsgi

    limits = services.settings.limits
    app = WsgiOverAsgi(
        lambda environ, start: [],
        threads=16,
        deadline=BodyDeadline(
            initial=limits.body_read_timeout,
            maximum=limits.body_read_timeout_max,
            min_rate=limits.min_body_rate,
            max_bytes=limits.max_body_bytes,
        ),
        lean_routes={("POST", "/token"): route},
        randomness=services.randomness,
        lean_on_loop=services.settings.service.token_on_loop,
    )
    if services.db.group is not None:
        services.db.group.in_flight = lambda: app.in_flight
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", authorization.encode()),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/token",
        "raw_path": b"/token",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
        "http_version": "1.1",
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def client(count: int) -> None:
        for _ in range(count):
            await app(scope, receive, send)

    async def run(total: int) -> float:
        per = total // args.asgi
        started = time.perf_counter()
        await asyncio.gather(*(client(per) for _ in range(args.asgi)))
        return time.perf_counter() - started

    loop = uvloop.new_event_loop()
    loop.run_until_complete(run(args.warmup))
    group = services.db.group
    batches0 = group.batches if group is not None else 0
    members0 = group.committed_members if group is not None else 0
    statuses.clear()
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    cpu0, main0 = time.process_time(), time.thread_time()
    if profiler is not None:
        profiler.enable()
    wall = loop.run_until_complete(run(args.calls))
    if profiler is not None:
        profiler.disable()
    cpu, main = time.process_time() - cpu0, time.thread_time() - main0
    done = len(statuses)
    assert set(statuses) == {200}, set(statuses)
    batches = (group.batches - batches0) if group is not None else 0
    members = (group.committed_members - members0) if group is not None else 0
    print(
        f"ASGI, {args.asgi} clients, synchronous={args.synchronous}, "
        f"on loop={services.settings.service.token_on_loop}: {done} tokens in {wall:.2f} s "
        f"({done / wall:,.0f}/s); CPU µs per token: process {cpu / done * 1e6:.1f}, "
        f"loop thread {main / done * 1e6:.1f}; batches {batches} "
        f"(avg {members / batches if batches else 0:.1f} tokens)"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
