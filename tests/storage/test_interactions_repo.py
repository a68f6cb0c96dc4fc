"""Where an interaction's login answer arrived (migration 0013), at the repository level on
SQLite and PostgreSQL: a login is recorded with its transaction and device; only the same-device
return of *that* transaction marks it as answered in this browser, and a later login (a step-up)
starts over as it arrived."""

from __future__ import annotations

from trustanchor.storage import interactions_repo
from trustanchor.storage.database import Database

NOW = 1_800_000_000
AUTH = {"holder_id": "hol_1"}


def _interaction(database: Database, interaction_id: str = "int_1") -> str:
    with database.transaction() as conn:
        interactions_repo.create(
            conn,
            interaction_id,
            "bank",
            {"client_id": "bank"},
            browser_digest="d" * 64,
            now=NOW,
            expires_at=NOW + 600,
        )
    return interaction_id


def _login(database: Database, interaction_id: str, tx: str, device: str) -> bool:
    with database.transaction() as conn:
        return interactions_repo.authenticated(
            conn,
            interaction_id,
            AUTH,
            login_via="anchor",
            login_transaction=tx,
            login_device=device,
            now=NOW,
        )


def _row(database: Database, interaction_id: str) -> interactions_repo.InteractionRow:
    with database.reader() as conn:
        row = interactions_repo.get(conn, interaction_id, now=NOW)
    assert row is not None
    return row


def _returned(database: Database, interaction_id: str, tx: str) -> bool:
    with database.transaction() as conn:
        return interactions_repo.answer_reached_browser(conn, interaction_id, tx)


def test_a_login_records_its_transaction_and_where_it_arrived(database: Database) -> None:
    interaction_id = _interaction(database)
    assert _login(database, interaction_id, "tx_1", "other")
    row = _row(database, interaction_id)
    assert (row.login_transaction, row.login_device) == ("tx_1", "other")
    assert _returned(database, interaction_id, "tx_1")
    assert _row(database, interaction_id).login_device == "this"


def test_only_the_current_logins_return_marks_it(database: Database) -> None:
    interaction_id = _interaction(database)
    assert _login(database, interaction_id, "tx_1", "other")
    with database.transaction() as conn:  # a step-up: back to login, then a second login
        assert interactions_repo.require_step_up(conn, interaction_id, {"level": "high"}, now=NOW)
    assert _login(database, interaction_id, "tx_2", "other")
    assert not _returned(database, interaction_id, "tx_1")  # the first login's late return
    assert not _returned(database, "int_unknown", "tx_2")
    row = _row(database, interaction_id)
    assert (row.login_transaction, row.login_device) == ("tx_2", "other")


def test_an_sso_takeover_names_no_transaction_and_no_device(database: Database) -> None:
    interaction_id = _interaction(database)
    with database.transaction() as conn:
        assert interactions_repo.authenticated(conn, interaction_id, AUTH, login_via="sso", now=NOW)
    row = _row(database, interaction_id)
    assert (row.login_via, row.login_transaction, row.login_device) == ("sso", None, None)
