"""The whole demo as a person starts it, for the browser walk: ``python -m trustanchor.demo
--service-port P --parties-port Q --state-dir D`` (trustanchor/demo/__main__.py: prepares keys and
credentials, starts the service and the demo parties' app, seeds the demo data, supervises both)
on free ports, with its databases and credentials in a directory of the test run (a person's
var/demo is left alone). Ready when both answer and the launcher has printed the demo's URLs,
which it does once the demo data is seeded. Stopped with Ctrl-C (SIGINT) as a person would; its
output is kept in a log file that a failing start shows. A second start on the same state directory
and ports (``running_demo(..., ports=first.ports)``) is the demo started again as a person does
after Ctrl-C; ``RunningDemo.stops`` says how each stop ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests
from support.server import free_port

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = REPO / "trustanchor" / "demo" / "__main__.py"
TEST_SWITCHES = ("TRUSTANCHOR_REQUIRE_BROWSER", "TRUSTANCHOR_REQUIRE_POSTGRES")
START_TIMEOUT = 180.0  # first start: keys, credentials, schema, seeding through the real flows
STOP_TIMEOUT = 20.0


def launcher_problem() -> str | None:
    if not LAUNCHER.is_file():
        return f"the demo launcher {LAUNCHER.relative_to(REPO)} does not exist yet"
    return None


@dataclass(frozen=True)
class RunningDemo:
    service_url: str
    parties_url: str
    log: Path
    ports: tuple[int, int] = (0, 0)  # (service, parties)
    # Filled when the demo is stopped: the launcher's exit status after Ctrl-C, or None when it
    # had to be killed.
    stops: list[int | None] = field(default_factory=list, compare=False)

    def service(self, path: str) -> str:
        return self.service_url + path

    def party(self, path: str) -> str:
        return self.parties_url + path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2, allow_redirects=False).status_code < 500
    except requests.RequestException:
        return False


@contextmanager
def running_demo(
    state_dir: Path, log: Path, *, ports: tuple[int, int] | None = None
) -> Iterator[RunningDemo]:
    """Start the demo (on ``ports``, service and parties, or free ones), wait until it is
    ready, stop it afterwards."""
    service_port, parties_port = ports if ports is not None else (free_port(), free_port())
    demo = RunningDemo(
        service_url=f"http://127.0.0.1:{service_port}",
        parties_url=f"http://127.0.0.1:{parties_port}",
        log=log,
        ports=(service_port, parties_port),
    )
    command = [
        sys.executable,
        "-m",
        "trustanchor.demo",
        "--service-port",
        str(service_port),
        "--parties-port",
        str(parties_port),
        "--state-dir",
        str(state_dir),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**_environment(), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its own process group: the service and parties with it
        )
    try:
        _wait_until_up(process, demo)
        yield demo
    finally:
        demo.stops.append(_stop(process))


def _environment() -> dict[str, str]:
    """Ours, without the test run's own switches (the service refuses TRUSTANCHOR_ variables
    that are not settings)."""
    return {k: v for k, v in os.environ.items() if k not in TEST_SWITCHES}


def _wait_until_up(process: subprocess.Popen[bytes], demo: RunningDemo) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    targets = [demo.service("/.well-known/openid-configuration"), demo.party("/wallet/")]
    listed = demo.party("/ledger/")  # in the list of URLs printed after seeding
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"the demo stopped with exit code {process.returncode}:\n{demo.output()}"
            )
        if listed in demo.output() and all(_answers(url) for url in targets):
            return
        time.sleep(0.5)
    raise AssertionError(f"the demo did not answer within {START_TIMEOUT:.0f} s:\n{demo.output()}")


def _stop(process: subprocess.Popen[bytes]) -> int | None:
    """Ctrl-C to the launcher (it stops its children); then its whole process group, which
    this fixture created, if anything is left. The launcher's exit status after Ctrl-C, or
    None when it did not stop in time."""
    status: int | None = None
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        with suppress(subprocess.TimeoutExpired):
            status = process.wait(timeout=STOP_TIMEOUT)
    else:
        status = process.returncode
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # our own group (start_new_session above)
    if process.poll() is None:
        process.wait(timeout=STOP_TIMEOUT)
    return status
