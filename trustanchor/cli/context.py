"""What every CLI command shares: the settings (loaded once, lazily) and the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from trustanchor.clock import Clock, SystemClock
from trustanchor.config import ConfigError, Settings, load_settings
from trustanchor.log_setup import configure_logging
from trustanchor.randomness import Randomness, SystemRandomness
from trustanchor.storage.database import Database, StorageUnavailable


@dataclass
class CliContext:
    config_path: Path | None
    clock: Clock = field(default_factory=SystemClock)
    randomness: Randomness = field(default_factory=SystemRandomness)
    _settings: Settings | None = None
    _db: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            # the command's own log lines and Alembic's at migration time, in logging.format
            configure_logging(self._settings.logging.format, self._settings.logging.level)
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(self.settings.service.database_url)
        return self._db


pass_context = click.make_pass_decorator(CliContext)


@contextmanager
def database_errors(ctx: CliContext) -> Iterator[None]:
    """Turn an unreachable or uninitialised database into advice instead of a traceback (the
    URL shown without its password)."""
    try:
        yield
    except (StorageUnavailable, DBAPIError) as exc:
        url = make_url(ctx.settings.service.database_url).render_as_string(hide_password=True)
        raise click.ClickException(
            f"cannot use the database {url} ({exc.__class__.__name__}). "
            "Run `trustanchor init` to create or migrate it, or check service.database_url."
        ) from exc
