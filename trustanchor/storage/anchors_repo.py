"""The anchor registry in the database: anchors, anchor sets and which anchor belongs to which set.

Writes are idempotent upserts: writing what is already stored changes nothing (no ``updated_at``
bump, no new anchor-set ``version``), so declarations can be re-applied at every start. A changed
anchor-set policy bumps the set's ``version`` so decisions can name the policy they relied on.

Reads come from a snapshot of the whole registry (it is small: tens of rows). With ``ttl > 0`` the
snapshot is reused for ``ttl`` seconds of the injected clock, so the interaction pages can list the
active anchors on every request without a query; writes through this object drop it at once,
writes by other processes (the CLI) are seen after at most ``ttl`` seconds.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, delete, insert, select, update

from trustanchor.clock import Clock
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import ANCHOR_STATUSES, Anchor, AnchorStatus
from trustanchor.storage.database import Database, insert_once
from trustanchor.storage.tables import anchor_set_members, anchor_sets, anchors
from trustanchor.strict_json import dumps_canonical

T = TypeVar("T")

Action = Literal["created", "updated", "unchanged"]
Row = Mapping[Any, Any]  # a SQLAlchemy RowMapping, or a dict built from one

# How far a status takes an anchor out of service; declarations never lower it (see upsert).
_STRICTNESS: dict[str, int] = {"active": 0, "suspended": 1, "retired": 2}


@dataclass(frozen=True, slots=True)
class Change:
    """What one upsert did. ``kept_status`` is set when a stored, stricter status was kept over
    the written one; ``version`` is the anchor set's policy version after the write. For an
    updated anchor, ``new_status`` is set when the write changed its status and
    ``details_changed`` when it changed anything else (settings, names, level, sets)."""

    subject: Literal["anchor", "anchor_set"]
    id: str
    action: Action
    version: int | None = None
    policy_changed: bool = False
    kept_status: str | None = None
    new_status: str | None = None
    details_changed: bool = False

    def describe(self) -> str:
        text = f"{self.subject} {self.id}: {self.action}"
        if self.policy_changed:
            text += f", policy changed (now version {self.version})"
        if self.kept_status is not None:
            text += (
                f"; stays {self.kept_status} in the database"
                f" (resume it with `trustanchor anchors resume {self.id}`)"
            )
        return text


@dataclass(frozen=True, slots=True)
class _Snapshot:
    loaded_at: int
    anchors: dict[str, Anchor]
    sets: dict[str, AnchorSet]
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)  # see AnchorRepository.derived


class AnchorRepository:
    def __init__(self, db: Database, *, clock: Clock | None = None, ttl: int = 0) -> None:
        if ttl < 0 or (ttl > 0 and clock is None):
            raise ValueError("a snapshot ttl needs a clock")
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._snapshot: _Snapshot | None = None

    # ----------------------------------------------------------------- reads

    def get(self, anchor_id: str) -> Anchor | None:
        return self._load().anchors.get(anchor_id)

    def list(self) -> builtins.list[Anchor]:
        return builtins.list(self._load().anchors.values())

    def active(self) -> builtins.list[Anchor]:
        """The anchors people may log in through right now."""
        return [a for a in self._load().anchors.values() if a.is_active]

    def anchor_sets(self) -> builtins.list[AnchorSet]:
        return builtins.list(self._load().sets.values())

    def get_set(self, anchor_set_id: str) -> AnchorSet | None:
        return self._load().sets.get(anchor_set_id)

    def members(self, anchor_set_id: str) -> tuple[str, ...]:
        """Ids of the anchors in a set (any status), sorted."""
        return self._load().members.get(anchor_set_id, ())

    def derived(
        self, name: str, build: Callable[[builtins.list[Anchor], builtins.list[AnchorSet]], T]
    ) -> T:
        """A value computed from the current anchors and sets (e.g. the policy engine's trust
        snapshot), built once per loaded snapshot and dropped with it: callers cache derived
        data without tracking when anchors change."""
        snapshot = self._load()
        if name not in snapshot.derived:
            snapshot.derived[name] = build(
                builtins.list(snapshot.anchors.values()), builtins.list(snapshot.sets.values())
            )
        value: T = snapshot.derived[name]
        return value

    # ---------------------------------------------------------------- writes

    def upsert(self, anchor: Anchor, now: int, *, may_resume: bool = True) -> Change:
        """Create or update ``anchor`` and make its set memberships exactly ``anchor.anchor_sets``.

        With ``may_resume=False`` a stored status stricter than ``anchor.status`` is kept (a
        declaration never brings a suspended or retired anchor back). Refuses (ValueError) a change
        of kind and membership of an unknown set.
        """
        return self.apply((), (anchor,), now, may_resume=may_resume)[0]

    def upsert_set(self, anchor_set: AnchorSet, now: int) -> Change:
        """Create or update a set. ``anchor_set.version`` is used on creation only; afterwards the
        stored version goes up by one whenever the policy changes."""
        return self.apply((anchor_set,), (), now)[0]

    def apply(
        self,
        sets: Sequence[AnchorSet],
        anchors_: Sequence[Anchor],
        now: int,
        *,
        may_resume: bool = True,
        on_write: Callable[[Connection, Sequence[Change]], None] | None = None,
    ) -> builtins.list[Change]:
        """Upsert sets, then anchors, in one transaction: all of it is written or none.

        ``on_write`` runs inside that transaction with every change (unchanged ones included),
        so what it writes (the audit log's operator_change entries) commits with the changes
        or not at all."""
        changes: builtins.list[Change] = []
        try:
            with self._db.transaction() as conn:
                changes.extend(_write_set(conn, s, now) for s in sets)
                changes.extend(_write_anchor(conn, a, now, may_resume) for a in anchors_)
                if on_write is not None:
                    on_write(conn, changes)
        finally:
            self._snapshot = None
        return changes

    def set_status(self, anchor_id: str, status: AnchorStatus, now: int) -> Anchor:
        """Change an anchor's status (KeyError for an unknown anchor). Setting the current status
        again writes nothing."""
        if status not in ANCHOR_STATUSES:
            raise ValueError(f"unknown anchor status {status!r}")
        try:
            with self._db.transaction() as conn:
                row = _locked_row(conn, anchor_id)
                if row is None:
                    raise KeyError(anchor_id)
                if row["status"] != status:
                    conn.execute(
                        update(anchors)
                        .where(anchors.c.id == anchor_id)
                        .values(status=status, updated_at=now)
                    )
                    row = {**row, "status": status, "updated_at": now}
                return _anchor(row, _stored_members(conn, anchor_id))
        finally:
            self._snapshot = None

    # -------------------------------------------------------------- snapshot

    def _load(self) -> _Snapshot:
        snapshot = self._snapshot
        now = self._clock.now() if self._clock is not None else 0
        if snapshot is not None and self._ttl > 0 and now < snapshot.loaded_at + self._ttl:
            return snapshot
        with self._db.reader() as conn:
            anchor_rows = conn.execute(select(anchors).order_by(anchors.c.id)).mappings().all()
            set_rows = conn.execute(select(anchor_sets).order_by(anchor_sets.c.id)).mappings().all()
            member_rows = conn.execute(
                select(anchor_set_members).order_by(
                    anchor_set_members.c.anchor_id, anchor_set_members.c.anchor_set_id
                )
            ).all()
        by_anchor: dict[str, builtins.list[str]] = {}
        by_set: dict[str, builtins.list[str]] = {}
        for set_id, anchor_id in member_rows:
            by_anchor.setdefault(anchor_id, []).append(set_id)
            by_set.setdefault(set_id, []).append(anchor_id)
        snapshot = _Snapshot(
            loaded_at=now,
            anchors={r["id"]: _anchor(r, by_anchor.get(r["id"], ())) for r in anchor_rows},
            sets={r["id"]: _anchor_set(r) for r in set_rows},
            members={k: tuple(sorted(v)) for k, v in by_set.items()},
        )
        if self._ttl > 0:
            self._snapshot = snapshot
        return snapshot


# ------------------------------------------------------------------ helpers


def _plain(value: Any) -> Any:
    """A JSON-column-ready copy (plain dicts and lists) of a mapping built from TOML or code."""
    return json.loads(json.dumps(value))


def _same(a: Any, b: Any) -> bool:
    return dumps_canonical(a) == dumps_canonical(b)


def _locked_row(conn: Connection, anchor_id: str) -> Row | None:
    stmt = select(anchors).where(anchors.c.id == anchor_id).with_for_update()
    return conn.execute(stmt).mappings().first()


def _stored_members(conn: Connection, anchor_id: str) -> builtins.list[str]:
    stmt = select(anchor_set_members.c.anchor_set_id).where(
        anchor_set_members.c.anchor_id == anchor_id
    )
    return sorted(conn.execute(stmt).scalars())


def _write_anchor(conn: Connection, anchor: Anchor, now: int, may_resume: bool) -> Change:
    wanted = sorted(set(anchor.anchor_sets))
    if wanted:
        found = set(
            conn.execute(select(anchor_sets.c.id).where(anchor_sets.c.id.in_(wanted))).scalars()
        )
        missing = [s for s in wanted if s not in found]
        if missing:
            raise ValueError(f"anchor {anchor.id}: unknown anchor set(s) {', '.join(missing)}")
    values: dict[str, Any] = {
        "kind": anchor.kind,
        "display_name": _plain(dict(anchor.display_name)),
        "assurance_level": anchor.assurance_level,
        "status": anchor.status,
        "settings": _plain(dict(anchor.settings)),
    }
    row = _locked_row(conn, anchor.id)
    if row is None:
        if insert_once(conn, anchors, {"id": anchor.id, **values, "updated_at": now}):
            _replace_members(conn, anchor.id, (), wanted)
            return Change("anchor", anchor.id, "created")
        row = _locked_row(conn, anchor.id)  # a concurrent writer created it meanwhile
        assert row is not None
    if row["kind"] != anchor.kind:
        raise ValueError(
            f"anchor {anchor.id}: kind cannot change ({row['kind']} -> {anchor.kind}); "
            "identities verified by it would change meaning. Declare a new anchor id instead"
        )
    kept: str | None = None
    if not may_resume and _STRICTNESS[row["status"]] > _STRICTNESS[anchor.status]:
        values["status"] = kept = row["status"]
    stored_members = _stored_members(conn, anchor.id)
    status_changed = row["status"] != values["status"]
    details_changed = stored_members != wanted or not all(
        _same(row[k], v) for k, v in values.items() if k != "status"
    )
    if not status_changed and not details_changed:
        return Change("anchor", anchor.id, "unchanged", kept_status=kept)
    conn.execute(update(anchors).where(anchors.c.id == anchor.id).values(**values, updated_at=now))
    _replace_members(conn, anchor.id, stored_members, wanted)
    return Change(
        "anchor",
        anchor.id,
        "updated",
        kept_status=kept,
        new_status=values["status"] if status_changed else None,
        details_changed=details_changed,
    )


def _replace_members(
    conn: Connection, anchor_id: str, stored: Iterable[str], wanted: Iterable[str]
) -> None:
    stored_set, wanted_set = set(stored), set(wanted)
    gone = sorted(stored_set - wanted_set)
    if gone:
        conn.execute(
            delete(anchor_set_members).where(
                anchor_set_members.c.anchor_id == anchor_id,
                anchor_set_members.c.anchor_set_id.in_(gone),
            )
        )
    new = sorted(wanted_set - stored_set)
    if new:
        conn.execute(
            insert(anchor_set_members),
            [{"anchor_set_id": s, "anchor_id": anchor_id} for s in new],
        )


def _write_set(conn: Connection, anchor_set: AnchorSet, now: int) -> Change:
    display_name = _plain(dict(anchor_set.display_name))
    policy = _plain(dict(anchor_set.policy))
    stmt = select(anchor_sets).where(anchor_sets.c.id == anchor_set.id).with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        version = max(1, anchor_set.version)
        values = {
            "id": anchor_set.id,
            "display_name": display_name,
            "policy": policy,
            "version": version,
            "updated_at": now,
        }
        if insert_once(conn, anchor_sets, values):
            return Change("anchor_set", anchor_set.id, "created", version=version)
        row = conn.execute(stmt).mappings().first()
        assert row is not None
    policy_changed = not _same(row["policy"], policy)
    if not policy_changed and _same(row["display_name"], display_name):
        return Change("anchor_set", anchor_set.id, "unchanged", version=row["version"])
    version = row["version"] + 1 if policy_changed else row["version"]
    conn.execute(
        update(anchor_sets)
        .where(anchor_sets.c.id == anchor_set.id)
        .values(display_name=display_name, policy=policy, version=version, updated_at=now)
    )
    return Change(
        "anchor_set", anchor_set.id, "updated", version=version, policy_changed=policy_changed
    )


def _anchor(row: Row, members: Iterable[str]) -> Anchor:
    return Anchor(
        id=row["id"],
        kind=row["kind"],
        display_name=dict(row["display_name"]),
        assurance_level=row["assurance_level"],
        status=row["status"],
        settings=dict(row["settings"]),
        anchor_sets=tuple(sorted(members)),
        updated_at=int(row["updated_at"]),
    )


def _anchor_set(row: Row) -> AnchorSet:
    policy: Mapping[str, Any] = dict(row["policy"])
    return AnchorSet(
        id=row["id"],
        display_name=dict(row["display_name"]),
        policy=policy,
        version=int(row["version"]),
        updated_at=int(row["updated_at"]),
    )
