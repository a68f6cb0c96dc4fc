"""``trustanchor init`` and ``trustanchor serve``."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import tempfile

import click

from trustanchor.bootstrap import StartupRefused, initialise
from trustanchor.cli.context import CliContext, pass_context
from trustanchor.log_setup import dictconfig
from trustanchor.services.anchor_declarations import DeclarationError

log = logging.getLogger("trustanchor.cli")


def _initialise(ctx: CliContext, *, generate_keys: bool) -> list[str]:
    try:
        return initialise(ctx.settings, ctx.db, now=ctx.clock.now(), generate_keys=generate_keys)
    except (StartupRefused, DeclarationError, ValueError) as exc:
        raise click.ClickException(f"{exc}") from exc


@click.command()
@pass_context
def init(ctx: CliContext) -> None:
    """Create secrets (demo/test), a signing key if none, the database schema, and apply the
    anchors, anchor sets and clients declared in the configuration. Safe to run again."""
    for message in _initialise(ctx, generate_keys=True):
        click.echo(message)
    click.echo(f"ready: {ctx.settings.issuer} ({ctx.settings.service.mode} mode)")


@click.command()
@click.option("--host", default=None, help="Listen address (default: service.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: service.port).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default: service.workers)."
)
@click.option(
    "--respawn-failed-workers",
    is_flag=True,
    help="Replace a worker that dies unexpectedly instead of stopping the whole server "
    "(granian still stops if a worker it just replaced dies again within about 5 s).",
)
@pass_context
def serve(
    ctx: CliContext,
    host: str | None,
    port: int | None,
    workers: int | None,
    respawn_failed_workers: bool,
) -> None:
    """Apply migrations and declarations, then serve HTTP with granian (ASGI on uvloop, see
    service.event_loop; per worker, 16
    request threads on SQLite whose write transactions share commits, 4 on PostgreSQL: see
    service.threads and service.group_commit). Outside production
    a missing signing key is generated; in production it must exist already. A worker that dies
    (killed, out of memory) stops the server unless --respawn-failed-workers is given;
    either way its open transactions roll back, so nothing it was issuing is half-done.
    Its log lines, granian's included, go to standard error in logging.format (text, or JSON
    lines) at logging.level; each line written while a request is handled carries the
    request's id, which its answer carries as X-Request-Id."""
    settings = ctx.settings
    address = host or settings.service.host
    listen_port = port or settings.service.port
    _check_listen(address, listen_port)
    for message in _initialise(ctx, generate_keys=not settings.is_production):
        log.info("%s", message)
    ctx.db.dispose()
    if ctx.config_path is not None:
        os.environ["TRUSTANCHOR_CONFIG"] = str(ctx.config_path)
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    event_loop = choose_event_loop(settings.service.event_loop)
    log.info(
        "serving %s on http://%s:%s (%s event loop)",
        settings.issuer,
        address,
        listen_port,
        event_loop,
    )
    # ASGI, not WSGI: granian's WSGI body read blocks a Python thread for as long as a client
    # trickles its body; trustanchor.web.serving reads it in the event loop under a deadline
    # and runs the app in its own pool (serving.threads_per_worker, or service.threads).
    server = Granian(
        "trustanchor.web.asgi:app",
        address=address,
        port=listen_port,
        interface=Interfaces.ASGINL,
        # HTTP/1.1 only: the slow-client bounds are HTTP/1's (granian's header_read_timeout, and
        # serving.py's count of requests waiting for a body, which an HTTP/2 request without
        # Content-Length would escape); a proxy in front speaks HTTP/2 to clients if wanted.
        http=HTTPModes.http1,
        loop=Loops(event_loop),
        workers=workers or settings.service.workers,
        # requests handed to a worker at once, whatever the number of workers (granian's
        # default is its backlog divided among them); serving.py keeps at most
        # limits.waiting_bodies_per_worker of them waiting for a body
        backpressure=settings.limits.requests_per_worker,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=settings.limits.header_read_timeout * 1000
        ),
        log_access=False,
        # one format for granian's main process and workers too (trustanchor.log_setup)
        log_dictconfig=dictconfig(settings.logging.format, settings.logging.level),
        log_level=LogLevels(settings.logging.level),
        respawn_failed_workers=respawn_failed_workers,
    )
    metrics_dir = _metrics_directory() if settings.metrics.token else None
    try:
        server.serve()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def choose_event_loop(setting: str) -> str:
    """The workers' event loop for ``service.event_loop``: ``uvloop`` or ``asyncio`` as set;
    ``auto`` is uvloop when it can be imported (a dependency wherever it builds), else asyncio.
    uvloop's cheaper loop and thread hand-off save about 40 µs of CPU per request
    (bench/README.md, "Event loop"). ``uvloop`` set but missing refuses to start."""
    if setting == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    if setting == "uvloop":
        raise click.ClickException(
            "service.event_loop is uvloop but uvloop is not installed "
            '(pip install uvloop, or set service.event_loop = "auto" or "asyncio")'
        )
    return "asyncio"


def _metrics_directory() -> str:
    """A fresh directory for this run's metrics, in $PROMETHEUS_MULTIPROC_DIR for the workers
    (set before any of them starts, so before they import prometheus_client): each worker
    counts in files of its own there and /metrics adds them up (trustanchor.web.metrics).
    Removed when the server stops, so that a new run never adds an old run's counts."""
    directory = tempfile.mkdtemp(prefix="trustanchor-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _check_listen(address: str, port: int) -> None:
    """Refuse to start, saying what to do, when the address cannot be listened on (granian
    would otherwise fail later with a traceback from its Rust runtime)."""
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise click.ClickException(
            f"cannot listen on {address}: not an address of this machine ({exc.strerror}). "
            "Check service.host or --host."
        ) from exc
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {address}:{port} ({exc.strerror}). Stop what uses that port "
                "(another trustanchor serve?) or choose another with --port or service.port."
            ) from exc
