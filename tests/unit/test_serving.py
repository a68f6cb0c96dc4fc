"""trustanchor.web.serving: the body deadline's arithmetic and the WSGI environ built from an ASGI
scope (the slow-client behaviour itself is shown on the real server in
tests/flows/test_slow_clients.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from support.own_loop import run_in_own_loop

from trustanchor.config.loader import ConfigError, load_settings
from trustanchor.suspension import current_task
from trustanchor.web.serving import (
    BodyDeadline,
    LeanRequest,
    WsgiOverAsgi,
    threads_per_worker,
    wsgi_environ,
)

REPO = Path(__file__).resolve().parents[2]


def _scope(**extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/token",
        "raw_path": b"/token",
        "root_path": "",
        "query_string": b"a=1&b=%C3%A9",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [],
        **extra,
    }


def test_the_deadline_grows_with_what_arrived_up_to_the_maximum() -> None:
    deadline = BodyDeadline(initial=10, maximum=30, min_rate=500, max_bytes=65536)
    assert deadline.seconds_allowed(0) == 10
    assert deadline.seconds_allowed(2500) == 15  # one second per 500 bytes received
    assert deadline.seconds_allowed(65536) == 30  # never beyond the maximum


def test_repeated_header_lines_are_joined_so_the_app_still_sees_each_one() -> None:
    environ = wsgi_environ(
        _scope(headers=[(b"dpop", b"proof-one"), (b"dpop", b"proof-two"), (b"host", b"x")]),
        b"",
    )
    assert environ["HTTP_DPOP"] == "proof-one,proof-two"
    assert environ["HTTP_HOST"] == "x"


def test_a_header_name_with_an_underscore_cannot_pose_as_one_with_a_hyphen() -> None:
    environ = wsgi_environ(
        _scope(headers=[(b"x-forwarded-for", b"real"), (b"x_forwarded_for", b"spoofed")]), b""
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "real"


def test_body_length_type_path_and_query_follow_pep_3333() -> None:
    environ = wsgi_environ(
        _scope(
            raw_path=b"/interaction/caf%C3%A9?ignored=1",
            path="/interaction/café",
            headers=[
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", b"3"),
            ],
        ),
        b"a=b",
    )
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    # PATH_INFO carries the decoded bytes as latin-1 (werkzeug turns them back into UTF-8).
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/interaction/café"
    assert environ["QUERY_STRING"] == "a=1&b=%C3%A9"
    assert environ["wsgi.input"].read() == b"a=b"
    assert environ["wsgi.input_terminated"] is True
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    assert environ["SERVER_PORT"] == "8000"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_threads_per_worker_are_the_production_counts() -> None:
    assert threads_per_worker("sqlite", group_commit=True) == 16
    assert threads_per_worker("sqlite", group_commit=False) == 1
    assert threads_per_worker("postgresql", group_commit=False) == 4


def test_the_loader_refuses_read_deadlines_out_of_bounds() -> None:
    bad = {
        "header_read_timeout": 0,
        "body_read_timeout": 61,
        "body_read_timeout_max": 20,
        "min_body_rate": 0,
    }
    with pytest.raises(ConfigError) as refused:
        load_settings(REPO / "config" / "test.toml", environ={}, overrides={"limits": bad})
    assert sorted(p.split(":")[0] for p in refused.value.problems) == [
        "limits.body_read_timeout",
        "limits.body_read_timeout_max",
        "limits.header_read_timeout",
        "limits.min_body_rate",
    ]
    settings = load_settings(REPO / "config" / "test.toml", environ={})
    assert (
        settings.limits.header_read_timeout,
        settings.limits.body_read_timeout,
        settings.limits.body_read_timeout_max,
        settings.limits.min_body_rate,
    ) == (10, 10, 30, 500)


# -- lean routes (trustanchor.web.token_route is tested on both stacks in
# tests/flows/test_token_stacks.py) ------------------------------------------------------------


def _run(app: WsgiOverAsgi, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run_in_own_loop(app(scope, receive, send))  # type: ignore[arg-type]
    return int(sent[0]["status"]), bytes(sent[1]["body"])


@pytest.mark.parametrize("on_loop", [False, True], ids=["pool", "on-loop"])
def test_a_lean_route_answers_its_method_and_path_and_may_leave_a_request_to_the_app(
    on_loop: bool,
) -> None:
    """In the pool, or (``lean_on_loop``) on the event loop's own thread as a LoopTask; a
    request the route declines goes to the WSGI app in a pool thread either way."""
    seen: list[LeanRequest] = []
    lean_threads: set[str] = set()
    wsgi_threads: set[str] = set()

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        wsgi_threads.add(threading.current_thread().name)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"wsgi " + environ["PATH_INFO"].encode("latin-1")]

    def lean(request: LeanRequest) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        seen.append(request)
        lean_threads.add("task" if current_task() is not None else threading.current_thread().name)
        if request.body == b"decline":
            return None
        if request.body == b"fail":
            raise RuntimeError("a bug")
        return 201, [], b"lean"

    deadline = BodyDeadline(initial=1, maximum=2, min_rate=500, max_bytes=100)
    app = WsgiOverAsgi(
        wsgi,
        threads=1,
        deadline=deadline,
        lean_routes={("POST", "/token"): lean},
        lean_on_loop=on_loop,
    )
    assert _run(app, _scope(), b"a=1") == (201, b"lean")
    assert seen[-1].path == "/token" and seen[-1].query_string == b"a=1&b=%C3%A9"
    assert seen[-1].body == b"a=1" and seen[-1].client == ("127.0.0.1", 50000)
    # the path as PATH_INFO: percent-decoded, under the root path
    assert _run(app, _scope(raw_path=b"/base/tok%65n", root_path="/base")) == (201, b"lean")
    assert _run(app, _scope(), b"decline") == (200, b"wsgi /token")
    assert _run(app, _scope(), b"fail") == (500, b"internal server error\n")
    count = len(seen)
    assert _run(app, _scope(method="GET")) == (200, b"wsgi /token")
    assert _run(app, _scope(raw_path=b"/token/", path="/token/")) == (200, b"wsgi /token/")
    assert len(seen) == count
    assert lean_threads == ({"task"} if on_loop else {"trustanchor_0"})
    assert wsgi_threads == {"trustanchor_0"}


# -- how many requests may wait for their body (limits.waiting_bodies_per_worker) -------------


def test_the_longest_waiting_body_is_cut_off_when_too_many_wait() -> None:
    """Three places for requests waiting for their body: a request announcing a body that
    arrives while three wait cuts off the one that has waited longest (408 at once, long before
    its deadline). One whose body came with its headers is answered at once; one that waits
    keeps its place until more arrive; a GET announcing no body takes no place."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.input"].read()]

    deadline = BodyDeadline(initial=30, maximum=30, min_rate=500, max_bytes=100)
    app = WsgiOverAsgi(wsgi, threads=1, deadline=deadline, waiting_bodies=3)

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        answers: dict[str, list[dict[str, Any]]] = {}
        bodies: dict[str, asyncio.Future[dict[str, Any]]] = {}

        def request(name: str, body: bytes | None, method: str = "POST") -> asyncio.Task[None]:
            answers[name] = []
            length = [(b"content-length", b"3")] if method == "POST" else []

            async def receive() -> dict[str, Any]:
                if body is not None:
                    return {"type": "http.request", "body": body, "more_body": False}
                bodies[name] = loop.create_future()  # a body that never comes, unless sent
                return await bodies[name]

            async def send(message: dict[str, Any]) -> None:
                answers[name].append(message)

            scope = _scope(method=method, headers=length)
            return asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]

        started = loop.time()
        slow = [request(f"slow{i}", None) for i in range(3)]
        await asyncio.sleep(0.01)
        assert len(app._waiting) == 3
        get = request("get", b"", method="GET")  # announces no body: takes no place, cuts none
        await asyncio.wait_for(get, 5)
        assert len(app._waiting) == 3 and not any(task.done() for task in slow)
        fast = request("fast", b"a=1")  # three wait: slow0 goes; its own body is there
        await asyncio.wait_for(asyncio.gather(fast, slow[0]), 5)
        late = request("late", None)  # two waited: now three (slow1, slow2, late)
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in (slow[1], slow[2], late))
        later = request("later", None)  # three wait: slow1 goes
        await asyncio.wait_for(slow[1], 5)
        await asyncio.sleep(0.01)
        assert not slow[2].done() and not late.done() and not later.done()
        bodies["late"].set_result({"type": "http.request", "body": b"b=2", "more_body": False})
        await asyncio.wait_for(late, 5)
        for task in (slow[2], later):
            task.cancel()
        await asyncio.gather(slow[2], later, return_exceptions=True)
        return {"answers": answers, "seconds": loop.time() - started}

    outcome = run_in_own_loop(scenario())
    answers = outcome["answers"]
    assert outcome["seconds"] < 10  # the deadline is 30 s: the cut-offs did not wait for it
    assert answers["get"][0]["status"] == 200
    assert answers["fast"][0]["status"] == 200 and answers["fast"][1]["body"] == b"a=1"
    for cut in ("slow0", "slow1"):
        assert answers[cut][0]["status"] == 408
        assert (b"connection", b"close") in answers[cut][0]["headers"]
    assert answers["late"][0]["status"] == 200 and answers["late"][1]["body"] == b"b=2"
    assert answers["slow2"] == [] and answers["later"] == []
    assert app._waiting == {}  # every read, answered, cut off or cancelled, left its place


def test_the_loader_bounds_the_places_per_worker() -> None:
    for bad, field in (
        ({"requests_per_worker": 32}, "limits.requests_per_worker"),
        (
            {"requests_per_worker": 1024, "waiting_bodies_per_worker": 513},
            "limits.waiting_bodies_per_worker",
        ),
        ({"waiting_bodies_per_worker": 0}, "limits.waiting_bodies_per_worker"),
    ):
        with pytest.raises(ConfigError) as refused:
            load_settings(REPO / "config" / "test.toml", environ={}, overrides={"limits": bad})
        assert [p.split(":")[0] for p in refused.value.problems] == [field]
    settings = load_settings(REPO / "config" / "test.toml", environ={})
    assert (settings.limits.waiting_bodies_per_worker, settings.limits.requests_per_worker) == (
        256,
        1024,
    )
