"""A PostgreSQL server that accepts a connection and then says nothing (packets dropped, a
hung server) must not hold the service for the kernel's TCP timeout: new connections give up
after ``CONNECT_TIMEOUT`` seconds (libpq's connect_timeout), unless the URL sets its own."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from trustanchor.storage import database as database_module
from trustanchor.storage.database import Database, StorageUnavailable

pytest.importorskip("psycopg")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for each in accepted:
            each.close()
        listener.close()


def _seconds_to_fail(db: Database) -> float:
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught, db.reader() as conn:
        conn.execute(text("SELECT 1"))  # what /readyz and every request would see: 503
    assert "timeout" in str(caught.value.__cause__).lower()
    return time.monotonic() - started


def test_a_silent_server_is_given_up_on_after_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "CONNECT_TIMEOUT", 2)
    db = Database(f"postgresql://trustanchor@127.0.0.1:{silent_server}/test")
    try:
        assert 1.5 < _seconds_to_fail(db) < 8
    finally:
        db.dispose()


def test_the_url_s_own_connect_timeout_wins(silent_server: int) -> None:
    db = Database(f"postgresql://trustanchor@127.0.0.1:{silent_server}/test?connect_timeout=1")
    try:
        assert _seconds_to_fail(db) < 6
    finally:
        db.dispose()
