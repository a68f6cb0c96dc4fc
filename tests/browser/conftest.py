"""Browser tests: the service's pages (and, with the demo launcher, the whole demo) in headless
Chromium, Debian's ``chromium`` driven by Playwright. Every test here is marked ``browser``.

Without Chromium or the playwright package every test here is skipped with the reason (shown in
the report header and in the skip summary); with ``TRUSTANCHOR_REQUIRE_BROWSER=1`` (set by
``.ci/run`` when Chromium is installed) a missing browser fails them instead.

Fixtures:
- ``browser``: one Chromium for the session;
- ``guard``: the origins the test's pages may request (``guard.allow(server.issuer)``) and the
  client redirect URIs answered with a stub page; a request anywhere else fails the test;
- ``phone``: a page in a fresh context 390 x 844 (a phone, touch, mobile viewport);
  ``desktop``: the same at 1280 x 800; console errors (a CSP violation, a script error) fail;
- ``shots``: ``shots(page, "step")`` saves test-artifacts/browser/<test>/<NN>-step.png;
- ``demo``: the whole demo started by its launcher on free ports (skipped while
  trustanchor/demo/__main__.py does not exist).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser_harness import (
    CHROMIUM,
    DESKTOP,
    LAUNCH_ARGS,
    PHONE,
    REQUIRE_ENV,
    ConsoleWatch,
    OriginGuard,
    Shots,
    browser_problem,
    browser_required,
)
from demo_process import RunningDemo, launcher_problem, running_demo

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HERE = Path(__file__).parent
PROBLEM = browser_problem()


def pytest_report_header() -> str:
    if PROBLEM is None:
        return f"browser tests: Chromium at {CHROMIUM}"
    if browser_required():
        return f"browser tests: FAIL ({REQUIRE_ENV} is set): {PROBLEM}"
    return f"browser tests: skipped: {PROBLEM}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """Before any other fixture of the session (the browser, the demo)."""
    if PROBLEM is None:
        return
    if browser_required():
        pytest.fail(f"{REQUIRE_ENV} is set but {PROBLEM}")
    pytest.skip(PROBLEM)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives Chromium a fresh, empty user-data directory of its own.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def guard() -> OriginGuard:
    return OriginGuard()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


def _page(browser: Browser, guard: OriginGuard, **options: Any) -> Iterator[Page]:
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    guard.install(context)
    console = ConsoleWatch()
    page = context.new_page()
    console.install(page)
    context.on("page", console.install)  # pages the test opens later
    try:
        yield page
    finally:
        context.close()
    assert guard.foreign == [], f"requests to origins other than {guard.allowed}: {guard.foreign}"
    assert console.problems == [], console.problems


@pytest.fixture
def phone(browser: Browser, guard: OriginGuard) -> Iterator[Page]:
    yield from _page(browser, guard, viewport=PHONE, is_mobile=True, has_touch=True)


@pytest.fixture
def desktop(browser: Browser, guard: OriginGuard) -> Iterator[Page]:
    yield from _page(browser, guard, viewport=DESKTOP)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """The demo as ``./scripts/demo`` starts it (service + wallet, bank and ledger), once."""
    problem = launcher_problem()
    if problem:
        pytest.skip(problem)
    directory = tmp_path_factory.mktemp("demo")
    with running_demo(directory / "state", directory / "demo.log") as running:
        yield running
