"""The audit integrator under concurrency and failure, its wiring into start-up and the app
(SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.server import test_settings
from test_audit_tree import NOW, ORIGIN, append, issued

from trustanchor.audit import merkle
from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.bootstrap import StartupRefused, initialise
from trustanchor.clock import FixedClock, SystemClock
from trustanchor.keystore.audit_key import (
    AuditKey,
    generate_audit_key,
    list_audit_keys,
    load_audit_key,
)
from trustanchor.keystore.signing_keys import generate_key
from trustanchor.services.audit_log import AuditIntegrator, AuditLog
from trustanchor.services.container import build_services
from trustanchor.storage import audit_repo
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade
from trustanchor.storage.tables import audit_checkpoints, audit_leaves

STRONG = "k3v9-Wq8zP1x-L0m2N4b6V8c0X2z4A6s8D0f2G4h6"


@pytest.fixture
def key(tmp_path: Path) -> AuditKey:
    generate_audit_key(tmp_path / "keys", name=ORIGIN, now=NOW)
    return load_audit_key(tmp_path / "keys")


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def checkpointed_size(log: AuditLog) -> int:
    return log.latest_checkpoint().checkpoint.size


def test_racing_integrators_and_appenders_keep_one_tree(database: Database, key: AuditKey) -> None:
    """Appends run while two integrators race: no leaf is lost or integrated twice, checkpoint
    sizes strictly increase, and each checkpoint is consistent with the previous one."""
    log = AuditLog(database, key, SystemClock(), batch_size=7)
    appenders, per_appender = 4, 15
    stop = threading.Event()
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        try:
            for i in range(per_appender):
                append(database, n * 1000 + i, 1)
        except BaseException as exc:
            errors.append(exc)

    def integrator() -> None:
        try:
            while not stop.is_set():
                log.integrate()
        except BaseException as exc:
            errors.append(exc)

    racers = [threading.Thread(target=integrator) for _ in range(2)]
    writers = [threading.Thread(target=appender, args=(n,)) for n in range(appenders)]
    for thread in racers + writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    stop.set()
    for thread in racers:
        thread.join(60)
    assert not errors, errors
    log.integrate_pending()

    total = appenders * per_appender
    with database.reader() as conn:
        indexes = conn.execute(select(audit_leaves.c.tree_index)).scalars().all()
        rows = conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.size)).all()
    assert sorted(indexes) == list(range(total))  # every leaf exactly once, no gap
    sizes = [row.size for row in rows]
    assert sizes == sorted(set(sizes)) and sizes[-1] == total
    checkpoints = [verify_checkpoint(row.signed_note, key.verifier()) for row in rows]
    for old, new in itertools.pairwise(checkpoints):
        proof = log.consistency_proof(old.size, new.size)
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    assert log.verify_stored_log().size == total


def test_background_integrator_covers_appends_within_a_second(
    database: Database, key: AuditKey
) -> None:
    log = AuditLog(database, key, SystemClock(), batch_size=10_000)
    integrator = AuditIntegrator(log, interval_ms=100)
    integrator.start()
    try:
        append(database, 0, 5)
        started = time.monotonic()
        wait_for(lambda: checkpointed_size(log) == 5, timeout=5)
        assert time.monotonic() - started < 1.0
        append(database, 5, 3)
        wait_for(lambda: checkpointed_size(log) == 8, timeout=5)
    finally:
        integrator.stop()
    assert not integrator.running
    append(database, 8, 1)
    time.sleep(0.3)
    assert checkpointed_size(log) == 8  # stopped means stopped


def test_integrator_survives_database_failures_and_recovers(
    tmp_path: Path, key: AuditKey, caplog: pytest.LogCaptureFixture
) -> None:
    database = Database(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables yet
    log = AuditLog(database, key, FixedClock(NOW), batch_size=100)
    integrator = AuditIntegrator(log, interval_ms=10, max_backoff=0.05)
    with caplog.at_level(logging.ERROR, logger="trustanchor.audit"):
        integrator.start()
        try:
            wait_for(lambda: any("audit integration failed" in r.message for r in caplog.records))
            assert integrator.running
            upgrade(database)
            append(database, 0, 3)
            wait_for(lambda: checkpointed_size(log) == 3)
        finally:
            integrator.stop()
            database.dispose()


# --- start-up and the app -----------------------------------------------------------------


def test_initialise_generates_the_audit_key_named_like_the_origin(
    tmp_path: Path, database_url: str
) -> None:
    settings = test_settings(tmp_path, database_url, port=8000)
    db = Database(database_url)
    messages = initialise(settings, db, now=NOW, generate_keys=True)
    assert settings.audit_origin == "127.0.0.1/trustanchor-audit"
    assert f"generated audit key {settings.audit_origin}+" in " ".join(messages)
    assert [k.name for k in list_audit_keys(settings.service.keys_dir)] == [settings.audit_origin]
    assert "generated audit key" not in " ".join(
        initialise(settings, db, now=NOW + 1, generate_keys=True)
    )
    moved = dataclasses.replace(
        settings, audit=dataclasses.replace(settings.audit, origin="elsewhere/audit")
    )
    with pytest.raises(StartupRefused, match="origin never changes"):
        initialise(moved, db, now=NOW, generate_keys=True)
    db.dispose()


def test_production_refuses_to_start_without_an_audit_key(
    tmp_path: Path, database_url: str
) -> None:
    settings = test_settings(tmp_path, database_url, port=8000)
    db = Database(database_url)
    generate_key(settings.service.keys_dir, alg="ES256", now=NOW, demo=False)
    service = dataclasses.replace(
        settings.service,
        mode="production",
        issuer="https://as.example",
        pairwise_secret=STRONG,
        cookie_secret=STRONG,
    )
    production = dataclasses.replace(settings, service=service)
    with pytest.raises(StartupRefused, match=r"no audit key .*trustanchor init"):
        initialise(production, db, now=NOW, generate_keys=False)
    assert list_audit_keys(settings.service.keys_dir) == []
    db.dispose()


def test_the_app_runs_an_integrator_and_stops_it(tmp_path: Path, database_url: str) -> None:
    from trustanchor.web.app import create_app

    settings = test_settings(
        tmp_path, database_url, port=8000, overrides={"audit": {"checkpoint_interval_ms": 50}}
    )
    db = Database(database_url)
    initialise(settings, db, now=int(time.time()), generate_keys=True)
    with db.reader() as conn:  # init records its key generation (operator_change entries)
        before = conn.execute(select(func.count()).select_from(audit_leaves)).scalar_one()
    services = build_services(settings, db=db)
    assert services.audit.origin == settings.audit_origin
    quiet = create_app(services=services, audit_integrator=False)
    assert "trustanchor.audit_integrator" not in quiet.extensions
    app = create_app(services=services)
    integrator = app.extensions["trustanchor.audit_integrator"]
    try:
        assert integrator.running
        with db.transaction() as conn:
            audit_repo.append(conn, issued(1))
        wait_for(lambda: checkpointed_size(services.audit) == before + 1, timeout=5)
    finally:
        integrator.stop()
    assert not integrator.running
    with db.reader() as conn:
        assert conn.execute(select(func.count()).select_from(audit_leaves)).scalar() == before + 1
    db.dispose()
