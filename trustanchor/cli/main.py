"""Entry point: ``trustanchor [--config FILE] COMMAND``."""

from __future__ import annotations

from pathlib import Path

import click

from trustanchor import __version__
from trustanchor.cli import (
    anchor_sets,
    anchors,
    audit,
    auditors,
    clients,
    identities,
    keys,
    lifecycle,
    purge,
)
from trustanchor.cli.context import CliContext


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="TRUSTANCHOR_CONFIG",
    help="Settings file, read over the defaults shipped in the package; relative paths in it "
    "are relative to its directory. Default: $TRUSTANCHOR_CONFIG; without either, the "
    "defaults and TRUSTANCHOR_<SECTION>_<KEY> environment variables alone.",
)
@click.version_option(__version__, prog_name="trustanchor")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """trustanchor: an OAuth 2.0 / OpenID Connect server that delegates login to trust anchors."""
    ctx.obj = CliContext(config_path=config_path)


cli.add_command(lifecycle.init)
cli.add_command(lifecycle.serve)
cli.add_command(keys.keys)
cli.add_command(anchors.anchors)
cli.add_command(anchor_sets.anchor_sets)
cli.add_command(clients.clients)
cli.add_command(audit.audit)
cli.add_command(auditors.auditors)
cli.add_command(identities.identities)
cli.add_command(purge.purge)


def main() -> None:
    cli()
