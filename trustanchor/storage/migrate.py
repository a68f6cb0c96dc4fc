"""Schema migrations (Alembic), run programmatically by ``trustanchor init`` and at start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from trustanchor.storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def revision(db: Database, message: str) -> None:  # pragma: no cover - developer tool
    """Autogenerate a new migration from the difference between tables.py and ``db``."""
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
