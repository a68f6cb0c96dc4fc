"""``trustanchor purge``: forget one-time artefacts, sessions and ended grants that can no longer
matter (trustanchor/storage/expiry.py says which, and why each is safe). Run it periodically
(daily from cron or a systemd timer): it keeps every table that grows with issuance bounded. The
audit log, identities, accounts, links and standing authorizations are never touched."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from trustanchor.cli.context import CliContext, pass_context
from trustanchor.services import login_failures
from trustanchor.storage import expiry
from trustanchor.storage.database import StorageUnavailable


@click.command()
@click.option(
    "--retention",
    type=click.IntRange(min=0),
    default=expiry.DEFAULT_RETENTION,
    show_default=True,
    help="Seconds to keep authorization codes, refresh tokens and access-token records after "
    "they expired, so that reuse is still detected (and revokes the grant) meanwhile.",
)
@pass_context
def purge(ctx: CliContext, retention: int) -> None:
    """Delete expired one-time artefacts and ended sessions: used DPoP/assertion jtis, request
    URIs, logins and their wallet transactions, login/console/self-service sessions, and codes,
    refresh tokens and access-token records expired more than --retention ago; then grants
    expired or revoked more than --retention ago that nothing names any more (no code, refresh
    token, access-token record, standing authorization or session). Also writes the audit
    summaries ('omitted' entries) of closed windows of failed logins that were counted instead
    of recorded. Prints how many rows each rule deleted; safe to run again (an interrupted run is
    finished by the next). Each batch of at most 1,000 rows is its own short transaction."""
    settings = ctx.settings

    def progress(rule: str, deleted: int) -> None:
        if deleted % (expiry.BATCH * 10) == 0:  # a line per 10,000 rows of a large backlog
            click.echo(f"{rule}: {deleted} deleted so far", err=True)

    now = ctx.clock.now()
    try:
        with ctx.db.transaction() as conn:
            # Left-out login failures of windows that closed are summarised here too, so a
            # flood that stopped does not wait for the next failed login to reach the log.
            summaries = login_failures.summarise_closed(
                conn, at=now, before=login_failures.window_start(now)
            )
        deleted = expiry.purge(ctx.db, now=now, retention=retention, progress=progress)
    except (StorageUnavailable, DBAPIError) as exc:
        url = make_url(settings.service.database_url).render_as_string(hide_password=True)
        raise click.ClickException(
            f"cannot use the database {url} ({exc.__class__.__name__}). Run `trustanchor init` "
            "to create or migrate it; running purge again finishes an interrupted run."
        ) from exc
    click.echo(f"omitted-entry summaries written: {summaries}")
    for rule, count in deleted.items():
        click.echo(f"{rule}: {count}")
    click.echo(f"purged {sum(deleted.values())} row(s)")
