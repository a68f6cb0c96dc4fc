"""The landing page and static files (served by the app so no external asset is needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, abort, send_from_directory

from trustanchor.web.rendering import render_page

blueprint = Blueprint("pages", __name__)
STATIC = Path(__file__).parent / "static"
_ALLOWED = {"style.css", "poll.js"}


@blueprint.get("/")
def index() -> Any:
    return render_page("index.html")


@blueprint.get("/static/<name>")
def static_file(name: str) -> Any:
    if name not in _ALLOWED:
        abort(404)
    response = send_from_directory(STATIC, name, max_age=3600)
    return response
