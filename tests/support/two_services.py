"""Two ``trustanchor serve`` processes on one database, as two instances of the service behind a
load balancer would run: one configuration file (one issuer, one key directory, one database),
each process started with its own ``--port``.

:func:`two_services` writes the configuration (config/test.toml, the test's clients and anchors),
starts process A, waits until it serves (its start-up migrates and declares), then starts
process B on the same file, and always kills both process groups on the way out. The test reads
the database through a :class:`~support.server.RunningServer` built in the test process over the
same configuration (its ``issuer`` is the one both processes answer for), never through either
process.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import templates
from support.server import RunningServer, free_port
from support.service_process import (
    ServiceProcess,
    _start,
    _toml_value,
    _wait_until_serving,
    stop,
    write_config,
)
from trustanchor.config import load_settings
from trustanchor.services.container import build_services
from trustanchor.storage.database import Database


@dataclass
class ServicePair:
    """``server``: the shared issuer and a handle on the database for the test's own reads;
    ``bases``: each process's own base URL (A's is the issuer's)."""

    server: RunningServer
    processes: tuple[ServiceProcess, ServiceProcess]

    @property
    def bases(self) -> tuple[str, str]:
        return (self.processes[0].issuer, self.processes[1].issuer)

    def base(self, racer: int) -> str:
        """Half the racers on each process: even ones on A, odd ones on B."""
        return self.bases[racer % 2]

    def on(self, racer: int, url: str) -> str:
        """``url`` (under the issuer) sent to the process of ``racer`` instead."""
        issuer = self.server.issuer
        if not url.startswith(issuer + "/"):
            raise AssertionError(f"{url} is not under the issuer {issuer}")
        return self.base(racer) + url.removeprefix(issuer)


def _anchors_toml(anchors: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for anchor in anchors:
        lines.append("[[anchors]]")
        lines.extend(f'"{key}" = {_toml_value(value)}' for key, value in anchor.items())
    return "\n".join(lines) + "\n" if lines else ""


@contextmanager
def two_services(
    directory: Path,
    *,
    database_url: str,
    clients: Sequence[Mapping[str, Any]],
    anchors: Sequence[Mapping[str, Any]] = (),
    start_seconds: float = 60,
) -> Iterator[ServicePair]:
    templates.migrated(database_url)  # no-op unless the database is empty
    port_a = free_port()
    port_b = free_port()
    while port_b == port_a:
        port_b = free_port()
    config_path = write_config(
        directory / "config",
        port=port_a,
        database_url=database_url,
        keys_dir=directory / "keys",
        clients=clients,
    )
    with config_path.open("a", encoding="utf-8") as fh:
        fh.write(_anchors_toml(anchors))
    declared = tomllib.loads(config_path.read_text(encoding="utf-8"))
    assert declared.get("anchors", []) == [dict(a) for a in anchors], "TOML round trip"
    with ExitStack() as stack:
        a = _start(config_path, port_a, 1, directory / "service-a.log")
        stack.callback(stop, a)
        if not _wait_until_serving(a, 1, start_seconds):
            raise AssertionError(f"process A exited at start:\n{a.tail()}")
        # B answers for the configured issuer (A's URL) but listens on its own port.
        b = _start(config_path, port_b, 1, directory / "service-b.log")
        stack.callback(stop, b)
        if not _wait_until_serving(b, 1, start_seconds):
            raise AssertionError(f"process B exited at start:\n{b.tail()}")
        settings = load_settings(config_path, environ={})
        db = Database(settings.service.database_url)
        stack.callback(db.dispose)
        server = RunningServer(settings, build_services(settings, db=db))
        yield ServicePair(server, (a, b))
