"""``trustanchor keys``: the service's own signing keys (generate, rotate, list).

Private keys never leave ``<keys_dir>/signing/`` (PEM files, mode 0600); these commands print only
kids, algorithms and dates. Keys generated outside production mode are marked demo, so a
production start can refuse them.

``rotate`` publishes the next key at once and lets it sign only ``tokens.key_activation_delay``
seconds later (the previous keys sign until that instant, then stay published for
``key_retention``), so relying parties that cache the JWKS hold the new key before they see a
token it signed. Running workers re-read the key directory within a second: no restart.
``rotate --immediately`` is for a compromised key.

``rotate-audit`` replaces the audit log's checkpoint key through the log's own entries
(services/key_changes.rotate_audit_key), so auditors holding the old key can follow.

``generate`` and ``rotate`` record ``operator_change`` entries in the audit log first and change
the key directory only once they are committed (services/key_changes.py), so they need the
database: ``trustanchor init`` creates it, and the first key with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from trustanchor.audit.entries import digest
from trustanchor.cli.context import CliContext, pass_context
from trustanchor.keystore.signing_keys import (
    SIGNING_DIR,
    KeyStoreError,
    SigningKey,
    SigningKeyStore,
)
from trustanchor.ledger.keys import JWKS_MAX_AGE
from trustanchor.services.audit_trail import signing_key_ref
from trustanchor.services.key_changes import (
    AuditKeyTransitionFailed,
    KeyChangeIncomplete,
    KeyChangeNotRecorded,
    generate_signing_key,
    rotate_audit_key,
    rotate_signing_keys,
)


@click.group()
def keys() -> None:
    """The service's signing keys (tokens, ID tokens, request objects) and audit key.

    Changes reach running workers within a second, without a restart."""


@keys.command()
@click.option(
    "--force",
    is_flag=True,
    help="Add a key even though one is already active (it signs after tokens.key_activation_"
    "delay, beside the active one; prefer `keys rotate`).",
)
@pass_context
def generate(ctx: CliContext, force: bool) -> None:
    """Create a signing key of the configured algorithm (tokens.signing_alg).

    The first key signs at once; running workers pick it up within a second."""
    settings = ctx.settings
    keys_dir = settings.service.keys_dir
    now = ctx.clock.now()
    active = [k for k in _open(ctx).all() if k.retired_at is None]
    if active and not force:
        raise click.ClickException(
            f"a signing key is already active ({active[-1].kid}). To replace it run "
            "`trustanchor keys rotate` (the old key stays published for "
            f"{settings.tokens.key_retention} s); --force adds a second active key."
        )
    demo = not settings.is_production
    active_from = now + settings.tokens.key_activation_delay if active else now
    try:
        kid = generate_signing_key(
            ctx.db,
            keys_dir,
            alg=settings.tokens.signing_alg,
            now=now,
            demo=demo,
            active_from=active_from,
        )
    except KeyChangeNotRecorded as exc:
        raise _not_recorded(ctx, exc) from exc
    except KeyChangeIncomplete as exc:
        raise click.ClickException(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise click.ClickException(f"cannot create a key in {keys_dir}: {exc}") from exc
    click.echo(f"created signing key {kid} ({settings.tokens.signing_alg})")
    _echo_recorded(kid, "generated")
    if active_from > now:
        click.echo(f"published now; signs from {_when(active_from)} (in {active_from - now} s)")
    click.echo(f"private key: {Path(keys_dir) / SIGNING_DIR / (kid + '.pem')} (mode 0600)")
    if demo:
        click.echo(f"marked demo: service.mode is {settings.service.mode!r}, not production")


@keys.command("rotate")
@click.option(
    "--activate-after",
    type=click.IntRange(min=JWKS_MAX_AGE),
    default=None,
    metavar="SECONDS",
    help="Seconds between publishing the new key and its first signature "
    f"(default tokens.key_activation_delay; at least {JWKS_MAX_AGE}, the ledger module's JWKS "
    "cache lifetime).",
)
@click.option(
    "--immediately",
    is_flag=True,
    help="The new key signs at once and the old ones stop at once: for a compromised key. "
    "Relying parties with a cached JWKS refuse the new tokens until they refetch it.",
)
@pass_context
def rotate_command(ctx: CliContext, activate_after: int | None, immediately: bool) -> None:
    """Publish a new signing key now; it signs after a delay, when the previous keys retire.

    The new key is in the JWKS at once and signs from now + tokens.key_activation_delay (or
    --activate-after); until then the previous key keeps signing. Every running worker switches
    at that instant by its clock, without a restart. Retired keys stay published for
    tokens.key_retention seconds so the tokens they signed verify."""
    settings = ctx.settings
    if immediately and activate_after is not None:
        raise click.UsageError("--immediately and --activate-after exclude each other")
    now = ctx.clock.now()
    delay = 0 if immediately else (activate_after or settings.tokens.key_activation_delay)
    activate_at = now + delay
    try:
        kid, retired = rotate_signing_keys(
            ctx.db,
            settings.service.keys_dir,
            alg=settings.tokens.signing_alg,
            now=now,
            demo=not settings.is_production,
            activate_at=activate_at,
        )
    except KeyChangeNotRecorded as exc:
        raise _not_recorded(ctx, exc) from exc
    except KeyChangeIncomplete as exc:
        raise click.ClickException(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise click.ClickException(f"cannot rotate keys: {exc}") from exc
    click.echo(f"new signing key {kid} ({settings.tokens.signing_alg}): published now")
    if delay:
        click.echo(f"  signs from {_when(activate_at)} (in {delay} s)")
    else:
        click.echo("  signs now (--immediately)")
    _echo_recorded(kid, "generated")
    until = _when(activate_at + settings.tokens.key_retention)
    for old in retired:
        click.echo(
            f"retired {old}: signs until {_when(activate_at)}, published until {until} so its "
            "tokens verify"
        )
        _echo_recorded(old, "retired")
    if not retired:
        click.echo("no previous key was active")
    click.echo("running workers pick the change up within a second (no restart)")


@keys.command("rotate-audit")
@pass_context
def rotate_audit_command(ctx: CliContext) -> None:
    """Replace the audit log's checkpoint key; auditors holding the old key can follow.

    Records the new key (operator_change audit_key / audit_vkey entries), has a checkpoint
    signed by the old key cover those entries, then writes the new key: running workers sign
    every later checkpoint with it, without a restart. The old verifier key stays published
    (GET /audit/keys) with the transition: `trustanchor audit ... --pin <old vkey>` follows it.
    """
    settings = ctx.settings
    now = ctx.clock.now()
    try:
        info = rotate_audit_key(
            ctx.db,
            settings.service.keys_dir,
            name=settings.audit_origin,
            now=now,
            clock=ctx.clock,
        )
    except KeyChangeNotRecorded as exc:
        raise _not_recorded(ctx, exc) from exc
    except (KeyChangeIncomplete, AuditKeyTransitionFailed) as exc:
        raise click.ClickException(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise click.ClickException(f"cannot rotate the audit key: {exc}") from exc
    click.echo(f"new audit key {info.name}+{info.key_id_hex}")
    click.echo(f"  vkey: {info.vkey}")
    click.echo(
        f"  introduced by log entry {info.introduced_index} under the checkpoint of size "
        f"{info.introduced_size}, signed by the previous key"
    )
    click.echo(f"  audit log: operator_change audit_key {info.key_id_hex} generated")
    click.echo(f"  audit log: operator_change audit_vkey {digest(info.vkey)} generated")
    click.echo("running workers sign the next checkpoints with it (no restart)")


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
    signing = store.signing_key_at(now)
    current = signing.kid if signing is not None else None
    published = {k.kid for k in store.published(now)}
    click.echo(
        f"{'kid':<44} {'alg':<6} {'created':<20} {'signs from':<20} {'retired':<20} "
        f"{'published until':<20} state"
    )
    for key in all_keys:
        click.echo(
            f"{key.kid:<44} {key.alg:<6} {_when(key.created_at):<20} "
            f"{_when(key.signs_from):<20} {_when(key.retired_at):<20} "
            f"{_published_until(key, retention):<20} {_state(key, current, published, now)}"
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
            settings.service.keys_dir, retention=settings.tokens.key_retention, clock=ctx.clock
        )
    except (KeyStoreError, OSError, ValueError) as exc:
        raise click.ClickException(
            f"cannot read the signing keys in {settings.service.keys_dir}: {exc}"
        ) from exc


def _state(key: SigningKey, current: str | None, published: set[str], now: int) -> str:
    """current (signs now), next (published, signs later), active (may sign, another key
    signs), retiring (signs until its retirement), retired (published), expired."""
    if key.kid == current:
        state = "current" if key.retired_at is None else "current, retiring"
    elif key.signs_from > now and (key.retired_at is None or key.retired_at > key.signs_from):
        state = "next"
    elif key.retired_at is None:
        state = "active"
    elif key.retired_at > now:
        state = "retiring"
    else:
        state = "retired" if key.kid in published else "expired"
    return state + (", demo" if key.demo else "")


def _published_until(key: SigningKey, retention: int) -> str:
    return "-" if key.retired_at is None else _when(key.retired_at + retention)


def _when(at: int | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
