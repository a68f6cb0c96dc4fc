"""An open-loop load at a fixed request rate, for the latency target of issue 13 ("p99 latency
no worse than node-oidc-provider's at 80 % of node-oidc-provider's peak rate in the same run").

wrk (the closed-loop generator the token-endpoint benchmark uses for peak rates) sends the next
request only when an answer came back, so a slow server is offered less load and its queueing
never shows in the latency (coordinated omission); Debian has no wrk2. Here requests are
scheduled at ``start + i / rate`` whatever the server does, sent on a pool of keep-alive
HTTP/1.1 connections (a request whose time has come waits for a free connection, and that wait
counts), and each latency is measured from the request's *scheduled* time to its complete
answer. Run by bench/token_endpoint.py ``--rate-fraction`` on the load-generator core:

    python bench/open_loop.py --port P --rate R --seconds S --body FORM --authorization VALUE

prints one JSON object: sent, answered, per status, achieved rate, p50/p90/p99/max in µs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence

HOST = "127.0.0.1"


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer


async def _open(port: int) -> Connection:
    reader, writer = await asyncio.open_connection(HOST, port)
    return Connection(reader, writer)


async def _exchange(conn: Connection, request: bytes) -> tuple[int, bool]:
    """Send one request and read its whole answer: (status, connection still usable)."""
    conn.writer.write(request)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if length:
        await conn.reader.readexactly(length)
    return status, keep


async def run(
    port: int, rate: float, seconds: float, body: str, authorization: str, connections: int
) -> dict[str, object]:
    request = (
        f"POST /token HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: {authorization}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode("latin-1")
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await _open(port))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    start = loop.time() + 0.05

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        try:
            status, keep = await _exchange(conn, request)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            statuses[type(exc).__name__] += 1
            conn.writer.close()
            idle.put_nowait(await _open(port))
            return
        latencies.append(loop.time() - scheduled)
        statuses[str(status)] += 1
        if keep:
            idle.put_nowait(conn)
        else:
            conn.writer.close()
            idle.put_nowait(await _open(port))

    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(1e6 * latencies[min(len(latencies) - 1, int(p * len(latencies)))])

    return {
        "sent": total,
        "answered": len(latencies),
        "statuses": dict(statuses),
        "offered_rate": rate,
        "achieved_rate": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "max_us": int(1e6 * latencies[-1]) if latencies else 0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--body", required=True, help="the form body of every request")
    parser.add_argument("--authorization", required=True, help="the Authorization header value")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    began = time.monotonic()
    result = asyncio.run(
        run(args.port, args.rate, args.seconds, args.body, args.authorization, args.connections)
    )
    result["wall_seconds"] = round(time.monotonic() - began, 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
