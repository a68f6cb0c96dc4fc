"""``trustanchor anchor-sets``: inspect anchor sets and change a set's policy.

Sets are usually declared in the configuration (``[[anchor_sets]]``, applied by ``init`` and at
start-up); ``set-policy`` replaces one set's policy from a TOML file at run time. The stored
version goes up with every change, each decision records the set it relied on, and every
change is an ``operator_change`` entry in the audit log. The configuration still wins at the next
start: change the declaration too, or the old policy comes back.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import click

from trustanchor.cli.context import CliContext, database_errors, pass_context
from trustanchor.policy.anchor_set_policy import PolicyError
from trustanchor.services import anchor_set_admin
from trustanchor.storage.anchors_repo import AnchorRepository


@click.group("anchor-sets")
def anchor_sets() -> None:
    """Anchor sets: groups of anchors that trust each other, with their policy."""


@anchor_sets.command("list")
@pass_context
def list_command(ctx: CliContext) -> None:
    """Every anchor set with its policy version and member anchors."""
    repository = AnchorRepository(ctx.db)
    with database_errors(ctx):
        sets = repository.anchor_sets()
        members = {s.id: repository.members(s.id) for s in sets}
    if not sets:
        click.echo("no anchor sets yet: declare [[anchor_sets]] in the configuration")
        return
    click.echo(f"{'id':<24} {'version':<8} {'anchors':<40} name")
    for s in sets:
        click.echo(f"{s.id:<24} {s.version:<8} {','.join(members[s.id]) or '-':<40} {s.name('en')}")


@anchor_sets.command()
@click.argument("set_id", metavar="ID")
@pass_context
def show(ctx: CliContext, set_id: str) -> None:
    """One anchor set as JSON, its policy with every default spelt out."""
    repository = AnchorRepository(ctx.db)
    with database_errors(ctx):
        found = repository.get_set(set_id)
        if found is None:
            raise click.ClickException(f"no anchor set {set_id!r}; `trustanchor anchor-sets list`")
        document = anchor_set_admin.describe(repository, found)
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True))
    if "policy_error" in document:
        raise click.ClickException(
            f"the stored policy of {set_id} is not valid (the set allows nothing)"
        )


@anchor_sets.command("set-policy")
@click.argument("set_id", metavar="ID")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TOML file holding the policy table's fields (operations, limits, step_up, ...).",
)
@pass_context
def set_policy(ctx: CliContext, set_id: str, path: Path) -> None:
    """Replace a set's policy; the version goes up and the change is audited."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{path}: not readable TOML ({exc})") from exc
    table = data["policy"] if isinstance(data.get("policy"), dict) else data
    repository = AnchorRepository(ctx.db)
    try:
        with database_errors(ctx):
            change, stored = anchor_set_admin.replace_policy(
                repository, set_id, table, at=ctx.clock.now()
            )
    except PolicyError as exc:
        raise click.ClickException(
            f"{path}: invalid policy:\n  " + "\n  ".join(exc.lines("policy"))
        ) from exc
    except anchor_set_admin.UnknownAnchorSet as exc:
        raise click.ClickException(
            f"no anchor set {set_id!r}; declare it in the configuration ([[anchor_sets]])"
        ) from exc
    if not change.policy_changed:
        click.echo(f"anchor set {set_id}: policy unchanged (version {stored.version})")
        return
    click.echo(f"anchor set {set_id}: policy replaced (now version {stored.version})")
    click.echo(
        "Recorded in the audit log. Decisions use it within seconds. Change the [[anchor_sets]] "
        "declaration too, or the next start restores the declared policy."
    )
