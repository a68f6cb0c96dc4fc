"""The demo parties' web app: one Flask app on its own origin (http://127.0.0.1:8001 by default)
hosting the demo wallet (``/wallet``), the demo bank (``/bank``) and the demo ledger
(``/ledger``), with a shared base template, ja/en switch and stylesheet (no external assets).

Each part keeps its state in the parties' SQLite database (``<state_dir>/parties.db``, tables
prefixed ``wallet_``, ``bank_``, ``ledger_``) and talks to the service only over HTTP.

    create_app(DemoSite(...))                      # tests, the launcher's child process
    python -m granian --interface wsgi --factory trustanchor.demo.parties_app:app_from_environment
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask, render_template, send_from_directory

from trustanchor.demo import branch_pages, page_context
from trustanchor.demo.bank.pages import blueprint as bank_blueprint
from trustanchor.demo.card_pages import blueprint as card_blueprint
from trustanchor.demo.card_pages import crl_blueprint as jpki_crl_blueprint
from trustanchor.demo.ekyc_op import blueprint as ekyc_blueprint
from trustanchor.demo.ekyc_op import init_app as init_ekyc_op
from trustanchor.demo.ledger_pages import blueprint as ledger_blueprint
from trustanchor.demo.parties_state import open_bank, parties_engine
from trustanchor.demo.site import DEFAULT_PARTIES_URL, DEFAULT_SERVICE_URL, DemoSite

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
# The launcher hands the site to the app's process through these (granian imports a factory).
# Not TRUSTANCHOR_*: the service refuses environment variables with that prefix it does not know.
ENV_SERVICE_URL = "DEMO_PARTIES_SERVICE_URL"
ENV_PARTIES_URL = "DEMO_PARTIES_URL"
ENV_KEYS_DIR = "DEMO_PARTIES_KEYS_DIR"
ENV_STATE_DIR = "DEMO_PARTIES_STATE_DIR"


def create_app(site: DemoSite) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(HERE / "templates"),
        static_folder=None,
    )
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    engine = parties_engine(site.state_dir)
    desk, ledger = open_bank(site, engine)
    app.extensions["demo_site"] = site
    app.extensions["demo_engine"] = engine
    app.extensions["demo_bank"] = desk
    app.extensions["demo_ledger"] = ledger
    page_context.install(app)

    app.register_blueprint(bank_blueprint, url_prefix="/bank")
    app.register_blueprint(ledger_blueprint, url_prefix="/ledger")
    app.register_blueprint(ekyc_blueprint, url_prefix="/ekyc-bank")  # the eKYC bank's OP
    init_ekyc_op(app, site)
    app.register_blueprint(card_blueprint, url_prefix="/card")  # the phone's My Number Card app
    app.register_blueprint(jpki_crl_blueprint, url_prefix="/jpki")  # the demo JPKI CA's CRLs
    app.register_blueprint(branch_pages.blueprint, url_prefix="/branch")  # a branch counter
    branch_pages.init_app(app, site)
    wallet = _wallet_module()
    if wallet is not None:
        app.register_blueprint(wallet.blueprint, url_prefix="/wallet")
        wallet.init_app(app, site)

    @app.get("/")
    def index() -> str:
        return render_template("index.html", wallet_available=wallet is not None)

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Any:
        response = send_from_directory(HERE / "static", name, max_age=300)
        return response

    return app


def _wallet_module() -> Any:
    """The demo wallet's pages (``blueprint`` + ``init_app``), when the module is there."""
    try:
        module = importlib.import_module("trustanchor.demo.wallet_pages")
    except ImportError as exc:
        log.warning("demo wallet not available: %s", exc)
        return None
    if not hasattr(module, "blueprint") or not hasattr(module, "init_app"):
        log.warning("demo wallet module has no blueprint/init_app")
        return None
    return module


def site_from_environment(environ: dict[str, str] | None = None) -> DemoSite:
    env = dict(os.environ if environ is None else environ)
    return DemoSite(
        service_url=env.get(ENV_SERVICE_URL, DEFAULT_SERVICE_URL).rstrip("/"),
        parties_url=env.get(ENV_PARTIES_URL, DEFAULT_PARTIES_URL).rstrip("/"),
        keys_dir=Path(env.get(ENV_KEYS_DIR, "keys/demo")),
        state_dir=Path(env.get(ENV_STATE_DIR, "var/demo")),
    )


def app_from_environment() -> Flask:
    """granian's ``--factory`` entry: the site from the launcher's environment variables."""
    return create_app(site_from_environment())
