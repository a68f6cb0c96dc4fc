from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.ecosystem import Ecosystem
from support.payments import Bank, Payments
from support.server import RunningServer, free_port, running_server, test_settings
from support.stage import Stage


@pytest.fixture
def ecosystem() -> Ecosystem:
    return Ecosystem()


@pytest.fixture
def extra_clients() -> list[dict[str, Any]]:
    """Client declarations a test module adds to the ecosystem's (override in the module)."""
    return []


@pytest.fixture
def server(
    tmp_path: Path, database_url: str, ecosystem: Ecosystem, extra_clients: list[dict[str, Any]]
) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=[*ecosystem.client_declarations(), *extra_clients],
    )
    with running_server(settings) as running:
        yield running


@pytest.fixture
def stage(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[Stage]:
    """A running server with the ecosystem plus the extra clients of support/stage.py."""
    with Stage.running(tmp_path, database_url, ecosystem) as running:
        yield running


@pytest.fixture
def payments() -> Payments:
    """Issue 4's ecosystem (support/payments.py): two anchor sets, three anchors, a bank."""
    return Payments()


@pytest.fixture
def payment_server(
    tmp_path: Path, database_url: str, payments: Payments
) -> Iterator[RunningServer]:
    with payments.running(tmp_path, database_url) as running:
        yield running


@pytest.fixture
def bank(payment_server: RunningServer, payments: Payments) -> Bank:
    return Bank(payment_server, payments)
