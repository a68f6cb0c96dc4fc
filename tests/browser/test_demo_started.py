"""The demo as ``python -m trustanchor.demo`` starts it (the ``demo`` fixture; skipped while the
launcher does not exist): the service's root page is the demo's front door and each demo party it
lists opens. The walk through the flows (login with the demo wallet, link, allowed and refused
transfers, auditor view) builds on this fixture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from browser_harness import OriginGuard, Shots
from demo_process import RunningDemo
from page_checks import check_page

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_the_root_page_leads_to_every_demo_party(
    demo: RunningDemo, phone: Page, guard: OriginGuard, shots: Shots
) -> None:
    guard.allow(demo.service_url, demo.parties_url)
    phone.goto(demo.service("/"))
    check_page(phone)
    shots(phone, "landing")
    for part in ("wallet", "bank", "ledger"):
        href = phone.locator(f"#part-{part} a").get_attribute("href")
        assert href == demo.party(f"/{part}/"), (part, href)
    for part in ("wallet", "bank", "ledger"):
        phone.goto(demo.service("/"))
        phone.click(f"#part-{part} a")
        phone.wait_for_url(demo.party(f"/{part}/**"))
        check_page(phone)
        shots(phone, part)
