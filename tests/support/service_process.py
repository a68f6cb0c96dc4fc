"""The real service as operators run it: ``trustanchor serve`` (granian, several worker processes)
in a process group of its own, with a configuration file written for the test.

- :func:`write_config` writes a settings file (read over the packaged defaults):
  ``config/test.toml`` plus the test's overrides and client declarations;
- :func:`running_service` starts the process tree, waits until every worker has started and the
  service answers, and always kills the whole process group on the way out;
- :class:`ServiceProcess` reads granian's log to know each worker's index and PID, the only way to
  tell which worker replaced which (granian names them ``worker-N``);
- :func:`pg_ports_by_pid` maps a process to the local ports of its TCP connections to
  PostgreSQL, so a PostgreSQL backend (``pg_stat_activity.client_port``) can be traced to the
  worker that owns it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from support import templates
from support.server import REPO, free_port

_SPAWNED = re.compile(r"Spawning worker-(\d+) with PID: (\d+)")
_STARTED = re.compile(r"Started worker-(\d+)")
_PORT_TAKEN = "Address already in use"


# --- configuration ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    """A TOML value. JSON string escapes are TOML basic-string escapes, so strings and keys are
    written with ``json.dumps``; tables inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _toml(sections: Mapping[str, Mapping[str, Any]], clients: Sequence[Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items())
    for client in clients:
        lines.append("[[clients]]")
        lines.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in client.items())
    return "\n".join(lines) + "\n"


def write_config(
    directory: Path,
    *,
    port: int,
    database_url: str,
    keys_dir: Path,
    clients: Sequence[Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """``directory/service.toml``: the test settings of config/test.toml, this issuer,
    database and key directory, the overrides and the clients."""
    directory.mkdir(parents=True, exist_ok=True)
    with (REPO / "config" / "test.toml").open("rb") as fh:
        sections: dict[str, dict[str, Any]] = tomllib.load(fh)
    sections.setdefault("service", {}).update(
        issuer=f"http://127.0.0.1:{port}", database_url=database_url, keys_dir=str(keys_dir)
    )
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    text = _toml(sections, clients)
    parsed = tomllib.loads(text)  # what we wrote is what we meant
    assert parsed == {**sections, "clients": [dict(c) for c in clients]}, "TOML round trip"
    path = directory / "service.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- the process tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    """A granian worker: ``idx`` is granian's ``worker-N``; ``started`` once it serves."""

    idx: int
    pid: int
    started: bool


@dataclass
class ServiceProcess:
    process: subprocess.Popen[bytes]
    issuer: str
    config_path: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def workers(self) -> dict[int, Worker]:
        """Each worker index's latest process, from granian's log: ``Spawning worker-N with
        PID: P`` names a new process, ``Started worker-N`` after it says it serves."""
        current: dict[int, Worker] = {}
        for line in self.log().splitlines():
            if spawned := _SPAWNED.search(line):
                idx, pid = int(spawned.group(1)), int(spawned.group(2))
                current[idx] = Worker(idx, pid, started=False)
            elif (started := _STARTED.search(line)) and int(started.group(1)) in current:
                worker = current[int(started.group(1))]
                current[worker.idx] = Worker(worker.idx, worker.pid, started=True)
        return current

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def url(self, path: str) -> str:
        return self.issuer + path

    def tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]


def _start(config_path: Path, port: int, workers: int, log_path: Path) -> ServiceProcess:
    command = [
        sys.executable,
        "-m",
        "trustanchor",
        "--config",
        str(config_path),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--respawn-failed-workers",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TRUSTANCHOR_CONFIG", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the teardown kills every worker
        )
    return ServiceProcess(process, f"http://127.0.0.1:{port}", config_path, log_path)


def _wait_until_serving(service: ServiceProcess, workers: int, seconds: float) -> bool:
    """True once every worker started and /jwks answers; False if the process exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not service.running:
            return False
        ready = [w for w in service.workers().values() if w.started]
        if len(ready) == workers:
            try:
                if requests.get(service.url("/jwks"), timeout=2).status_code == 200:
                    return True
            except requests.RequestException:
                pass
        time.sleep(0.05)
    raise AssertionError(
        f"the service did not start in {seconds} s (or granian's log no longer says 'Spawning "
        f"worker-N with PID: P' and 'Started worker-N'):\n{service.tail()}"
    )


def stop(service: ServiceProcess) -> None:
    """SIGKILL the whole process group (granian's main process and every worker)."""
    with suppress(ProcessLookupError):
        os.killpg(service.process.pid, signal.SIGKILL)
    service.process.wait(timeout=30)
    # Workers are reaped by init once their parent is gone; wait until none is left.
    deadline = time.monotonic() + 10
    pids = [w.pid for w in service.workers().values()]
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    try:  # a zombie is dead for our purpose
        return status.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@contextmanager
def running_service(
    directory: Path,
    *,
    database_url: str,
    clients: Sequence[Mapping[str, Any]],
    workers: int,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    start_seconds: float = 60,
) -> Iterator[ServiceProcess]:
    """``trustanchor serve`` on a free port with ``workers`` workers that granian respawns when
    they die. A port taken between choosing and binding it is retried on another one. An empty
    database starts as a copy of the session's migrated template (support/templates.py)."""
    templates.migrated(database_url)  # no-op unless the database is empty
    keys_dir = directory / "keys"
    for attempt in range(3):
        port = free_port()
        config_path = write_config(
            directory / "config",
            port=port,
            database_url=database_url,
            keys_dir=keys_dir,
            clients=clients,
            overrides=overrides,
        )
        service = _start(config_path, port, workers, directory / f"service-{attempt}.log")
        try:
            if _wait_until_serving(service, workers, start_seconds):
                break
        except BaseException:
            stop(service)
            raise
        stop(service)
        if _PORT_TAKEN not in service.log():
            raise AssertionError(f"the service exited at start:\n{service.tail()}")
    else:
        raise AssertionError("no free port could be bound three times in a row")
    try:
        yield service
    finally:
        stop(service)


# --- which worker owns a PostgreSQL backend -----------------------------------------------------


def _tcp_sockets(remote_port: int) -> dict[int, int]:
    """socket inode → local port, for every TCP connection to ``remote_port`` (IPv4 and 6)."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if int(remote.rsplit(":", 1)[1], 16) == remote_port and inode:
                found[inode] = int(local.rsplit(":", 1)[1], 16)
    return found


def pg_ports_by_pid(pids: Sequence[int], pg_port: int) -> dict[int, set[int]]:
    """For each process, the local ports of its open TCP connections to ``pg_port``."""
    sockets = _tcp_sockets(pg_port)
    owned: dict[int, set[int]] = {}
    for pid in pids:
        ports: set[int] = set()
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:  # gone meanwhile
            links = []
        for link in links:
            if link.startswith("socket:["):
                inode = int(link[len("socket:[") : -1])
                if inode in sockets:
                    ports.add(sockets[inode])
        owned[pid] = ports
    return owned
