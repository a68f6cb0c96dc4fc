"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright
(the Python package only: Playwright never downloads a browser of its own here).

- :func:`browser_problem` says why the browser tests cannot run on this machine (or ``None``);
- :data:`LAUNCH_ARGS`: flags for a machine without a display or outside network (Playwright's
  ``launch`` gives every run a fresh, empty user-data directory of its own);
- :class:`OriginGuard`: every request a page makes goes to an allowed origin, or the test fails.
  A client's redirect URI (``https://bank.example/callback``) is answered with a stub page, so the
  browser never leaves the machine;
- :class:`ConsoleWatch`: errors in a page's console (a CSP violation, a script error) fail it;
- :class:`Shots`: screenshots of each step under ``test-artifacts/browser/<test>/``.

Playwright is imported only where a browser is started, so this module imports without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Route

# Debian's package; CHROMIUM_EXECUTABLE names another build (not TRUSTANCHOR_*: the service's
# configuration refuses unknown TRUSTANCHOR_ variables, and the demo's processes inherit ours).
CHROMIUM = Path(os.environ.get("CHROMIUM_EXECUTABLE", "/usr/bin/chromium"))
REQUIRE_ENV = "TRUSTANCHOR_REQUIRE_BROWSER"
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, as a sentence saying what to install."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
    if importlib.util.find_spec("playwright") is None:
        return (
            "the playwright Python package is not installed: .venv/bin/pip install -e '.[test]' "
            "(never `playwright install`: the tests use Debian's chromium)"
        )
    return None


def browser_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


STUB_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Client callback</title>'
    '</head><body><p id="client-callback">The client received the answer.</p></body></html>'
)


@dataclass
class OriginGuard:
    """Lets through requests to ``allowed`` origins only. A URL starting with one of ``stubs``
    (a client's redirect URI, which lives elsewhere) is answered here with a stub page; anything
    else is aborted and recorded in ``foreign``, which the fixture turns into a failure."""

    allowed: set[str] = field(default_factory=set)
    stubs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def allow(self, *urls: str) -> None:
        self.allowed.update(origin(url) for url in urls)

    def stub(self, url_prefix: str) -> None:
        self.stubs.append(url_prefix)

    def install(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)
        # Every request is seen here, also one that follows a redirect (which a route handler
        # may not be asked about).
        context.on("request", self._seen)

    def _verdict(self, url: str) -> str:
        if origin(url) in self.allowed:
            return "allowed"
        if any(url.startswith(prefix) for prefix in self.stubs):
            return "stub"
        return "foreign"

    def _seen(self, request: Request) -> None:
        if self._verdict(request.url) == "foreign":
            entry = f"{request.method} {request.url}"
            if entry not in self.foreign:
                self.foreign.append(entry)

    def _route(self, route: Route) -> None:
        verdict = self._verdict(route.request.url)
        if verdict == "allowed":
            route.continue_()
        elif verdict == "stub":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=STUB_PAGE)
        else:
            route.abort("blockedbyclient")


# Chromium reports an HTTP error status of any load (the error pages are 400/404 on purpose) as a
# console error; that is not a problem of the page.
_EXPECTED_CONSOLE = re.compile(r"^Failed to load resource: the server responded with a status")


@dataclass
class ConsoleWatch:
    """Console errors and uncaught exceptions of the pages of one context."""

    problems: list[str] = field(default_factory=list)

    def install(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not _EXPECTED_CONSOLE.match(message.text):
            self.problems.append(f"console: {message.text}")


class Shots:
    """Screenshots of one test, numbered in the order taken:
    ``test-artifacts/browser/<test>/<NN>-<step>.png`` (emptied when the test starts)."""

    def __init__(self, test_name: str) -> None:
        self.directory = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        self.taken: list[Path] = []

    def __call__(self, page: Page, step: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-")
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path
