"""How ``trustanchor serve`` runs the WSGI app: bodies are read in the event loop under a
deadline, and only a complete request takes one of the worker's few Python threads.

Why not granian's WSGI interface: there, the app is called as soon as the headers are parsed
and ``wsgi.input.read()`` blocks the calling Python thread inside granian (a ``block_on`` with
no timeout) until the client has sent the body. ``trustanchor serve`` runs one thread per worker
on SQLite and four on PostgreSQL, so one client declaring a body and sending a byte a second
held a worker for as long as it liked (75 s measured), and nothing in Python could interrupt
the read. granian 2.8 bounds only the header read (``header_read_timeout``).

Here granian's ASGI interface hands the request to :class:`WsgiOverAsgi`, which

1. receives the body in the event loop, where waiting costs no thread, under
   :class:`BodyDeadline` (modelled on Apache's ``mod_reqtimeout``): the body must be complete
   within ``body_read_timeout`` seconds, extended by one second for every ``min_body_rate``
   bytes received, never beyond ``body_read_timeout_max``. Too slow: ``408 Request Timeout``
   with ``Connection: close``, and the app never sees the request;
   At most ``waiting_bodies`` requests of a worker wait for their body at once
   (``limits.waiting_bodies_per_worker``): a request announcing a body (a ``Content-Length``
   above 0 or a ``Transfer-Encoding``) that arrives while that many wait cuts off the one that
   has waited longest (its ``408`` at once). Each waiting request keeps one of the requests
   granian hands a worker at a time (``limits.requests_per_worker``, its ``backpressure``), so
   without this bound about a thousand connections sending headers and no body held them all,
   and every request on every route waited about 10 s (attack session of 2026-12-07). A request
   announcing no body never takes a place and is never cut off; a body that arrives with its
   headers, the usual case, leaves its place at its first read, so it is cut off only if that
   many newer requests announce a body before that read returns. granian itself still holds a
   place for a connection whose headers are incomplete (up to ``header_read_timeout``) or that
   idles between keep-alive requests, which only a proxy in front bounds (docs/DEPLOYING.md §3);
2. buffers at most ``max_body_bytes + 1`` bytes: a declared ``Content-Length`` above the limit
   is not read at all, and a streamed body is cut one byte past the limit, so that the app's
   own check (``trustanchor.web.app._limit_body``) refuses it with its usual 413;
3. runs the WSGI app with the complete body in a pool of ``threads`` threads (the count that
   ``trustanchor serve`` always used per worker, :func:`threads_per_worker`) and sends the
   buffered answer (every trustanchor response is small); requests that wait on another server
   while they are handled (an anchor's CRL, an upstream provider: :func:`reaches_out`) run in a
   separate pool of ``OUTBOUND_THREADS``, so they never hold or queue behind those threads.

Request ids (issue 14): each request gets its id here (``log_setup.request_id_for``: its own
``X-Request-Id`` when short and safe, else a new one from the injected randomness) before its
body is read; the pool thread that runs it sets the ``log_setup.request_id`` context variable
for its log lines (``run_in_executor`` copies no context) and resets it after. The WSGI app finds
the id in the environ (``REQUEST_ID_ENVIRON``) and answers it in ``X-Request-Id``, as a lean
route does (``LeanRequest.request_id``) and as this layer's own 408 and 500 answers do.

Lean routes: ``lean_routes`` maps ``(method, PATH_INFO)`` to a handler that answers the complete
request without Flask (``trustanchor.web.token_route`` for ``POST /token``). It runs after the
same body read, in the same pool, or with ``lean_on_loop`` (``service.token_on_loop`` under
group commit) on the event loop's own thread as a :class:`~trustanchor.suspension.LoopTask`,
which suspends where it would wait for the SQLite writer or its batch's COMMIT: no thread
hand-off and no contention for the GIL per request (bench/results/2026-12-07-token-on-loop.md).
A handler may decline a request (return None), which then goes to the WSGI app in the pool as
usual. Everything the Flask stack does for such a request is listed in
``trustanchor.web.cross_cutting`` and tested on both stacks.

The hop costs CPU on every request (bench/results/2026-12-06-serving-model.md: granian's ASGI
interface plus the thread hand-off, about 1.2-1.35x the CPU per token of granian's WSGI
interface on this machine), so the body read is kept lean: one ``asyncio.timeout_at`` per body,
moved as bytes arrive, instead of a ``wait_for`` task per message. (A hand-made thread queue
instead of ``run_in_executor`` saved a little more in process but relied on a private CPython
hook and was within the noise end to end: not kept.)

Deadlines are network timeouts, so they use the event loop's monotonic clock, not the
service's injected :class:`~trustanchor.clock.Clock` (which tells protocol time).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any
from urllib.parse import unquote_to_bytes

from trustanchor.log_setup import REQUEST_ID_HEADER, clipped, request_id, request_id_for
from trustanchor.randomness import Randomness, SystemRandomness
from trustanchor.suspension import run_on_loop

log = logging.getLogger("trustanchor.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]

TIMEOUT_BODY = b"request body not received in time\n"
_PLAIN_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
]
# Where the WSGI app finds the id this layer gave the request (trustanchor.log_setup).
REQUEST_ID_ENVIRON = "trustanchor.request_id"
_REQUEST_ID = REQUEST_ID_HEADER.lower().encode("ascii")


# Requests whose handling waits on another server (issue 11): a wallet's answer (a status list),
# a certificate answer (the anchor's CRL or OCSP responder), the start of an upstream login (the
# provider's discovery and PAR endpoint) and its callback (token endpoint, JWKS, UserInfo). They
# run in a pool of their own, so that a slow or unreachable anchor never holds the worker's one
# SQLite thread (every other request would wait behind it, for up to the fetcher's deadline), and
# so that a provider fetching our own JWKS while we wait on its PAR or token answer is served
# (with one thread it never could be: the login would always time out).
OUTBOUND_THREADS = 8
_OUTBOUND = re.compile(
    r"POST /wallet/response"
    r"|POST /certificate/(?:counter-)?response"
    r"|POST /interaction/[^/]+/upstream"
    r"|GET /upstream/[^/]+/callback"
)


def reaches_out(method: str, path: str) -> bool:
    """Whether the request ``method path`` waits on another server while it is handled."""
    return _OUTBOUND.fullmatch(f"{method} {path}") is not None


def threads_per_worker(dialect: str, *, group_commit: bool) -> int:
    """Request threads per worker (``service.threads = 0``), chosen by measurement
    (bench/results/2026-12-06-group-commit.md). SQLite serialises write transactions: with
    group commit (storage/group_commit.py) the threads queue on the process's one writer and
    many requests share one COMMIT, so 16 threads keep batches forming; without it every thread
    is a separate SQLite writer that only waits on the lock (p99 rose from 80 ms to 1.1 s), so
    one thread. PostgreSQL lets a few requests overlap their database round trips."""
    if dialect == "sqlite":
        return SQLITE_GROUP_THREADS if group_commit else 1
    return 4


SQLITE_GROUP_THREADS = 16


@dataclass(frozen=True, slots=True)
class BodyDeadline:
    """When a request body must be complete: ``initial`` seconds after the headers, plus one
    second per ``min_rate`` bytes received, at most ``maximum`` seconds. ``max_bytes``: the
    body limit (``limits.max_body_bytes``); at most one byte more is ever buffered."""

    initial: float
    maximum: float
    min_rate: int
    max_bytes: int

    def seconds_allowed(self, received: int) -> float:
        return min(self.maximum, self.initial + received / self.min_rate)


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass(frozen=True, slots=True)
class LeanRequest:
    """A complete request for a lean route: ``path`` is the ``PATH_INFO`` the WSGI app would
    see (:func:`environ_path`), ``headers`` the ASGI header lines as received."""

    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    client: tuple[str, int] | None
    request_id: str = ""  # the request's id (its X-Request-Id answer header, its log lines)


# A lean route's handler: the answer (status, lower-case header lines, body), or None to leave
# the request to the WSGI app.
LeanHandler = Callable[[LeanRequest], Answer | None]


class _Disconnected(Exception):
    """The client went away before its body was complete."""


class WsgiOverAsgi:
    """An ASGI app (HTTP only) that reads each body under a :class:`BodyDeadline` in the event
    loop, then calls the WSGI app with it in a pool of ``threads`` threads."""

    def __init__(
        self,
        wsgi_app: WsgiApp,
        *,
        threads: int,
        deadline: BodyDeadline,
        outbound_threads: int = OUTBOUND_THREADS,
        lean_routes: Mapping[tuple[str, str], LeanHandler] | None = None,
        randomness: Randomness | None = None,
        lean_on_loop: bool = False,
        waiting_bodies: int = 256,
    ) -> None:
        if waiting_bodies < 1:
            raise ValueError("waiting_bodies must be at least 1")
        self._app = wsgi_app
        # The body reads under way, oldest first (insertion order), each by its timer: the
        # event loop's thread alone changes it.
        self._waiting: dict[asyncio.Timeout, None] = {}
        self._max_waiting = waiting_bodies
        self._lean_on_loop = lean_on_loop
        self._randomness = randomness or SystemRandomness()
        self._lean = dict(lean_routes or {})
        self._deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="trustanchor")
        # Requests handed to the app threads and not yet answered (changed in the event loop
        # only; read by storage/group_commit.py to know whether a batch should wait for more).
        self.in_flight = 0
        # Requests that wait on other servers (:func:`reaches_out`) never queue behind, or
        # hold, the app threads above.
        self._outbound = ThreadPoolExecutor(
            max_workers=outbound_threads, thread_name_prefix="trustanchor-outbound"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not served (granian: websockets=False)
            return
        # The request's id (log_setup.request_id_for): set on the app thread that runs the
        # request (run_in_executor does not copy context variables), answered in X-Request-Id.
        rid = request_id_for(scope["headers"], self._randomness)
        try:
            body = await self._read_body(scope, receive)
        except _Disconnected:
            return
        if body is None:
            log.info(
                "refused %s %s: request body not received in time (408)",
                clipped(scope["method"]),
                clipped(scope.get("path", "")),  # decoded: it may hold anything, %0A too
                extra={"request_id": rid},
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 408,
                    "headers": [
                        *_PLAIN_HEADERS,
                        (b"connection", b"close"),
                        (_REQUEST_ID, rid.encode("ascii")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": TIMEOUT_BODY})
            return
        loop = asyncio.get_running_loop()
        pool = self._outbound if reaches_out(scope["method"], scope["path"]) else self._pool
        path = environ_path(scope)[1] if self._lean else ""
        lean = self._lean.get((scope["method"], path)) if self._lean else None
        counted = pool is self._pool
        if counted:
            self.in_flight += 1
        try:
            if lean is None:
                environ = wsgi_environ(scope, body)
                environ[REQUEST_ID_ENVIRON] = rid
                status, headers, content = await loop.run_in_executor(
                    pool, self._call, environ, rid
                )
            elif self._lean_on_loop:
                # on the loop's own thread (trustanchor.suspension); a request the route
                # declines goes to the WSGI app in the pool like any other
                answer = await run_on_loop(partial(self._lean_answer, lean, scope, path, body, rid))
                if answer is None:
                    answer = await loop.run_in_executor(
                        pool, self._call, _declined_environ(scope, body, rid), rid
                    )
                status, headers, content = answer
            else:
                status, headers, content = await loop.run_in_executor(
                    pool, self._call_lean, lean, scope, path, body, rid
                )
        finally:
            if counted:
                self.in_flight -= 1
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or the first ``max_bytes + 1`` bytes of a longer one (``b""`` when a
        declared length is already too long); None when the deadline passed first."""
        declared, announced = _announced_body(scope)
        if declared is not None and declared > self._deadline.max_bytes:
            return b""  # the app refuses it from Content-Length alone, without reading it
        deadline = self._deadline
        start = asyncio.get_running_loop().time()
        chunks: list[bytes] = []
        received = 0
        waiting = self._waiting
        try:
            # One timer for the whole body, moved as bytes arrive (a deadline already past
            # cancels the next wait at once).
            async with asyncio.timeout_at(start + deadline.seconds_allowed(0)) as timer:
                # Only a request that announces a body can wait for one, and take a place
                # among those that wait (a GET is never cut off for others).
                if announced:
                    if len(waiting) >= self._max_waiting:
                        self._cut_off_longest_waiting()
                    waiting[timer] = None
                try:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            raise _Disconnected
                        chunk = message.get("body", b"")
                        if not message.get("more_body", False) and not chunks:
                            # the usual case, a body in one message: no copy
                            return bytes(chunk[: deadline.max_bytes + 1])
                        if chunk:
                            chunks.append(chunk)
                            received += len(chunk)
                        if received > deadline.max_bytes:
                            return b"".join(chunks)[: deadline.max_bytes + 1]
                        if not message.get("more_body", False):
                            return b"".join(chunks)
                        timer.reschedule(start + deadline.seconds_allowed(received))
                finally:
                    waiting.pop(timer, None)
        except TimeoutError:
            return None

    def _cut_off_longest_waiting(self) -> None:
        """End the oldest body read under way as if its deadline had passed (its 408)."""
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        try:
            oldest.reschedule(0)  # in the past: its read ends at the loop's next turn
        except RuntimeError:
            return  # already expiring on its own deadline: its place is free all the same
        log.info(
            "cut off the longest-waiting request body (%d requests were waiting for theirs)",
            self._max_waiting,
        )

    def _call(self, environ: dict[str, Any], rid: str) -> Answer:
        """Run the WSGI app (in a pool thread) as request ``rid``."""
        token = request_id.set(rid)
        try:
            return self._wsgi(environ, rid)
        finally:
            request_id.reset(token)

    def _wsgi(self, environ: dict[str, Any], rid: str) -> Answer:
        """Run the WSGI app and collect its whole answer (the app sends X-Request-Id)."""
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            if exc_info is not None and started and written:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        try:
            result = self._app(environ, start_response)
            try:
                written.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            log.exception("the application failed")
            return _failed(rid)
        if not started:
            log.error("the application returned without calling start_response")
            return _failed(rid)
        status, headers = started
        encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return int(status.split(" ", 1)[0]), encoded, b"".join(written)

    def _call_lean(
        self, handler: LeanHandler, scope: Scope, path: str, body: bytes, rid: str
    ) -> Answer:
        """Run a lean route (in a pool thread) as request ``rid``; the WSGI app when it declines
        the request. The handler sends X-Request-Id itself."""
        answer = self._lean_answer(handler, scope, path, body, rid)
        if answer is None:
            return self._call(_declined_environ(scope, body, rid), rid)
        return answer

    def _lean_answer(
        self, handler: LeanHandler, scope: Scope, path: str, body: bytes, rid: str
    ) -> Answer | None:
        """A lean route's answer as request ``rid`` (None: it declined the request)."""
        client = scope.get("client")
        request = LeanRequest(
            method=scope["method"],
            path=path,
            query_string=bytes(scope.get("query_string", b"")),
            headers=scope["headers"],
            body=body,
            client=(str(client[0]), int(client[1])) if client else None,
            request_id=rid,
        )
        token = request_id.set(rid)
        try:
            return handler(request)
        except Exception:  # the handler answers its own failures; this is the last resort
            log.exception("the application failed")
            return _failed(rid)
        finally:
            request_id.reset(token)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._pool.shutdown(wait=True)
                self._outbound.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _declined_environ(scope: Scope, body: bytes, rid: str) -> dict[str, Any]:
    environ = wsgi_environ(scope, body)
    environ[REQUEST_ID_ENVIRON] = rid
    return environ


