"""Designating the people who may read the audit log in the web console.

A person is designated by their **auditor reference**: the holder pseudonym that the audit log's
login entries carry (``audit_trail.holder_pseudonym``), which the console shows to anyone who
logs in without being designated. The operator never handles the internal holder id, and the
log never sees the operator's label.

Every designation and removal is an ``operator_change`` entry (``what = "auditor"``) written in
the same transaction as the change. Its ``id`` is the SHA-256 digest of the reference: the entry
format refuses pseudonym-shaped strings as identifiers on purpose (they look like raw secrets),
and an auditor who holds a reference can still find its designation by digesting it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from trustanchor.audit.entries import EntryError, digest, pseudonym
from trustanchor.services import audit_trail
from trustanchor.storage import auditors_repo
from trustanchor.storage.auditors_repo import Auditor
from trustanchor.storage.database import Database

MAX_LABEL = 200


class InvalidDesignation(ValueError):
    """A reference or label the registry cannot take; the message says what is wrong."""


def parse_reference(text: str) -> str:
    """An auditor reference as pasted by the operator (surrounding blanks removed)."""
    value = text.strip()
    try:
        pseudonym("reference", value)
    except EntryError:
        raise InvalidDesignation(
            f"{value!r} is not an auditor reference: expected the 43-character code the "
            "console shows after a login"
        ) from None
    return value


def parse_label(text: str) -> str:
    value = text.strip()
    if not 1 <= len(value) <= MAX_LABEL:
        raise InvalidDesignation(f"the label must be 1 to {MAX_LABEL} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs") for ch in value):
        raise InvalidDesignation("the label must not contain control or format characters")
    return value


def log_id(reference: str) -> str:
    """How the audit log names a designation: the SHA-256 digest (hex) of the reference."""
    return digest(reference)


def list_auditors(db: Database) -> list[Auditor]:
    with db.reader() as conn:
        return auditors_repo.list_auditors(conn)


@dataclass(frozen=True, slots=True)
class Added:
    outcome: Literal["added", "relabelled", "unchanged"]
    auditor: Auditor


def add(db: Database, reference: str, label: str, *, now: int) -> Added:
    """Designate ``reference`` (recorded in the log), or change the label of an existing
    designation (not a change of who may read the log, so not recorded)."""
    reference, label = parse_reference(reference), parse_label(label)
    with db.transaction() as conn:
        if auditors_repo.add(conn, reference, label, now=now):
            audit_trail.record(
                conn,
                audit_trail.operator_change(
                    at=now, what="auditor", id=log_id(reference), action="added"
                ),
            )
            outcome: Literal["added", "relabelled", "unchanged"] = "added"
        elif auditors_repo.relabel(conn, reference, label):
            outcome = "relabelled"
        else:
            outcome = "unchanged"
        auditor = auditors_repo.get(conn, reference)
    assert auditor is not None
    return Added(outcome, auditor)


def remove(db: Database, reference: str, *, now: int) -> bool:
    """Withdraw a designation (recorded in the log); False when it was not designated. Takes
    effect on the person's next console request: every request re-checks the designation."""
    reference = parse_reference(reference)
    with db.transaction() as conn:
        removed = auditors_repo.remove(conn, reference, now=now)
        if removed:
            audit_trail.record(
                conn,
                audit_trail.operator_change(
                    at=now, what="auditor", id=log_id(reference), action="removed"
                ),
            )
    return removed
