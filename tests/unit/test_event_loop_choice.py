"""``service.event_loop``: which event loop ``trustanchor serve`` gives granian's workers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click
import pytest

from trustanchor.cli.lifecycle import choose_event_loop
from trustanchor.config.loader import ConfigError, load_settings

TEST_CONFIG = Path(__file__).resolve().parents[2] / "config" / "test.toml"


def test_auto_takes_uvloop_which_trustanchor_installs() -> None:
    assert importlib.util.find_spec("uvloop") is not None  # a dependency (pyproject.toml)
    assert choose_event_loop("auto") == "uvloop"
    assert choose_event_loop("uvloop") == "uvloop"


def test_asyncio_when_asked_for() -> None:
    assert choose_event_loop("asyncio") == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec

    def without_uvloop(name: str, package: str | None = None) -> object:
        return None if name == "uvloop" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_uvloop)
    assert choose_event_loop("auto") == "asyncio"
    with pytest.raises(click.ClickException, match="uvloop is not installed"):
        choose_event_loop("uvloop")


@pytest.mark.parametrize("value", ["auto", "uvloop", "asyncio"])
def test_the_setting_takes_the_three_values(value: str) -> None:
    settings = load_settings(TEST_CONFIG, environ={"TRUSTANCHOR_SERVICE_EVENT_LOOP": value})
    assert settings.service.event_loop == value


def test_other_values_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"service\.event_loop: must be auto, uvloop or asyncio"):
        load_settings(TEST_CONFIG, environ={"TRUSTANCHOR_SERVICE_EVENT_LOOP": "trio"})