def _failed(rid: str) -> Answer:
    return 500, [*_PLAIN_HEADERS, (_REQUEST_ID, rid.encode("ascii"))], b"internal server error\n"


def _announced_body(scope: Scope) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (None: none, or malformed), and whether the request
    announces a body at all (a length above 0, or a ``Transfer-Encoding``). Without one, HTTP/1.1
    framing says there is no body: the read waits for nothing."""
    length: int | None = None
    encoded = False
    for name, value in scope["headers"]:
        lower = name.lower()
        if lower == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None  # hyper refuses a malformed length before we are called
        elif lower == b"transfer-encoding":
            encoded = True
    return length, encoded or (length is not None and length > 0)


def environ_path(scope: Scope) -> tuple[str, str]:
    """``SCRIPT_NAME`` and ``PATH_INFO`` of an ASGI HTTP scope (PEP 3333: the decoded bytes as
    latin-1 text): the path without the root path it is served under."""
    raw_path = scope.get("raw_path")
    if raw_path:
        raw = bytes(raw_path).split(b"?", 1)[0]
        path = (unquote_to_bytes(raw) if b"%" in raw else raw).decode("latin-1")
    else:
        path = str(scope["path"]).encode("utf-8").decode("latin-1")
    root_path = str(scope.get("root_path", "")).encode("utf-8").decode("latin-1")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return root_path, path


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI HTTP scope with a complete body.

    Repeated header lines are joined with commas (RFC 9110 §5.3), as WSGI servers do, so the
    app still sees every Authorization or DPoP line (``trustanchor.web.forms``). Header names
    with an underscore are dropped: in the environ ``X_Foo`` and ``X-Foo`` would be the same
    key, so one could pose as the other (gunicorn and nginx drop them too)."""
    root_path, path = environ_path(scope)
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path,
        "PATH_INFO": path,
        "QUERY_STRING": bytes(scope.get("query_string", b"")).decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,  # the body ends where the stream ends (werkzeug)
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if client:
        environ["REMOTE_ADDR"] = str(client[0])
        environ["REMOTE_PORT"] = str(client[1])
    environ.update(environ_headers(scope["headers"]))
    return environ


def environ_headers(lines: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers under their WSGI environ keys (``HTTP_*``, ``CONTENT_TYPE``,
    ``CONTENT_LENGTH``): latin-1 text, names with an underscore dropped, repeated lines joined
    by commas. Used by :func:`wsgi_environ` and by the lean routes, so both read alike."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in lines:
        name = bytes(raw_name).decode("latin-1").lower()
        if "_" in name:
            continue
        if name == "content-type":
            key = "CONTENT_TYPE"
        elif name == "content-length":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
        value = bytes(raw_value).decode("latin-1")
        previous = headers.get(key)
        headers[key] = value if previous is None else f"{previous},{value}"
    return headers
