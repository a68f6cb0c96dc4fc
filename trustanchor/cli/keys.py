"""``trustanchor keys``: the service's own signing keys (generate, rotate, list).

Private keys never leave ``<keys_dir>/signing/`` (PEM files, mode 0600); these commands print only
kids, algorithms and dates. Keys generated outside production mode are marked demo, so a
production start can refuse them.

``generate`` and ``rotate`` record ``operator_change`` entries in the audit log first and change
the key directory only once they are committed (services/key_changes.py), so they need the
database: ``trustanchor init`` creates it, and the first key with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from trustanchor.cli.context import CliContext, pass_context
from trustanchor.keystore.signing_keys import (
    SIGNING_DIR,
    KeyStoreError,
    SigningKey,
    SigningKeyStore,
)
from trustanchor.services.audit_trail import signing_key_ref
from trustanchor.services.key_changes import (
    KeyChangeIncomplete,
    KeyChangeNotRecorded,
    generate_signing_key,
    rotate_signing_keys,
)


@click.group()
def keys() -> None:
    """The service's signing keys (tokens, ID tokens, request objects)."""


@keys.command()
@click.option("--force", is_flag=True, help="Add a key even though one is already active.")
@pass_context
def generate(ctx: CliContext, force: bool) -> None:
    """Create a signing key of the configured algorithm (tokens.signing_alg)."""
    settings = ctx.settings
    keys_dir = settings.service.keys_dir
    active = [k for k in _open(ctx).all() if k.retired_at is None]
    if active and not force:
        raise click.ClickException(
            f"a signing key is already active ({active[-1].kid}). To replace it run "
            "`trustanchor keys rotate` (the old key stays published for "
            f"{settings.tokens.key_retention} s); --force adds a second active key."
        )
    demo = not settings.is_production
    try:
        kid = generate_signing_key(
            ctx.db, keys_dir, alg=settings.tokens.signing_alg, now=ctx.clock.now(), demo=demo
        )
    except KeyChangeNotRecorded as exc:
        raise _not_recorded(ctx, exc) from exc
    except KeyChangeIncomplete as exc:
        raise click.ClickException(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise click.ClickException(f"cannot create a key in {keys_dir}: {exc}") from exc
    click.echo(f"created signing key {kid} ({settings.tokens.signing_alg})")
    _echo_recorded(kid, "generated")
    click.echo(f"private key: {Path(keys_dir) / SIGNING_DIR / (kid + '.pem')} (mode 0600)")
    if demo:
        click.echo(f"marked demo: service.mode is {settings.service.mode!r}, not production")


@keys.command("rotate")
@pass_context
def rotate_command(ctx: CliContext) -> None:
    """Make a new current key; retire the previous ones (still published for key_retention)."""
    settings = ctx.settings
    now = ctx.clock.now()
    try:
        kid, retired = rotate_signing_keys(
            ctx.db,
            settings.service.keys_dir,
            alg=settings.tokens.signing_alg,
            now=now,
            demo=not settings.is_production,
        )
    except KeyChangeNotRecorded as exc:
        raise _not_recorded(ctx, exc) from exc
    except KeyChangeIncomplete as exc:
        raise click.ClickException(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise click.ClickException(f"cannot rotate keys: {exc}") from exc
    click.echo(f"new current signing key {kid} ({settings.tokens.signing_alg})")
    _echo_recorded(kid, "generated")
    until = _when(now + settings.tokens.key_retention)
    for old in retired:
        click.echo(f"retired {old}: still published until {until} so its tokens verify")
        _echo_recorded(old, "retired")
    if not retired:
        click.echo("no previous key was active")
    click.echo("restart the service (or let it reload) so it signs with the new key")


@keys.command("list")
@pass_context
def list_command(ctx: CliContext) -> None:
    """Every signing key: kid, algorithm, dates, whether it is published, demo flag."""
    store = _open(ctx)
    now = ctx.clock.now()
    retention = ctx.settings.tokens.key_retention
    all_keys = store.all()
    if not all_keys:
        click.echo("no signing keys yet: run `trustanchor keys generate`")
        return
    current = store.current().kid if any(k.retired_at is None for k in all_keys) else None
    published = {k.kid for k in store.published(now)}
    click.echo(
        f"{'kid':<44} {'alg':<6} {'created':<20} {'retired':<20} {'published until':<20} state"
    )
    for key in all_keys:
        click.echo(
            f"{key.kid:<44} {key.alg:<6} {_when(key.created_at):<20} "
            f"{_when(key.retired_at):<20} {_published_until(key, retention):<20} "
            f"{_state(key, current, published)}"
        )


def _not_recorded(ctx: CliContext, exc: KeyChangeNotRecorded) -> click.ClickException:
    url = make_url(ctx.settings.service.database_url).render_as_string(hide_password=True)
    return click.ClickException(
        f"{exc}. Key changes are recorded in the audit log of the database {url} before they "
        "are made: run `trustanchor init` first (it creates the schema and the first key), or "
        "check service.database_url."
    )


def _echo_recorded(kid: str, action: str) -> None:
    """Auditors find a signing key's entries by the SHA-256 of its kid (kids are thumbprints,
    which the audit identifier shape refuses)."""
    click.echo(f"  audit log: operator_change signing_key {signing_key_ref(kid)} {action}")


def _open(ctx: CliContext) -> SigningKeyStore:
    settings = ctx.settings
    try:
        return SigningKeyStore.open(
            settings.service.keys_dir, retention=settings.tokens.key_retention
        )
    except (KeyStoreError, OSError, ValueError) as exc:
        raise click.ClickException(
            f"cannot read the signing keys in {settings.service.keys_dir}: {exc}"
        ) from exc


def _state(key: SigningKey, current: str | None, published: set[str]) -> str:
    state = (
        "current"
        if key.kid == current
        else (
            "active"
            if key.retired_at is None
            else ("retired" if key.kid in published else "expired")
        )
    )
    return state + (", demo" if key.demo else "")


def _published_until(key: SigningKey, retention: int) -> str:
    return "-" if key.retired_at is None else _when(key.retired_at + retention)


def _when(at: int | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
