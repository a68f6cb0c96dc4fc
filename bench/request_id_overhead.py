"""What the request id adds to one lean ``POST /token`` answer (issue 14), in process, without
HTTP: :func:`~trustanchor.log_setup.request_id_for` over the request's header lines in the event
loop (a new id from the system randomness, or the client's own ``X-Request-Id`` kept), setting
and resetting the context variable on the app thread, and the answer's ``x-request-id`` line.
Log lines are not counted: a granted token writes none.

    .venv/bin/python bench/request_id_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from trustanchor.log_setup import request_id, request_id_for
from trustanchor.randomness import SystemRandomness

# The header lines of a private_key_jwt + DPoP token request as granian hands them over.
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-requests/2.32.3"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept", b"*/*"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"application/x-www-form-urlencoded"),
    (b"dpop", b"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2In0." + b"x" * 400),
    (b"content-length", b"612"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    randomness = SystemRandomness()
    given = [*HEADERS, (b"x-request-id", b"0f8e2c1a-rp.request_42")]

    def request(headers: list[tuple[bytes, bytes]]) -> None:
        rid = request_id_for(headers, randomness)  # WsgiOverAsgi.__call__
        token = request_id.set(rid)  # WsgiOverAsgi._call_lean, on the app thread
        lines: list[tuple[bytes, bytes]] = []
        lines.append((b"x-request-id", rid.encode("ascii")))  # TokenRoute._respond
        request_id.reset(token)

    cases = (
        ("new id", lambda: request(HEADERS)),
        ("client's id", lambda: request(given)),
        ("nothing", lambda: None),
    )
    for name, call in cases:
        runs = timeit.repeat(call, number=args.number, repeat=args.repeat)
        per_call = [run / args.number * 1e6 for run in runs]
        print(
            f"{name:12} min {min(per_call):.2f} µs  median {statistics.median(per_call):.2f} µs "
            "per request"
        )


if __name__ == "__main__":
    main()
