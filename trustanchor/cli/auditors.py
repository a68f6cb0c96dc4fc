"""``trustanchor auditors …``: designate the people who may read the audit log in the web console.

A person logs in to the console (``/auditor/``) through a trust anchor like everywhere else; if
they are not designated, the console shows their auditor reference, which they give to the
operator, who runs ``trustanchor auditors add REFERENCE --label TEXT``. Designations and
removals are recorded in the audit log (``operator_change``, ``what = auditor``, ``id`` = SHA-256
of the reference); labels stay in the operator's registry and never reach the log.
"""

from __future__ import annotations

import time

import click

from trustanchor.cli.context import CliContext, database_errors, pass_context
from trustanchor.cli.table import echo_table
from trustanchor.services import auditors as designations


@click.group()
def auditors() -> None:
    """Designate who may read the audit log in the web console (/auditor/)."""


@auditors.command("list")
@pass_context
def list_auditors(ctx: CliContext) -> None:
    """List designated auditors: reference, when designated (UTC), label."""
    with database_errors(ctx):
        designated = designations.list_auditors(ctx.db)
    if not designated:
        click.echo(
            "No auditors designated. Add one with: trustanchor auditors add REFERENCE --label TEXT"
        )
        return
    echo_table(
        ("reference", "designated (UTC)", "label"),
        [
            (
                auditor.holder_ref,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(auditor.added_at)),
                auditor.label,
            )
            for auditor in designated
        ],
    )


# A reference is 43 base64url characters and may start with "-": such an argument is taken as
# the reference, not refused as an unknown option (REFERENCE is strictly validated anyway).
_REFERENCE_ARGUMENT = {"ignore_unknown_options": True}


@auditors.command("add", context_settings=_REFERENCE_ARGUMENT)
@click.argument("reference")
@click.option(
    "--label",
    required=True,
    help="Who this is, for your own records (1 to 200 characters; never written to the log).",
)
@pass_context
def add_auditor(ctx: CliContext, reference: str, label: str) -> None:
    """Designate REFERENCE as an auditor.

    REFERENCE is the auditor reference the console showed the person after they logged in.
    Takes effect at their next console request. Adding a designated reference again only
    changes its label."""
    try:
        with database_errors(ctx):
            added = designations.add(ctx.db, reference, label, now=ctx.clock.now())
    except designations.InvalidDesignation as exc:
        raise click.ClickException(str(exc)) from None
    ref = added.auditor.holder_ref
    if added.outcome == "added":
        click.echo(f"Auditor {ref} designated ({added.auditor.label}); recorded in the audit log.")
    elif added.outcome == "relabelled":
        click.echo(f"Auditor {ref} was already designated; label changed to {label.strip()!r}.")
    else:
        click.echo(f"Auditor {ref} is already designated with this label.")


@auditors.command("remove", context_settings=_REFERENCE_ARGUMENT)
@click.argument("reference")
@pass_context
def remove_auditor(ctx: CliContext, reference: str) -> None:
    """Withdraw the designation of REFERENCE.

    The person's console sessions end, and their next console request is refused."""
    try:
        with database_errors(ctx):
            removed = designations.remove(ctx.db, reference, now=ctx.clock.now())
    except designations.InvalidDesignation as exc:
        raise click.ClickException(str(exc)) from None
    if not removed:
        raise click.ClickException(
            f"{reference.strip()} is not a designated auditor; "
            "`trustanchor auditors list` shows the designated ones."
        )
    click.echo(f"Auditor {reference.strip()} removed; recorded in the audit log.")
