"""trustanchor.web.serving.WsgiOverAsgi driven through the ASGI protocol in one event loop: what
the lean hop (one body timer, the app threads) must keep from the ``wait_for`` /
``run_in_executor`` version it replaced. The real server with real slow clients is
tests/flows/test_slow_clients.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from trustanchor.web.serving import BodyDeadline, Message, WsgiOverAsgi, reaches_out

DEADLINE = BodyDeadline(initial=0.3, maximum=0.6, min_rate=1000, max_bytes=16)


def _scope(method: str = "POST", path: str = "/token") -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
    }


class Echo:
    """A WSGI app that answers with the body it read, and notes the thread that ran it."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., object]
    ) -> Iterable[bytes]:
        self.threads.append(threading.current_thread().name)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]


def _run_isolated(make: Callable[[], Any]) -> Any:
    """``asyncio.run`` in a thread of its own: the test process may already have an event loop
    running in this thread (Playwright's sync API leaves one for the browser tests)."""
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:  # re-raised in the test's thread
            error.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    if error:
        raise error[0]
    return result[0] if result else None


def _serve(
    app: WsgiOverAsgi, messages: Sequence[Message], *, gap: float = 0.0, stall: bool = False
) -> tuple[float, list[Message]]:
    """One request: ``messages`` handed out ``gap`` seconds apart, then nothing more if
    ``stall``. Returns the seconds it took and what the app sent."""
    sent: list[Message] = []

    async def run() -> float:
        pending = list(messages)

        async def receive() -> Message:
            if not pending:
                assert stall, "the app read past the end of the body"
                await asyncio.sleep(3600)
            await asyncio.sleep(gap)
            return pending.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(app(_scope(), receive, send), 10)
        return loop.time() - began

    return _run_isolated(run), sent


def _body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.request", "body": data, "more_body": more}


def test_a_body_in_one_message_reaches_the_app_in_an_app_thread() -> None:
    echo = Echo()
    app = WsgiOverAsgi(echo, threads=1, deadline=DEADLINE)
    _, sent = _serve(app, [_body(b"grant_type=x")])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"grant_type=x"
    assert echo.threads == ["trustanchor_0"]


def test_a_body_in_pieces_is_joined_and_a_long_one_cut_one_byte_past_the_limit() -> None:
    app = WsgiOverAsgi(Echo(), threads=1, deadline=DEADLINE)
    _, sent = _serve(app, [_body(b"a=1&", True), _body(b"b=2", True), _body(b"")], gap=0.01)
    assert sent[1]["body"] == b"a=1&b=2"
    _, sent = _serve(app, [_body(b"x" * 10, True), _body(b"y" * 10, True)])
    assert sent[1]["body"] == b"x" * 10 + b"y" * 7  # max_bytes + 1: the app refuses it (413)
    _, sent = _serve(app, [_body(b"z" * 40)])
    assert sent[1]["body"] == b"z" * 17


def test_a_stalled_body_gets_408_at_the_deadline_and_the_app_never_runs() -> None:
    echo = Echo()
    app = WsgiOverAsgi(echo, threads=1, deadline=DEADLINE)
    took, sent = _serve(app, [_body(b"a", True)], stall=True)
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert DEADLINE.initial <= took < DEADLINE.maximum + 0.5
    assert echo.threads == []


def test_bytes_arriving_move_the_deadline_but_never_past_the_maximum() -> None:
    # Pieces of 100 bytes, 0.1 s apart; each adds 0.2 s (min_rate 500/s) to the initial 0.3 s,
    # so a steady trickle is cut at the maximum (1 s), and a body of 6 pieces (0.7 s, past the
    # initial deadline) is complete in time.
    deadline = BodyDeadline(initial=0.3, maximum=1.0, min_rate=500, max_bytes=65536)
    app = WsgiOverAsgi(Echo(), threads=1, deadline=deadline)
    pieces = [_body(b"p" * 100, True) for _ in range(40)]
    took, sent = _serve(app, pieces, gap=0.1)
    assert sent[0]["status"] == 408
    assert deadline.maximum <= took < deadline.maximum + 0.5
    took, sent = _serve(app, [*pieces[:6], _body(b"")], gap=0.1)
    assert sent[0]["status"] == 200 and len(sent[1]["body"]) == 600
    assert took > deadline.initial


def test_an_app_that_fails_answers_500_and_the_thread_serves_the_next_request() -> None:
    calls: list[int] = []

    def flaky(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")
        start_response("204 No Content", [])
        return []

    app = WsgiOverAsgi(flaky, threads=1, deadline=DEADLINE)
    assert _serve(app, [_body(b"")])[1][0]["status"] == 500
    assert _serve(app, [_body(b"")])[1][0]["status"] == 204


def test_after_shutdown_no_request_is_queued_for_threads_that_are_gone() -> None:
    app = WsgiOverAsgi(Echo(), threads=2, deadline=DEADLINE)
    assert _serve(app, [_body(b"a")])[1][0]["status"] == 200

    async def lifespan() -> None:
        events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> Message:
            return events.pop(0)

        async def send(message: Message) -> None:
            return None

        await app({"type": "lifespan"}, receive, send)

    _run_isolated(lifespan)
    with pytest.raises(RuntimeError, match=r"shut ?down"):
        _serve(app, [_body(b"a")])


@pytest.mark.parametrize(
    ("method", "path", "outbound"),
    [
        ("POST", "/wallet/response", True),
        ("POST", "/certificate/response", True),
        ("POST", "/certificate/counter-response", True),
        ("POST", "/interaction/abc/upstream", True),
        ("GET", "/upstream/demo-ekyc-bank/callback", True),
        ("GET", "/upstream/demo-ekyc-bank/jwks.json", False),
        ("POST", "/token", False),
        ("GET", "/wallet/response", False),
        ("POST", "/interaction/abc/upstream/x", False),
    ],
)
def test_requests_that_wait_on_other_servers_are_recognised(
    method: str, path: str, outbound: bool
) -> None:
    assert reaches_out(method, path) is outbound


def test_a_request_waiting_on_another_server_never_holds_the_app_thread() -> None:
    """With the one app thread of a SQLite worker, an upstream callback stuck on a slow provider
    must not stop the provider's own fetch of our JWKS (nor anyone's token request)."""
    release = threading.Event()
    ran_in: dict[str, str] = {}

    def app(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
        ran_in[environ["PATH_INFO"]] = threading.current_thread().name
        if environ["PATH_INFO"].endswith("/callback"):
            assert release.wait(10), "the JWKS request never ran while the callback waited"
        else:
            release.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    served = WsgiOverAsgi(app, threads=1, deadline=DEADLINE)

    async def both() -> list[int]:
        async def one(method: str, path: str) -> int:
            sent: list[Message] = []
            pending = [_body(b"")]

            async def receive() -> Message:
                return pending.pop(0)

            async def send(message: Message) -> None:
                sent.append(message)

            await asyncio.wait_for(served(_scope(method, path), receive, send), 10)
            return int(sent[0]["status"])

        callback = asyncio.ensure_future(one("GET", "/upstream/bank/callback"))
        await asyncio.sleep(0.05)
        jwks = await one("GET", "/upstream/bank/jwks.json")
        return [await callback, jwks]

    assert _run_isolated(both) == [200, 200]
    assert ran_in["/upstream/bank/callback"].startswith("trustanchor-outbound")
    assert not ran_in["/upstream/bank/jwks.json"].startswith("trustanchor-outbound")
