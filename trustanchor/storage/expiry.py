"""Forgetting what can no longer matter: rows of one-time artefacts and sessions past their use.

Nothing here touches the audit log, grants, holders, identities, accounts or links. Each rule
deletes only rows that the service would refuse or ignore anyway, so a purge never changes an
answer — with one deliberate delay, ``retention``: authorization codes, refresh tokens and access
token records are kept that long *after* they expired, so that a reused code or refresh token is
still recognised as reuse (and revokes its grant) for a while instead of only being "unknown".

Rows go in batches (``DELETE … WHERE key IN (SELECT key … LIMIT n)``, one transaction each), so a
large backlog never holds SQLite's write lock or a PostgreSQL transaction for long; running it
again after an interruption finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Table, delete, or_, select

from trustanchor.storage.database import Database
from trustanchor.storage.tables import (
    access_tokens,
    auditor_sessions,
    authorization_codes,
    cumulative_counters,
    holder_sessions,
    interactions,
    par_requests,
    refresh_tokens,
    sessions,
    used_jtis,
    wallet_transactions,
)

# A cumulative-limit bucket older than this is outside every window (the longest, a calendar
# month, spans at most 31 days plus a time zone's offset).
COUNTER_AGE = 40 * 86400
DEFAULT_RETENTION = 86400  # one day of reuse detection after a code or refresh token expired
BATCH = 5000


@dataclass(frozen=True)
class Rule:
    """Rows of ``table`` that ``condition(now, retention)`` selects; ``key`` names a row."""

    name: str
    table: Table
    key: Sequence[Column[str]]
    condition: Callable[[int, int], ColumnElement[bool]]
    why: str


def _expired(column: Column[int]) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: column < now


def _expired_for(column: Column[int]) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: column < now - retention


def _expired_or_ended(
    expires: Column[int], ended: Column[int | None]
) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: or_(expires < now, ended.is_not(None))


# In this order: wallet transactions before the interactions they belong to (foreign key).
RULES: tuple[Rule, ...] = (
    Rule(
        "used_jtis",
        used_jtis,
        (used_jtis.c.namespace, used_jtis.c.jti_digest),
        _expired(used_jtis.c.expires_at),
        "a proof or assertion this old is refused as stale before its jti is looked up",
    ),
    Rule(
        "par_requests",
        par_requests,
        (par_requests.c.id_digest,),
        _expired(par_requests.c.expires_at),
        "an expired request_uri is refused whether it is known or not",
    ),
    Rule(
        "wallet_transactions",
        wallet_transactions,
        (wallet_transactions.c.id,),
        lambda now, retention: wallet_transactions.c.interaction_id.in_(
            select(interactions.c.id).where(interactions.c.expires_at < now)
        ),
        "a wallet answer for an expired login is refused",
    ),
    Rule(
        "interactions",
        interactions,
        (interactions.c.id,),
        _expired(interactions.c.expires_at),
        "an expired login or consent page is refused",
    ),
    Rule(
        "sessions",
        sessions,
        (sessions.c.id_digest,),
        _expired_or_ended(sessions.c.expires_at, sessions.c.ended_at),
        "an expired or ended login session is never used again",
    ),
    Rule(
        "auditor_sessions",
        auditor_sessions,
        (auditor_sessions.c.id_digest,),
        _expired_or_ended(auditor_sessions.c.expires_at, auditor_sessions.c.ended_at),
        "an expired or ended console session is never used again",
    ),
    Rule(
        "holder_sessions",
        holder_sessions,
        (holder_sessions.c.id_digest,),
        _expired_or_ended(holder_sessions.c.expires_at, holder_sessions.c.ended_at),
        "an expired or ended self-service session is never used again",
    ),
    Rule(
        "authorization_codes",
        authorization_codes,
        (authorization_codes.c.code_digest,),
        _expired_for(authorization_codes.c.expires_at),
        "expired more than the retention ago: reuse is no longer detected, only refused",
    ),
    Rule(
        "refresh_tokens",
        refresh_tokens,
        (refresh_tokens.c.token_digest,),
        _expired_for(refresh_tokens.c.expires_at),
        "expired more than the retention ago: reuse is no longer detected, only refused",
    ),
    Rule(
        "access_tokens",
        access_tokens,
        (access_tokens.c.jti,),
        _expired_for(access_tokens.c.expires_at),
        "introspection answers inactive for an expired token, recorded or not",
    ),
    Rule(
        "cumulative_counters",
        cumulative_counters,
        tuple(cumulative_counters.primary_key.columns),
        # Not the rolling windows' lock rows (bucket 0): they hold no amount.
        lambda now, retention: (
            (cumulative_counters.c.bucket_start < now - COUNTER_AGE)
            & (cumulative_counters.c.bucket_start > 0)
        ),
        "a bucket this old is outside every cumulative window",
    ),
)


def purge(
    db: Database,
    *,
    now: int,
    retention: int = DEFAULT_RETENTION,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete what every rule selects; rows deleted per rule. ``progress(rule, deleted so far)``
    after each batch."""
    if retention < 0 or batch < 1:
        raise ValueError("retention must be >= 0 and batch >= 1")
    deleted: dict[str, int] = {}
    for rule in RULES:
        total = 0
        while True:
            with db.transaction() as conn:
                chosen = (
                    select(*rule.key).where(rule.condition(now, retention)).limit(batch).subquery()
                )
                where: ColumnElement[bool]
                if len(rule.key) == 1:
                    where = rule.key[0].in_(select(chosen))
                else:
                    # Composite keys: match each column (namespace, jti) row by row.
                    where = (
                        select(chosen).where(*(chosen.c[c.name] == c for c in rule.key)).exists()
                    )
                count = conn.execute(delete(rule.table).where(where)).rowcount
            total += count
            if progress is not None and count:
                progress(rule.name, total)
            if count < batch:
                break
        deleted[rule.name] = total
    return deleted
