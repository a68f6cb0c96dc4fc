"""The demo parties' database and the bank and ledger objects over it (no Flask), shared by the
parties' web app and the launcher's seed step.

One SQLite file, ``<state_dir>/parties.db`` (WAL; writers wait up to 10 s for each other). Each
part creates its own tables, prefixed ``bank_`` and ``ledger_`` (the wallet's are ``wallet_``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from trustanchor.demo.bank.client import BankClient
from trustanchor.demo.bank.desk import BankDesk
from trustanchor.demo.bank.store import BankStore
from trustanchor.demo.ledger_book import LedgerBook
from trustanchor.demo.ledger_desk import DemoLedger
from trustanchor.demo.people import load_people
from trustanchor.demo.site import DemoSite

DATABASE_FILE = "parties.db"


def parties_engine(state_dir: Path) -> Engine:
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{state_dir / DATABASE_FILE}", connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return engine


def open_bank(site: DemoSite, engine: Engine) -> tuple[BankDesk, DemoLedger]:
    """The bank's desk and the ledger over ``engine``, their tables created."""
    book = LedgerBook(engine, site.clock)
    book.create_tables()
    ledger = DemoLedger(site, engine, book)
    ledger.create_tables()
    store = BankStore(engine, site.clock, site.randomness)
    store.create_tables()
    # The online bank's customers sign in with their phone; those without one are served at
    # the branch's counter (trustanchor.demo.branch, its own client of the service).
    online = [p for p in load_people() if p.smartphone]
    desk = BankDesk(online, store, book, BankClient.from_site(site))
    return desk, ledger
