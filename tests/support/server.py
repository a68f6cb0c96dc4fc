"""A real trustanchor HTTP server for flow tests: the app on werkzeug's threaded server, bound to
127.0.0.1 on a free port, with a fresh database, key directory and declarations.

A fresh database starts as a copy of the session's migrated template (support/templates.py)
instead of being migrated again for every test; ``initialise`` then runs as ``trustanchor serve``
runs it (keys, declarations), and its ``upgrade`` finds the schema at head."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from support import templates
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.bootstrap import initialise
from trustanchor.clock import Clock, SystemClock
from trustanchor.config import Settings, load_settings
from trustanchor.services.container import Services, build_services
from trustanchor.storage.database import Database
from trustanchor.web.app import create_app

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_settings(
    tmp_path: Path,
    database_url: str,
    *,
    port: int,
    anchors: Sequence[Mapping[str, Any]] = (),
    clients: Sequence[Mapping[str, Any]] = (),
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    sections: dict[str, dict[str, Any]] = {
        "service": {
            "issuer": f"http://127.0.0.1:{port}",
            "database_url": database_url,
            "keys_dir": str(tmp_path / "keys"),
        }
    }
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    settings = load_settings(REPO / "config" / "test.toml", environ={}, overrides=sections)
    return dataclasses.replace(
        settings, anchors=tuple(dict(a) for a in anchors), clients=tuple(dict(c) for c in clients)
    )


@dataclass
class RunningServer:
    settings: Settings
    services: Services

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def url(self, path: str) -> str:
        return self.settings.issuer + path


@contextmanager
def serving(app: Any, port: int) -> Iterator[None]:
    """A WSGI ``app`` on werkzeug's threaded server at 127.0.0.1:``port``, for the block.

    Our own accept loop instead of serve_forever()/shutdown(): shutdown() waits on an event
    without a timeout and was seen to hang a whole test run. On the way out one connection wakes
    the loop from its wait for the next client, so leaving does not wait out ``timeout``."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    server.timeout = 0.1
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.handle_request()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        _wake(port)
        thread.join(timeout=5)
        server.server_close()


def _wake(port: int) -> None:
    """Connect and hang up: the accept loop returns from its wait and sees ``stop``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    except OSError:  # not listening any more: the loop ends on its own timeout
        pass


@contextmanager
def running_server(
    settings: Settings, *, clock: Clock | None = None, fetcher: Fetcher | None = None
) -> Iterator[RunningServer]:
    clock = clock or SystemClock()
    templates.migrated(settings.service.database_url)  # no-op unless the database is empty
    db = Database(settings.service.database_url)
    initialise(settings, db, now=clock.now(), generate_keys=True)
    services = build_services(settings, clock=clock, fetcher=fetcher, db=db)
    app = create_app(services=services)
    port = int(settings.issuer.rsplit(":", 1)[1])
    try:
        with serving(app, port):
            yield RunningServer(settings, services)
    finally:
        integrator = app.extensions.get("trustanchor.audit_integrator")
        if integrator is not None:
            integrator.stop()
        db.dispose()


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a pytest test
