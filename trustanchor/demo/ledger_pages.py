"""The demo ledger's HTTP side (``/ledger``): ``POST /ledger/transfers`` executes one transfer
per service-approved, DPoP-bound token and ``POST /ledger/fundings`` one movement between a
holder's deposit account and CBDC wallet (:class:`trustanchor.demo.ledger_desk.DemoLedger`);
``GET /ledger/`` shows the balances of the CBDC wallets and the latest transfers, movements and
refusals: amounts as the bank's pages write them (``5,000 JPY``, in Japanese ``5,000円``), times
in a ``<time datetime=… data-local>`` element that the service's ``static/local-time.js``
(served here, from this origin, at ``/ledger/local-time.js``) rewrites in the viewer's time
zone; without script the UTC text stays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, send_from_directory
from markupsafe import Markup

from trustanchor.demo.ledger_desk import MAX_BODY, DemoLedger, LedgerAnswer
from trustanchor.demo.page_context import language, money, translator, when
from trustanchor.demo.people import LocalText, load_people
from trustanchor.ledger.token_check import HeaderValues

blueprint = Blueprint("demo_ledger", __name__)
# The service's script for times in the viewer's zone, served by this app (never loaded from
# the service's origin: the parties' pages allow scripts of their own origin only).
LOCAL_TIME_SCRIPT = Path(__file__).resolve().parent.parent / "web" / "static" / "local-time.js"


def ledger() -> DemoLedger:
    value: DemoLedger = current_app.extensions["demo_ledger"]
    return value


def _answer(execute: Callable[..., LedgerAnswer]) -> Any:
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
    authorization: HeaderValues = request.headers.getlist("Authorization") or None
    dpop: HeaderValues = request.headers.getlist("DPoP") or None
    answer = execute(authorization=authorization, dpop=dpop, body=request.get_data(cache=False))
    response = jsonify(answer.body)
    response.status_code = answer.status
    response.headers.update(answer.headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def amount_text(amount: str | None, currency: str | None) -> str:
    """An amount as the page's language writes it (the bank's pages alike): ``5,000 JPY``, in
    Japanese ``5,000円``."""
    if not amount or not currency:
        return ""
    if language() == "ja" and currency == "JPY":
        return money(amount) + "円"
    return money(amount, currency)


def local_time(epoch: int | None) -> Markup:
    """A time for people: the UTC text in a ``<time>`` element that local-time.js rewrites in
    the viewer's time zone."""
    if epoch is None:
        return Markup("")
    iso = datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" data-local>{}</time>').format(iso, when(epoch))


@blueprint.context_processor
def _ledger_template_context() -> dict[str, Any]:
    return {"amount_text": amount_text, "local_time": local_time}


@blueprint.get("/local-time.js")
def local_time_script() -> Any:
    return send_from_directory(
        LOCAL_TIME_SCRIPT.parent, LOCAL_TIME_SCRIPT.name, mimetype="text/javascript", max_age=300
    )


@blueprint.post("/transfers")
def transfers() -> Any:
    return _answer(ledger().execute)


@blueprint.post("/fundings")
def fundings() -> Any:
    return _answer(ledger().execute_funding)


def _reason_text(reason: str | None) -> str | None:
    if not reason:
        return None
    t = translator()
    key = f"ledger.reasons.{reason}"
    return t(key) if t.has(key) else t("ledger.reasons.generic")


@blueprint.get("/")
def overview() -> Any:
    book = ledger().book
    people = {p.id: p for p in load_people()}
    accounts = book.accounts()
    names = {
        a.account_id: people[a.owner].display_name if a.owner in people else None for a in accounts
    }
    # The wallet's label in the viewer's language, from the demo data the bank opened it with
    # (the book keeps the English one).
    labels: dict[str, LocalText] = {}
    for account in accounts:
        owner = people.get(account.owner)
        for held in owner.accounts if owner is not None else ():
            if held.kind == "cbdc_wallet" and held.label.en == account.label:
                labels[account.account_id] = held.label
    entries = [(entry, _reason_text(entry.reason)) for entry in book.journal(limit=50)]
    movements = [(entry, _reason_text(entry.reason)) for entry in book.fundings(limit=50)]
    return render_template(
        "ledger/overview.html",
        accounts=accounts,
        names=names,
        labels=labels,
        entries=entries,
        movements=movements,
    )
