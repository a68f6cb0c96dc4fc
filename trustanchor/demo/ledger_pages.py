"""The demo ledger's HTTP side (``/ledger``): ``POST /ledger/transfers`` executes one transfer
per service-approved, DPoP-bound token (:class:`trustanchor.demo.ledger_desk.DemoLedger`), and
``GET /ledger/`` shows the balances of the CBDC wallets and the latest transfers and refusals."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from trustanchor.demo.ledger_desk import MAX_BODY, DemoLedger
from trustanchor.demo.page_context import translator
from trustanchor.demo.people import load_people

blueprint = Blueprint("demo_ledger", __name__)


def ledger() -> DemoLedger:
    value: DemoLedger = current_app.extensions["demo_ledger"]
    return value


@blueprint.post("/transfers")
def transfers() -> Any:
    if request.mimetype != "application/json":
        response = jsonify(
            {"error": "invalid_request", "error_description": "the body must be application/json"}
        )
        response.status_code = 415
        return response
    if request.content_length is None or request.content_length > MAX_BODY:
        response = jsonify(
            {"error": "invalid_request", "error_description": "the body is missing or too large"}
        )
        response.status_code = 413
        return response
    answer = ledger().execute(
        authorization=request.headers.getlist("Authorization") or None,
        dpop=request.headers.getlist("DPoP") or None,
        body=request.get_data(cache=False),
    )
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/")
def overview() -> Any:
    book = ledger().book
    people = {p.id: p for p in load_people()}
    accounts = book.accounts()
    names = {
        a.account_id: people[a.owner].display_name if a.owner in people else None for a in accounts
    }
    t = translator()
    entries = []
    for entry in book.journal(limit=50):
        reason_text = None
        if entry.reason:
            key = f"ledger.reasons.{entry.reason}"
            reason_text = t(key) if t.has(key) else t("ledger.reasons.generic")
        entries.append((entry, reason_text))
    return render_template("ledger/overview.html", accounts=accounts, names=names, entries=entries)
