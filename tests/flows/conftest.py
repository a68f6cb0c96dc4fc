from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.ecosystem import Ecosystem
from support.server import RunningServer, free_port, running_server, test_settings


@pytest.fixture
def ecosystem() -> Ecosystem:
    return Ecosystem()


@pytest.fixture
def server(tmp_path: Path, database_url: str, ecosystem: Ecosystem) -> Iterator[RunningServer]:
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[ecosystem.anchor_declaration()],
        clients=ecosystem.client_declarations(),
    )
    with running_server(settings) as running:
        yield running
