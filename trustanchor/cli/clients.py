"""``trustanchor clients …``: list, show, add and remove registered OAuth clients.

Clients declared in the configuration (``[[clients]]``) are applied at init/start; these commands
manage the registry directly, validated by the same rules (oauth/client_metadata.py).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from trustanchor.cli.context import CliContext, database_errors, pass_context
from trustanchor.cli.table import echo_table
from trustanchor.oauth.client_metadata import client_from_declaration, client_to_metadata
from trustanchor.services.audit_trail import operator_change, record, record_operator_change
from trustanchor.services.client_registry import ClientRegistry, TooManyClients, upsert_row
from trustanchor.storage.database import StorageUnavailable


@click.group()
def clients() -> None:
    """Manage registered OAuth clients."""


@clients.command("list")
@pass_context
def list_clients(ctx: CliContext) -> None:
    """List registered clients."""
    with _storage(ctx):
        registered = _repository(ctx).list()
    if not registered:
        click.echo("No clients registered. Add one with: trustanchor clients add --file FILE")
        return
    # A counter terminal's branch role is security-relevant: shown in the list, not only in
    # ``clients show`` (where ``trustanchor_branch`` is part of the metadata).
    echo_table(
        ("client_id", "type", "auth method", "branch", "name"),
        [
            (
                client.client_id,
                client.client_type,
                client.auth_method,
                client.branch.branch_id if client.branch is not None else "",
                client.name("en"),
            )
            for client in registered
        ],
    )


@clients.command("show")
@click.argument("client_id")
@pass_context
def show_client(ctx: CliContext, client_id: str) -> None:
    """Print a client's registration as JSON (never secrets)."""
    with _storage(ctx):
        client = _repository(ctx).get(client_id)
    if client is None:
        raise _no_such_client(client_id)
    document = {**client_to_metadata(client), "updated_at": client.updated_at}
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True))


@clients.command("add")
@click.option(
    "--file",
    "file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TOML file with one [[clients]] table or the client's keys at top level.",
)
@pass_context
def add_client(ctx: CliContext, file: Path) -> None:
    """Register a client (or update it) from a TOML declaration."""
    declaration = _read_declaration(file)
    try:
        client, digest = client_from_declaration(
            declaration, mode=ctx.settings.service.mode, base_dir=file.parent
        )
    except ValueError as exc:
        raise click.ClickException(
            f"{file}: {exc}\nFix the declaration and run the command again."
        ) from None
    with _storage(ctx):
        existed = _repository(ctx).get(client.client_id) is not None
        now = ctx.clock.now()
        # The registration and its audit leaf commit together (or not at all).
        with ctx.db.transaction() as conn:
            try:
                written = upsert_row(conn, client, digest, now)
            except TooManyClients as exc:
                raise click.ClickException(str(exc)) from None
            if written:
                record(
                    conn,
                    operator_change(
                        at=now,
                        what="client",
                        id=client.client_id,
                        action="updated" if existed else "added",
                    ),
                )
    if not written:
        click.echo(f"Client {client.client_id} is already registered with this declaration.")
    else:
        click.echo(f"Client {client.client_id} {'updated' if existed else 'added'}.")
    if _declared_in_config(ctx, client.client_id):
        click.echo(
            f"Note: {client.client_id} is also declared in the configuration; "
            "that declaration is applied again at the next start.",
            err=True,
        )


@clients.command("remove")
@click.argument("client_id")
@pass_context
def remove_client(ctx: CliContext, client_id: str) -> None:
    """Remove a client. Its tokens stop working at their next check of the registry."""
    with _storage(ctx):
        removed = _repository(ctx).remove(client_id)
    if not removed:
        raise _no_such_client(client_id)
    # ClientRegistry.remove commits by itself: the leaf follows in a transaction of its own.
    try:
        record_operator_change(
            ctx.db, at=ctx.clock.now(), what="client", id=client_id, action="removed"
        )
    except StorageUnavailable as exc:
        raise click.ClickException(
            f"client {client_id} removed, but its audit log entry could not be written ({exc}); "
            "the removal is in effect and NOT in the audit log"
        ) from exc
    click.echo(f"Client {client_id} removed.")
    if _declared_in_config(ctx, client_id):
        click.echo(
            f"Note: {client_id} is still declared in the configuration and will be registered "
            "again at the next start; delete its [[clients]] table to remove it for good.",
            err=True,
        )


def _repository(ctx: CliContext) -> ClientRegistry:
    return ClientRegistry(ctx.db, cache_ttl=0, clock=ctx.clock)


@contextmanager
def _storage(ctx: CliContext) -> Iterator[None]:
    """Turn an unreachable or uninitialised database into advice instead of a traceback."""
    try:
        with database_errors(ctx):
            yield
    except ValueError as exc:  # a stored row that no longer validates
        raise click.ClickException(
            f"a stored client registration is invalid ({exc}); "
            "register it again with `trustanchor clients add --file FILE`."
        ) from exc


def _read_declaration(file: Path) -> Mapping[str, Any]:
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot read TOML ({exc})") from exc
    if "clients" not in data:
        return data
    tables = data["clients"]
    if set(data) != {"clients"} or not isinstance(tables, list) or len(tables) != 1:
        raise click.ClickException(
            f"{file}: give exactly one [[clients]] table (or the client's keys at top level); "
            "add several clients with one command each."
        )
    declaration = tables[0]
    if not isinstance(declaration, dict):
        raise click.ClickException(f"{file}: [[clients]] must be a table")
    return declaration


def _no_such_client(client_id: str) -> click.ClickException:
    return click.ClickException(
        f"no client {client_id!r} is registered; "
        "`trustanchor clients list` shows the registered ones."
    )


def _declared_in_config(ctx: CliContext, client_id: str) -> bool:
    return any(decl.get("client_id") == client_id for decl in ctx.settings.clients)
