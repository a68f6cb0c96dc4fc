"""The anchor registry on SQLite and PostgreSQL: idempotent upserts, statuses, memberships,
anchor-set versions, and applying configuration declarations."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.clock import FixedClock
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import Anchor
from trustanchor.jose.jwk import public_jwk
from trustanchor.policy.anchor_set_policy import parse_policy
from trustanchor.services.anchor_declarations import DeclarationError, apply_anchor_declarations
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database

T0 = 1_700_000_000
JWK = {**public_jwk(ec.generate_private_key(ec.SECP256R1())), "kid": "k1"}


def make_anchor(anchor_id: str = "wallet", **changes: Any) -> Anchor:
    anchor = Anchor(
        id=anchor_id,
        kind="sd_jwt_vc",
        display_name={"en": "Wallet"},
        assurance_level="high",
        status="active",
        settings={"issuer": "https://issuer.example", "jwks": {"keys": [JWK]}, "vct": ["v"]},
        anchor_sets=(),
    )
    return replace(anchor, **changes)


def make_set(set_id: str = "jp", **changes: Any) -> AnchorSet:
    return replace(AnchorSet(id=set_id, display_name={"en": set_id.upper()}, policy={}), **changes)


# ----------------------------------------------------------------- anchors


def test_upsert_creates_then_identical_upsert_writes_nothing(database: Database) -> None:
    repo = AnchorRepository(database)
    assert repo.upsert(make_anchor(), T0).action == "created"
    assert repo.upsert(make_anchor(), T0 + 50).action == "unchanged"
    stored = repo.get("wallet")
    assert stored == replace(make_anchor(), updated_at=T0)


def test_changed_settings_update_the_anchor(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor(), T0)
    changed = make_anchor(settings={**make_anchor().settings, "vct": ["v", "w"]})
    assert repo.upsert(changed, T0 + 10).action == "updated"
    stored = repo.get("wallet")
    assert stored is not None
    assert stored.settings["vct"] == ["v", "w"]
    assert stored.updated_at == T0 + 10


def test_unknown_anchor_is_none_and_list_is_sorted(database: Database) -> None:
    repo = AnchorRepository(database)
    assert repo.get("nobody") is None
    repo.upsert(make_anchor("zeta"), T0)
    repo.upsert(make_anchor("alpha"), T0)
    assert [a.id for a in repo.list()] == ["alpha", "zeta"]


def test_kind_of_an_anchor_cannot_change(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor(), T0)
    with pytest.raises(ValueError, match="kind cannot change"):
        repo.upsert(make_anchor(kind="x509"), T0 + 1)


def test_membership_follows_the_anchor(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert_set(make_set("jp"), T0)
    repo.upsert_set(make_set("eu"), T0)
    repo.upsert(make_anchor(anchor_sets=("jp", "eu")), T0)
    repo.upsert(make_anchor("bank", anchor_sets=("jp",)), T0)
    assert repo.get("wallet").anchor_sets == ("eu", "jp")  # type: ignore[union-attr]
    assert repo.members("jp") == ("bank", "wallet")
    assert repo.upsert(make_anchor(anchor_sets=("jp",)), T0 + 5).action == "updated"
    assert repo.get("wallet").anchor_sets == ("jp",)  # type: ignore[union-attr]
    assert repo.members("eu") == ()
    assert repo.upsert(make_anchor(anchor_sets=("jp",)), T0 + 6).action == "unchanged"


def test_membership_of_an_unknown_set_is_refused_and_nothing_written(database: Database) -> None:
    repo = AnchorRepository(database)
    with pytest.raises(ValueError, match="unknown anchor set"):
        repo.upsert(make_anchor(anchor_sets=("nowhere",)), T0)
    assert repo.get("wallet") is None


def test_set_status_suspends_and_resumes(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor(), T0)
    suspended = repo.set_status("wallet", "suspended", T0 + 1)
    assert suspended.status == "suspended" and suspended.updated_at == T0 + 1
    assert repo.active() == []
    assert repo.get("wallet").status == "suspended"  # type: ignore[union-attr]
    again = repo.set_status("wallet", "suspended", T0 + 2)
    assert again.updated_at == T0 + 1  # nothing written
    assert repo.set_status("wallet", "active", T0 + 3).is_active
    assert [a.id for a in repo.active()] == ["wallet"]


def test_set_status_of_unknown_anchor_raises_key_error(database: Database) -> None:
    with pytest.raises(KeyError):
        AnchorRepository(database).set_status("nobody", "suspended", T0)


def test_set_status_refuses_unknown_status(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor(), T0)
    with pytest.raises(ValueError, match="unknown anchor status"):
        repo.set_status("wallet", "paused", T0)  # type: ignore[arg-type]


def test_upsert_without_resume_keeps_a_stricter_stored_status(database: Database) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor(), T0)
    repo.set_status("wallet", "suspended", T0 + 1)
    change = repo.upsert(make_anchor(), T0 + 2, may_resume=False)
    assert change.action == "unchanged" and change.kept_status == "suspended"
    assert repo.get("wallet").status == "suspended"  # type: ignore[union-attr]
    # A plain upsert (may_resume=True) writes the status it is given.
    assert repo.upsert(make_anchor(), T0 + 3).action == "updated"
    assert repo.get("wallet").status == "active"  # type: ignore[union-attr]


def test_parallel_creation_of_one_anchor_has_no_error(database: Database) -> None:
    repo = AnchorRepository(database)
    with ThreadPoolExecutor(max_workers=8) as pool:
        changes = list(pool.map(lambda _: repo.upsert(make_anchor(), T0), range(16)))
    assert [c.action for c in changes].count("created") == 1
    assert {c.action for c in changes} <= {"created", "unchanged"}


# ------------------------------------------------------------- anchor sets


def test_anchor_set_version_goes_up_only_when_the_policy_changes(database: Database) -> None:
    repo = AnchorRepository(database)
    assert repo.upsert_set(make_set(policy={"min_assurance_link": "low"}), T0).version == 1
    same = repo.upsert_set(make_set(policy={"min_assurance_link": "low"}), T0 + 1)
    assert (same.action, same.version) == ("unchanged", 1)
    renamed = repo.upsert_set(
        make_set(display_name={"en": "Japan"}, policy={"min_assurance_link": "low"}), T0 + 2
    )
    assert (renamed.action, renamed.version, renamed.policy_changed) == ("updated", 1, False)
    stricter = repo.upsert_set(
        make_set(display_name={"en": "Japan"}, policy={"min_assurance_link": "high"}), T0 + 3
    )
    assert (stricter.action, stricter.version, stricter.policy_changed) == ("updated", 2, True)
    stored = repo.get_set("jp")
    assert stored == AnchorSet(
        id="jp",
        display_name={"en": "Japan"},
        policy={"min_assurance_link": "high"},
        version=2,
        updated_at=T0 + 3,
    )
    assert [s.id for s in repo.anchor_sets()] == ["jp"]
    assert repo.get_set("nowhere") is None


# ------------------------------------------------------------------ cache


def test_snapshot_cache_is_dropped_on_own_writes_and_expires(database: Database) -> None:
    clock = FixedClock(T0)
    cached = AnchorRepository(database, clock=clock, ttl=5)
    other_process = AnchorRepository(database)
    cached.upsert(make_anchor(), T0)
    assert [a.id for a in cached.active()] == ["wallet"]
    other_process.set_status("wallet", "suspended", T0)
    assert [a.id for a in cached.active()] == ["wallet"]  # within the ttl
    clock.advance(5)
    assert cached.active() == []
    cached.set_status("wallet", "active", T0 + 5)
    assert [a.id for a in cached.active()] == ["wallet"]  # own write: seen at once


def test_ttl_needs_a_clock(database: Database) -> None:
    with pytest.raises(ValueError, match="needs a clock"):
        AnchorRepository(database, ttl=5)


# ------------------------------------------------------------ declarations


def anchor_decl(anchor_id: str = "wallet", **changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "id": anchor_id,
        "kind": "sd_jwt_vc",
        "display_name": "Wallet",
        "assurance_level": "high",
        "anchor_sets": ["jp"],
        "sd_jwt_vc": {
            "issuer": "https://issuer.example",
            "jwks_file": "issuer.json",
            "vct": ["urn:v"],
            "subject_claim": "sub",
            "trust_framework": "jp_my_number_card",
            "status_check": "required",
        },
    }
    decl.update(changes)
    return decl


SET_DECL = {"id": "jp", "display_name": "Japan", "policy": {"min_assurance_transfer": "high"}}


@pytest.fixture
def base_dir(tmp_path: Path) -> Path:
    import json

    (tmp_path / "issuer.json").write_text(json.dumps({"keys": [JWK]}))
    return tmp_path


def test_applying_declarations_is_idempotent(database: Database, base_dir: Path) -> None:
    first = apply_anchor_declarations(
        database, [anchor_decl()], [SET_DECL], base_dir=base_dir, now=T0
    )
    assert first == ["anchor_set jp: created", "anchor wallet: created"]
    again = apply_anchor_declarations(
        database, [anchor_decl()], [SET_DECL], base_dir=base_dir, now=T0 + 100
    )
    assert again == []
    repo = AnchorRepository(database)
    anchor = repo.get("wallet")
    assert anchor is not None and anchor.updated_at == T0 and anchor.anchor_sets == ("jp",)
    assert anchor.settings["jwks"] == {"keys": [JWK]}
    assert repo.get_set("jp") == AnchorSet(
        id="jp",
        display_name={"en": "Japan"},
        policy=parse_policy({"min_assurance_transfer": "high"}).to_json(),
        version=1,
        updated_at=T0,
    )


def test_changed_policy_bumps_the_version(database: Database, base_dir: Path) -> None:
    apply_anchor_declarations(database, [], [SET_DECL], base_dir=base_dir, now=T0)
    changed = {**SET_DECL, "policy": {"min_assurance_transfer": "substantial"}}
    messages = apply_anchor_declarations(database, [], [changed], base_dir=base_dir, now=T0 + 1)
    assert messages == ["anchor_set jp: updated, policy changed (now version 2)"]
    assert AnchorRepository(database).get_set("jp").version == 2  # type: ignore[union-attr]


def test_undeclared_anchors_are_left_alone(database: Database, base_dir: Path) -> None:
    repo = AnchorRepository(database)
    repo.upsert(make_anchor("added-by-cli"), T0)
    apply_anchor_declarations(database, [anchor_decl()], [SET_DECL], base_dir=base_dir, now=T0)
    assert [a.id for a in repo.list()] == ["added-by-cli", "wallet"]


def test_a_declaration_never_resumes_a_suspended_anchor(database: Database, base_dir: Path) -> None:
    apply_anchor_declarations(database, [anchor_decl()], [SET_DECL], base_dir=base_dir, now=T0)
    AnchorRepository(database).set_status("wallet", "suspended", T0 + 1)
    messages = apply_anchor_declarations(
        database, [anchor_decl(status="active")], [SET_DECL], base_dir=base_dir, now=T0 + 2
    )
    assert messages == [
        "anchor wallet: unchanged; stays suspended in the database "
        "(resume it with `trustanchor anchors resume wallet`)"
    ]
    assert AnchorRepository(database).get("wallet").status == "suspended"  # type: ignore[union-attr]


def test_a_declaration_can_suspend_an_anchor(database: Database, base_dir: Path) -> None:
    apply_anchor_declarations(database, [anchor_decl()], [SET_DECL], base_dir=base_dir, now=T0)
    messages = apply_anchor_declarations(
        database, [anchor_decl(status="suspended")], [SET_DECL], base_dir=base_dir, now=T0 + 1
    )
    assert messages == ["anchor wallet: updated"]
    assert AnchorRepository(database).active() == []


def test_invalid_declarations_write_nothing(database: Database, base_dir: Path) -> None:
    with pytest.raises(DeclarationError) as info:
        apply_anchor_declarations(
            database,
            [anchor_decl(), anchor_decl("bank", assurance_level="max")],
            [SET_DECL],
            base_dir=base_dir,
            now=T0,
        )
    assert info.value.problems == [
        "anchors.bank.assurance_level: must be one of low, substantial, high"
    ]
    repo = AnchorRepository(database)
    assert repo.list() == [] and repo.anchor_sets() == []


def test_unknown_anchor_set_in_a_declaration_is_named(database: Database, base_dir: Path) -> None:
    with pytest.raises(DeclarationError) as info:
        apply_anchor_declarations(
            database, [anchor_decl(anchor_sets=["eu"])], [SET_DECL], base_dir=base_dir, now=T0
        )
    assert info.value.problems == [
        "anchors.wallet.anchor_sets: unknown anchor set 'eu' (declare it in [[anchor_sets]])"
    ]


def test_anchor_set_already_in_the_database_may_be_referenced(
    database: Database, base_dir: Path
) -> None:
    AnchorRepository(database).upsert_set(make_set("jp"), T0)
    apply_anchor_declarations(database, [anchor_decl()], [], base_dir=base_dir, now=T0)
    assert AnchorRepository(database).members("jp") == ("wallet",)


def test_duplicate_declarations_are_refused(database: Database, base_dir: Path) -> None:
    with pytest.raises(DeclarationError) as info:
        apply_anchor_declarations(
            database,
            [anchor_decl(), anchor_decl()],
            [SET_DECL, SET_DECL],
            base_dir=base_dir,
            now=T0,
        )
    assert info.value.problems == [
        "anchor_sets.jp: declared twice",
        "anchors.wallet: declared twice",
    ]
