"""Forgetting what can no longer matter: rows of one-time artefacts and sessions past their use.

Nothing here touches the audit log, holders, identities, accounts, links or standing
authorizations (with their movements: the holder's page shows them, ended ones included). Each
rule deletes only rows that the service would refuse or ignore anyway, so a purge never changes
an answer — with one deliberate delay, ``retention``: authorization codes, refresh tokens and
access token records are kept that long *after* they expired, so that a reused code or refresh
token is still recognised as reuse (and revokes its grant) for a while instead of only being
"unknown".

Grants (with their ``grant_anchors``) go last, and only when they have ended — expired, or
revoked, more than ``retention`` ago — *and* nothing refers to them any more: no authorization
code, refresh token or access-token record (those rules deleted them first, each after its own
expiry and retention), no standing authorization, no console or self-service session. So every
lookup that starts from a token, code or session still finds its grant; introspection of a token
whose grant is gone finds no access-token record either and answers inactive, as for any unknown
token. What no longer happens for a purged grant: revoking it again (an anchor suspended or a
link removed later) and auditing that — it could not be used anyway.

Rows go in batches (``DELETE … WHERE key IN (SELECT key … LIMIT n)``, one transaction each; the
grants' batches pick their ids first, walking an index so that grants still referred to are
passed over once, not rescanned by every batch), so a large backlog never holds SQLite's write
lock or a PostgreSQL transaction for long; running it again after an interruption finishes the
job. Every rule's selection has an index (migration 0011), so a batch costs what it deletes, not
the size of the table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Column, ColumnElement, Table, and_, delete, exists, or_, select

from trustanchor.storage.database import Database
from trustanchor.storage.tables import (
    access_tokens,
    auditor_sessions,
    authorization_codes,
    cumulative_counters,
    grant_anchors,
    grants,
    holder_sessions,
    interactions,
    par_requests,
    refresh_tokens,
    sessions,
    standing_authorizations,
    used_jtis,
    wallet_transactions,
)

# A cumulative-limit bucket older than this is outside every window (the longest, a calendar
# month, spans at most 31 days plus a time zone's offset).
COUNTER_AGE = 40 * 86400
DEFAULT_RETENTION = 86400  # one day of reuse detection after a code or refresh token expired
# Rows per purge transaction. A purge runs beside the service and, on SQLite, holds the write
# lock for the whole transaction: 5,000 rows held it up to 1.5 s under load (p99 0.43 s;
# bench/results/2026-12-06-growth-1e7.md), which every issuance of that moment waited out.
BATCH = 1000


@dataclass(frozen=True)
class Rule:
    """Rows of ``table`` that ``condition(now, retention)`` selects; ``key`` names a row.

    ``walk``: an indexed column the batches go through in order, each starting after the last
    row the previous one deleted, for a condition that passes over rows it keeps (so that they
    are read once, not by every batch); ``children``: columns of other tables naming ``key``,
    whose rows are deleted with it in the same transaction."""

    name: str
    table: Table
    key: Sequence[Column[str]]
    condition: Callable[[int, int], ColumnElement[bool]]
    why: str
    walk: Column[int] | None = None
    children: tuple[Column[str], ...] = ()


def _expired(column: Column[int]) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: column < now


def _expired_for(column: Column[int]) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: column < now - retention


def _expired_or_ended(
    expires: Column[int], ended: Column[int | None]
) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: or_(expires < now, ended.is_not(None))


# Every row that names a grant. A grant with any of them left is kept.
GRANT_REFERENCES: tuple[Column[str], ...] = (
    authorization_codes.c.grant_id,
    refresh_tokens.c.grant_id,
    access_tokens.c.grant_id,
    standing_authorizations.c.grant_id,
    auditor_sessions.c.grant_id,
    holder_sessions.c.grant_id,
)


def _unreferenced_grant() -> ColumnElement[bool]:
    return and_(*(~exists().where(column == grants.c.id) for column in GRANT_REFERENCES))


def _ended_grant(
    ended: Callable[[int], ColumnElement[bool]],
) -> Callable[[int, int], ColumnElement[bool]]:
    return lambda now, retention: and_(ended(now - retention), _unreferenced_grant())


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
    # Last: the rules above deleted the codes, tokens and sessions that named these grants.
    Rule(
        "grants",
        grants,
        (grants.c.id,),
        _ended_grant(lambda cutoff: grants.c.expires_at < cutoff),
        "expired more than the retention ago and nothing names it any more (no code, refresh "
        "token, access-token record, standing authorization or session): never used again",
        walk=grants.c.expires_at,
        children=(grant_anchors.c.grant_id,),
    ),
    Rule(
        "revoked_grants",
        grants,
        (grants.c.id,),
        _ended_grant(
            lambda cutoff: and_(grants.c.revoked_at < cutoff, grants.c.expires_at >= cutoff)
        ),
        "revoked more than the retention ago (not yet expired) and nothing names it any more",
        walk=grants.c.revoked_at,
        children=(grant_anchors.c.grant_id,),
    ),
)


def _walk(
    db: Database, rule: Rule, walk: Column[int], now: int, retention: int, batch: int,
    timing: Callable[[str, float], None] | None,
) -> Iterator[int]:  # fmt: skip
    """Batches of ``rule`` in ``walk`` order, each after the last row of the previous one;
    rows deleted per batch."""
    [key] = rule.key
    after: tuple[int, str] | None = None
    while True:
        started = time.perf_counter()
        with db.transaction() as conn:
            query = select(key, walk).where(rule.condition(now, retention))
            if after is not None:
                query = query.where(walk >= after[0], or_(walk > after[0], key > after[1]))
            chosen = conn.execute(query.order_by(walk, key).limit(batch)).all()
            ids = [row[0] for row in chosen]
            if ids:
                for child in rule.children:
                    conn.execute(delete(child.table).where(child.in_(ids)))
                conn.execute(delete(rule.table).where(key.in_(ids)))
        if timing is not None:
            timing(rule.name, time.perf_counter() - started)
        yield len(ids)
        if len(ids) < batch:
            return
        after = (chosen[-1][1], chosen[-1][0])


def _batches(
    db: Database, rule: Rule, now: int, retention: int, batch: int,
    timing: Callable[[str, float], None] | None,
) -> Iterator[int]:  # fmt: skip
    """Batches of ``rule``: ``DELETE … WHERE key IN (SELECT key … LIMIT n)``; rows per batch."""
    while True:
        started = time.perf_counter()
        with db.transaction() as conn:
            chosen = select(*rule.key).where(rule.condition(now, retention)).limit(batch).subquery()
            where: ColumnElement[bool]
            if len(rule.key) == 1:
                where = rule.key[0].in_(select(chosen))
            else:
                # Composite keys: match each column (namespace, jti) row by row.
                where = select(chosen).where(*(chosen.c[c.name] == c for c in rule.key)).exists()
            count = conn.execute(delete(rule.table).where(where)).rowcount
        if timing is not None:
            timing(rule.name, time.perf_counter() - started)
        yield count
        if count < batch:
            return


def purge(
    db: Database,
    *,
    now: int,
    retention: int = DEFAULT_RETENTION,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
    timing: Callable[[str, float], None] | None = None,
) -> dict[str, int]:
    """Delete what every rule selects, in order; rows deleted per rule (the grant rules count
    grants: their grant_anchors go with them). ``progress(rule, deleted so far)`` after each
    batch; ``timing(rule, seconds)`` for each batch's transaction (how long it held SQLite's
    write lock)."""
    if retention < 0 or batch < 1:
        raise ValueError("retention must be >= 0 and batch >= 1")
    deleted: dict[str, int] = {}
    for rule in RULES:
        total = 0
        batches = (
            _batches(db, rule, now, retention, batch, timing)
            if rule.walk is None
            else _walk(db, rule, rule.walk, now, retention, batch, timing)
        )
        for count in batches:
            total += count
            if progress is not None and count:
                progress(rule.name, total)
        deleted[rule.name] = total
    return deleted
