"""What the serving hop costs per request under each event loop granian offers.

``trustanchor serve`` hands every request from granian's event loop to a thread of the worker's
pool and back (``trustanchor/web/serving.py``). This measures that hop alone: a handler that
does no work (a fixed token-sized JSON answer, computed in a pool thread as the service's are),
served by granian with one worker, under its ASGI interface (as ``serve`` runs) and its RSGI
interface, with asyncio's loop, uvloop and (when installed) rloop. wrk loads each variant in
turn, round after round; the figures are requests per second and CPU µs per request of the
server's process tree (granian's main process and worker), so they hold up on a shared machine
better than req/s do. Not run in CI.

    .venv/bin/python bench/event_loop.py --rounds 3 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _environment import cpu_model, git_state

# --- the apps granian serves (imported by the workers as ``event_loop:asgi`` / ``:rsgi``) -----

_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="bench")
_BODY = b'{"access_token":"' + b"x" * 600 + b'","token_type":"Bearer","expires_in":300}'
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
]
_STR_HEADERS = [(k.decode(), v.decode()) for k, v in _HEADERS]


def _work(body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 200, _HEADERS, _BODY


Message = MutableMapping[str, Any]


async def asgi(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    async with asyncio.timeout(10):  # serving.py reads every body under a deadline too
        message = await receive()
    loop = asyncio.get_running_loop()
    status, headers, content = await loop.run_in_executor(_POOL, _work, message.get("body", b""))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


class _Rsgi:
    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        async with asyncio.timeout(10):
            body = await protocol()
        loop = asyncio.get_running_loop()
        status, _, content = await loop.run_in_executor(_POOL, _work, body)
        protocol.response_bytes(status, _STR_HEADERS, content)

    def __rsgi_init__(self, loop: Any) -> None:
        pass

    def __rsgi_del__(self, loop: Any) -> None:
        pass


rsgi = _Rsgi()

# --- the runner ----------------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
GRANIAN = Path(sys.executable).with_name("granian")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree_cpu_seconds(pid: int) -> float:
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    total = 0
    for each in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, seconds: int, script: Path, connections: int) -> str:
    return subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/token",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout


def measure(
    interface: str, loop: str, *, seconds: int, connections: int, script: Path
) -> tuple[float, float]:
    """(req/s, CPU µs per request) of one variant: warm-up, then one timed wrk run."""
    port = _free_port()
    app = "event_loop:asgi" if interface == "asginl" else "event_loop:rsgi"
    server = subprocess.Popen(
        [
            *(str(GRANIAN), "--interface", interface, "--workers", "1", "--loop", loop),
            *("--no-ws", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", app),
        ],
        cwd=HERE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"granian ({interface}, {loop}) did not start") from None
                time.sleep(0.1)
        _wrk(port, 2, script, connections)
        before = _tree_cpu_seconds(server.pid)
        out = _wrk(port, seconds, script, connections)
        after = _tree_cpu_seconds(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, (after - before) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per variant and round")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    loops = ["asyncio", "uvloop"] + (["rloop"] if importlib.util.find_spec("rloop") else [])
    variants = [(interface, loop) for interface in ("asginl", "rsgi") for loop in loops]
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.body = "grant_type=client_credentials&scope=api%3Aread"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        )
        results: dict[tuple[str, str], list[tuple[float, float]]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant in variants:
                results[variant].append(
                    measure(
                        *variant, seconds=args.duration, connections=args.connections, script=script
                    )
                )
    base = statistics.median(cpu for _, cpu in results[("asginl", "asyncio")])
    print("| interface | loop | req/s (median) | runs | CPU µs/req (median) | vs ASGI + asyncio |")
    print("|---|---|---:|---|---:|---:|")
    for (interface, loop), runs in results.items():
        cpu = statistics.median(c for _, c in runs)
        print(
            f"| {'ASGI' if interface == 'asginl' else 'RSGI'} | {loop} "
            f"| {statistics.median(r for r, _ in runs):,.0f} "
            f"| {' / '.join(f'{r:,.0f}' for r, _ in runs)} | {cpu:.1f} | {cpu - base:+.1f} µs |"
        )
    print(
        f"\n{git_state()}; {cpu_model()}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}; "
        f"{args.rounds} rounds × {args.duration} s, {args.connections} connections, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
