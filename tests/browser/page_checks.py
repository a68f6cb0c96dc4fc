"""What every page of the service must be, checked in the real browser on the rendered page:

- ``<html lang>`` names the page's language and there is a non-empty ``<title>``;
- every form control has a label (a ``<label>``, ``aria-label`` or ``aria-labelledby``) and every
  button, link and summary has an accessible name;
- nothing is wider than the window: no horizontal scrolling on a 390 px phone;
- keyboard focus is visible (an outline) wherever Tab leads.

Requests to other origins and console errors are watched for the whole test by the fixtures
(browser_harness.OriginGuard, ConsoleWatch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from png_pixels import grey

if TYPE_CHECKING:
    from playwright.sync_api import Page

_UNLABELLED = r"""() => {
  const describe = (el) => el.outerHTML.slice(0, 160);
  const problems = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const labelled = (el.labels && el.labels.length > 0)
      || (el.getAttribute("aria-label") || "").trim()
      || (el.getAttribute("aria-labelledby") || "").trim();
    if (!labelled) problems.push("unlabelled control: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href], summary")) {
    const name = (el.getAttribute("aria-label") || el.innerText || el.textContent || "").trim();
    if (!name) problems.push("no accessible name: " + describe(el));
  }
  for (const el of document.querySelectorAll("svg")) {
    const labelledBy = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .map((id) => (document.getElementById(id) || {}).textContent || "").join(" ");
    const name = (el.getAttribute("aria-label") || labelledBy).trim();
    if (el.getAttribute("role") === "img" && !name) problems.push("unnamed image: " + describe(el));
  }
  return problems;
}"""

_WIDTH = """() => ({
  scroll: document.scrollingElement.scrollWidth,
  window: window.innerWidth,
  widest: [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
      + (el.className && typeof el.className === "string" ? "." + el.className : "")),
})"""

_FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.innerText || el.getAttribute("aria-label") || "").trim().slice(0, 80),
    outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    id: el.id,
    classes: el.className || "",
  };
}"""


def check_page(page: Page, *, lang: str | None = None) -> None:
    """The checks every page passes (see the module text); ``lang``: the expected language,
    waited for (after a click on the language switch the old page may still be showing)."""
    if lang is not None:
        page.wait_for_selector(f"html[lang={lang}]", state="attached")
    page_lang = page.evaluate("document.documentElement.lang")
    assert page_lang in ("en", "ja"), f"{page.url}: <html lang={page_lang!r}>"
    if lang is not None:
        assert page_lang == lang, f"{page.url}: <html lang={page_lang!r}>, expected {lang}"
    assert page.title().strip(), f"{page.url}: no <title>"
    problems = page.evaluate(_UNLABELLED)
    assert problems == [], f"{page.url}: {problems}"
    assert_no_horizontal_scroll(page)


def assert_no_horizontal_scroll(page: Page) -> None:
    width = page.evaluate(_WIDTH)
    assert width["scroll"] <= width["window"], f"{page.url}: wider than the window: {width}"


def focused(page: Page) -> dict[str, Any] | None:
    """The element that has keyboard focus (tag, text, id, classes, whether it shows an
    outline), or ``None`` when nothing has."""
    result: dict[str, Any] | None = page.evaluate(_FOCUS)
    return result


def tab_to(page: Page, selector: str, *, limit: int = 40) -> dict[str, Any]:
    """Press Tab until the focused element matches ``selector``; check that focus is visible on
    every element passed on the way. Fails after ``limit`` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        current = focused(page)
        if current is None:
            continue
        assert current["outline"], f"{page.url}: focus is not visible on {current}"
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return current
    raise AssertionError(f"{page.url}: Tab never reached {selector}")


def decode_qr(page: Page) -> str:
    """The QR code on the screen, read by a QR reader from a screenshot of it."""
    zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp not installed (test extra)")
    image = grey(page.locator(".qr svg").screenshot())
    results = zxingcpp.read_barcodes(image.view())
    assert len(results) == 1, f"{len(results)} QR codes read from the screen"
    return str(results[0].text)
