"""The landing page and static files (served by the app so no external asset is needed).

In demo mode the landing page is the demo's front door: every part of the demo with one sentence
each (the demo wallet, bank and ledger at ``demo.parties_url``, the auditor console, the holders'
account links, discovery and JWKS) and the trust anchors with the anchor sets they belong to.
Elsewhere it stays the short list of the service's public documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, send_from_directory

from trustanchor.services.container import Services
from trustanchor.web.blueprints import current_services
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("pages", __name__)
STATIC = Path(__file__).parent / "static"
_ALLOWED = {"style.css", "poll.js", "local-time.js"}


@dataclass(frozen=True, slots=True)
class DemoPart:
    """One entry of the demo landing page: ``key`` names its texts (``demo.parts.<key>.*``)."""

    key: str
    url: str


@dataclass(frozen=True, slots=True)
class DemoAnchor:
    name: str
    level: str
    sets: tuple[str, ...]


@blueprint.get("/")
def index() -> Any:
    services = current_services()
    if services.settings.service.mode != "demo":
        return render_page("index.html")
    lang = language()
    return render_page(
        "demo_index.html",
        parties=_parties(services.settings.demo.parties_url),
        service_parts=_service_parts(),
        anchors=_anchors(services, lang),
    )


def _parties(parties_url: str) -> list[DemoPart]:
    """The demo parties' pages, or none when the demo was started without them."""
    if not parties_url:
        return []
    return [
        DemoPart("wallet", f"{parties_url}/wallet/"),
        DemoPart("card", f"{parties_url}/card/"),
        DemoPart("bank", f"{parties_url}/bank/"),
        DemoPart("ledger", f"{parties_url}/ledger/"),
        DemoPart("branch", f"{parties_url}/branch/"),
    ]


def _service_parts() -> list[DemoPart]:
    return [
        DemoPart("auditor", "/auditor/"),
        DemoPart("my_links", "/my/links"),
        DemoPart("discovery", "/.well-known/openid-configuration"),
        DemoPart("jwks", "/jwks"),
    ]


def _anchors(services: Services, lang: str) -> list[DemoAnchor]:
    sets = {anchor_set.id: anchor_set.name(lang) for anchor_set in services.anchors.anchor_sets()}
    return [
        DemoAnchor(
            name=anchor.name(lang),
            level=anchor.assurance_level,
            sets=tuple(sets.get(set_id, set_id) for set_id in anchor.anchor_sets),
        )
        for anchor in services.anchors.active()
    ]


@blueprint.get("/static/<name>")
def static_file(name: str) -> Any:
    if name not in _ALLOWED:
        abort(404)
    response = send_from_directory(STATIC, name, max_age=3600)
    return response
