"""``trustanchor identities``: work on the identities anchors verified.

``check-status`` re-checks credential status lists (issue 4) and, for certificate identities,
the anchor's CRL or OCSP responder (issue 11): run it periodically, from cron or a
systemd timer, so that a credential revoked or suspended after login stops being relied on — its
holder's transfer tokens are revoked and the accounts it vouched for flagged. The output names
identities by internal id only, never by subject or claims.

``unjoin IDENTITY_ID`` undoes a wrong identity join (services/identity_joining.py): the identity
moves to a new holder of its own, and what its former holder obtained relying on it is withdrawn.
"""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from trustanchor.cli.context import CliContext, database_errors, pass_context
from trustanchor.cli.progress import ProgressLine
from trustanchor.randomness import SystemRandomness
from trustanchor.secrets_store import load_secrets
from trustanchor.services import credential_checks, identity_joining
from trustanchor.services.container import http_fetcher
from trustanchor.services.credential_checks import Summary
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import StorageUnavailable


@click.group()
def identities() -> None:
    """Identities verified by trust anchors."""


@identities.command("check-status")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Check at most N identities, least recently checked first (default: all).",
)
@pass_context
def check_status(ctx: CliContext, limit: int | None) -> None:
    """Re-check the status of credentials and certificates behind recorded identities.

    For every identity with a status reference at an sd_jwt_vc anchor (status_check not "off"),
    fetch and verify the issuer's status list with the anchor's keys; for every identity at an
    x509 anchor, ask the anchor's revocation source (CRL or OCSP) about its authentication
    certificate. A revoked or suspended credential revokes its holder's transfer tokens relying on
    that anchor and flags the accounts and links it vouched for; a source that cannot be fetched
    or verified records "unknown".
    Run it periodically (cron, systemd timer). Exit status 0 when the run completed (even with
    unknown results), 1 when the database is not usable.
    """
    settings = ctx.settings
    try:
        with ProgressLine("checking identities") as progress:
            summary = credential_checks.recheck(
                ctx.db,
                AnchorRepository(ctx.db).list(),
                http_fetcher(settings, ctx.clock),
                at=ctx.clock.now(),
                clock_skew=settings.client_auth.clock_skew,
                limit=limit,
                progress=progress,
                randomness=ctx.randomness,
            )
    except (StorageUnavailable, DBAPIError) as exc:
        url = make_url(settings.service.database_url).render_as_string(hide_password=True)
        raise click.ClickException(
            f"cannot use the database {url} ({exc.__class__.__name__}). Run `trustanchor init` "
            "to create or migrate it; running check-status again finishes an interrupted run."
        ) from exc
    for line in describe(summary):
        click.echo(line)


def describe(summary: Summary) -> list[str]:
    """The run in a few lines: counts, each change by identity id, each failure by list."""
    lines = [f"checked {summary.checked} identit{'y' if summary.checked == 1 else 'ies'}"]
    if summary.changes:
        counts = ", ".join(f"{status} {n}" for status, n in summary.changed.items())
        lines.append(f"changed: {counts}")
        lines.extend(
            f"  {change.identity_id}: {change.previous} -> {change.status}"
            for change in summary.changes
        )
    else:
        lines.append("changed: none")
    lines.append(f"unknown (no verified answer): {summary.unknown}")
    lines.extend(
        f"  {failure.anchor_id} {failure.uri or '(no uri)'}: {failure.reason}"
        f"{f' ({failure.detail})' if failure.detail else ''}, {failure.identities} identit"
        f"{'y' if failure.identities == 1 else 'ies'}"
        for failure in summary.errors
    )
    lines.append(
        f"{summary.revoked_grants} transfer grant(s) revoked; {summary.flagged_accounts} "
        f"account(s) and {summary.flagged_links} link(s) flagged for re-verification"
    )
    if summary.skipped_anchors:
        lines.append("not checked (status_check = off): " + ", ".join(summary.skipped_anchors))
    return lines


@identities.command("unjoin")
@click.argument("identity_id")
@pass_context
def unjoin(ctx: CliContext, identity_id: str) -> None:
    """Undo a wrong identity join: IDENTITY_ID moves to a new holder of its own.

    What its former holder obtained relying on it is withdrawn: live grants whose decision relied
    on the identity's anchor are revoked, accounts bound through the identity and their links are
    flagged for re-verification, and its login (SSO) sessions end. Audited (identity_join,
    unjoined). Refused for an identity that
    is its holder's only one. Exit status 1 when refused or the database is not usable.
    """
    settings = ctx.settings
    with database_errors(ctx):
        try:
            done = identity_joining.unjoin(
                ctx.db,
                identity_id,
                pairwise_secret=load_secrets(settings, create=False).pairwise,
                randomness=SystemRandomness(),
                at=ctx.clock.now(),
            )
        except identity_joining.UnjoinRefused as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"identity {done.identity_id} moved to a new holder of its own")
    click.echo(
        f"{done.revoked_grants} grant(s) revoked; {done.flagged_accounts} account(s) and "
        f"{done.flagged_links} link(s) flagged for re-verification; "
        f"{done.ended_sessions} login session(s) ended"
    )
