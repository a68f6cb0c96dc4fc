"""Statistics over the audit log for the auditor console: decisions over time (allowed vs
denied per time bucket) and denials by reason.

Which entries count, and how, is one table, :data:`CLASSIFIERS`: entry kind → a function from
the entry's fields to an :class:`Outcome`, several outcomes, or None (not readable as that kind).
A new kind that allows or denies something plugs in with one line there. An ``omitted`` entry
(docs/AUDIT-FORMAT.md §1.7) stands for many denials: one outcome per reason, each with its
count, listed under the kind ``omitted`` beside the recorded ones, in the bucket of the entry's
own time (the end of the window it summarises, or later).

Reading is bounded. The window is a time range (the last 24 hours by the hour, the last 7 or 30
days by the day, in UTC), but at most :data:`MAX_SCANNED` of the most recent log entries are
looked at, as one range of tree indexes under the latest checkpoint (the unique index on
``tree_index`` serves it; ``audit_leaves`` has no index on time and needs none for this). Within
that range SQL keeps only the counted kinds inside the window; only those entries are parsed.
When the range ends before the window's start the result says so (``truncated``) and the page
tells the auditor which part of the window was counted. Only entries covered by a signed
checkpoint are counted, so every number can be checked against the log an auditor downloads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select

from trustanchor.audit.entries import EntryError, parse_reason_counts
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves

MAX_SCANNED = 50_000
"""Most log entries (by tree index, newest first) one statistics request reads."""

Result = Literal["allowed", "denied"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    reason: str | None  # for denials: the entry's reason code
    count: int = 1  # how many events this outcome stands for (a summary's count)


Fields = Mapping[str, object]
Classifier = Callable[[Fields], Outcome | tuple[Outcome, ...] | None]


def _text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


def _decision(fields: Fields) -> Outcome | None:
    result = fields.get("result")
    if result == "allowed":
        return Outcome("allowed", None)
    if result == "denied":
        return Outcome("denied", _text(fields, "reason"))
    return None


def _login(fields: Fields) -> Outcome | None:
    outcome = fields.get("outcome")
    if outcome == "ok":
        return Outcome("allowed", None)
    if outcome == "failed":
        return Outcome("denied", _text(fields, "reason"))
    return None


def _refusal(fields: Fields) -> Outcome | None:
    return Outcome("denied", _text(fields, "reason"))


def _omitted(fields: Fields) -> tuple[Outcome, ...] | None:
    """A summary of left-out failures: each reason's count, as denials."""
    try:
        counts = parse_reason_counts("reasons", fields.get("reasons"))
    except EntryError:
        return None
    return tuple(Outcome("denied", reason, count) for reason, count in counts.items())


CLASSIFIERS: dict[str, Classifier] = {
    "decision": _decision,  # policy decisions: allowed / denied with a reason
    "login": _login,  # logins at a trust anchor: ok / failed with a reason
    "login_in_person": _login,  # logins at a bank branch's counter: always ok
    "refusal": _refusal,  # protocol requests refused (token, PAR, ...): always a denial
    "omitted": _omitted,  # failures left out by the anonymous budget: denials, by reason
}


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    bucket_seconds: int
    buckets: int


WINDOWS: dict[str, Window] = {
    "24h": Window("24h", 3600, 24),
    "7d": Window("7d", 86_400, 7),
    "30d": Window("30d", 86_400, 30),
}
DEFAULT_WINDOW = "24h"


@dataclass(frozen=True, slots=True)
class Bucket:
    start: int  # POSIX seconds, UTC; the bucket is [start, start + bucket_seconds)
    allowed: int
    denied: int


@dataclass(frozen=True, slots=True)
class Denials:
    kind: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Statistics:
    window: Window
    start: int
    end: int
    buckets: tuple[Bucket, ...]
    denials: tuple[Denials, ...]  # most frequent first, then by kind and reason
    size: int  # entries under the checkpoint the statistics were read against
    scanned_from: int  # first tree index read
    truncated: bool  # the window reaches back before ``scanned_from``
    unreadable: int  # counted kinds whose entry could not be read (not counted)

    @property
    def allowed(self) -> int:
        return sum(b.allowed for b in self.buckets)

    @property
    def denied(self) -> int:
        return sum(b.denied for b in self.buckets)


NO_REASON = "unspecified"


def window_bounds(window: Window, now: int) -> tuple[int, int]:
    """``[start, end)`` in whole buckets, the last one containing ``now``."""
    end = (now // window.bucket_seconds + 1) * window.bucket_seconds
    return end - window.buckets * window.bucket_seconds, end


def statistics(
    db: Database,
    *,
    size: int,
    window: Window,
    now: int,
    max_scanned: int = MAX_SCANNED,
    classifiers: Mapping[str, Classifier] = CLASSIFIERS,
) -> Statistics:
    """Count the classified entries among the last ``max_scanned`` of the first ``size`` leaves
    (``size``: the latest checkpoint's) that fall in the window ending at ``now``."""
    start, end = window_bounds(window, now)
    scanned_from = max(0, size - max_scanned)
    allowed = [0] * window.buckets
    denied = [0] * window.buckets
    reasons: Counter[tuple[str, str]] = Counter()
    unreadable = 0
    with db.reader() as conn:
        rows = conn.execute(
            select(audit_leaves.c.kind, audit_leaves.c.created_at, audit_leaves.c.entry).where(
                audit_leaves.c.tree_index >= scanned_from,
                audit_leaves.c.tree_index < size,
                audit_leaves.c.created_at >= start,
                audit_leaves.c.created_at < end,
                audit_leaves.c.kind.in_(sorted(classifiers)),
            )
        ).all()
        truncated = scanned_from > 0 and _reaches_into_window(conn, scanned_from, start)
    for row in rows:
        outcomes = _classify(classifiers[row.kind], row.entry)
        if outcomes is None:
            unreadable += 1
            continue
        slot = (int(row.created_at) - start) // window.bucket_seconds
        for outcome in outcomes:
            if outcome.result == "allowed":
                allowed[slot] += outcome.count
            else:
                denied[slot] += outcome.count
                reasons[(row.kind, outcome.reason or NO_REASON)] += outcome.count
    buckets = tuple(
        Bucket(start + i * window.bucket_seconds, allowed[i], denied[i])
        for i in range(window.buckets)
    )
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return Statistics(
        window=window,
        start=start,
        end=end,
        buckets=buckets,
        denials=tuple(Denials(kind, reason, count) for (kind, reason), count in ranked),
        size=size,
        scanned_from=scanned_from,
        truncated=truncated,
        unreadable=unreadable,
    )


def _reaches_into_window(conn: Connection, scanned_from: int, start: int) -> bool:
    """Whether the entry just before the scanned range is still inside the window (so the
    window holds entries the statistics did not read)."""
    before = conn.execute(
        select(audit_leaves.c.created_at).where(audit_leaves.c.tree_index == scanned_from - 1)
    ).scalar()
    return before is not None and int(before) >= start


def _classify(classifier: Classifier, entry: str) -> tuple[Outcome, ...] | None:
    """The entry's outcomes; None when the stored text is not a JSON object or not readable as
    its kind (a damaged row is reported as unreadable, never a 500 — the log check names it)."""
    try:
        fields = json.loads(entry)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    result = classifier(fields)
    if isinstance(result, Outcome):
        return (result,)
    return result
