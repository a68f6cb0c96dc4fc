"""Accounts and links at the repository level (SQLite and PostgreSQL): registration is unique per
(intermediary, reference digest); binding happens once per holder and never moves an account to
someone else; an account pair has one active link; removal happens once — also under races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select

from trustanchor.domain.accounts import AccountKyc
from trustanchor.domain.claim_normalizer import NORMALIZER_ID
from trustanchor.storage import accounts_repo, grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import accounts, holders

NOW = 1_800_000_000
RACERS = 12


def _holders(database: Database, *ids: str) -> None:
    with database.transaction() as conn:
        for holder_id in ids:
            conn.execute(insert(holders).values(id=holder_id, created_at=NOW))


def _register(database: Database, account_id: str, kind: str, reference: str) -> str:
    with database.transaction() as conn:
        account, _ = accounts_repo.register(
            conn,
            account_id=account_id,
            client_id="bank",
            kind=kind,
            label=account_id,
            reference_digest=reference,
            now=NOW,
        )
    return account.id


def race(database: Database, attempt: Callable[[Connection, int], Any]) -> list[Any]:
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            with database.transaction() as conn:
                results[i] = attempt(conn, i)
        except BaseException as exc:  # surfaced by the assertion below
            results[i] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results if isinstance(r, str) and r.startswith("error")]
    assert not errors, errors
    return results


def test_registration_is_unique_per_client_and_reference(database: Database) -> None:
    first = _register(database, "acc_first000000000000", "bank_deposit", "digest-1")
    again = _register(database, "acc_second00000000000", "bank_deposit", "digest-1")
    assert again == first
    with database.transaction() as conn:
        other, created = accounts_repo.register(
            conn,
            account_id="acc_other000000000000",
            client_id="other-bank",
            kind="bank_deposit",
            label="x",
            reference_digest="digest-1",
            now=NOW,
        )
    assert created and other.id != first


def test_parallel_registrations_of_one_reference_give_one_account(database: Database) -> None:
    def attempt(conn: Connection, i: int) -> tuple[str, bool]:
        account, created = accounts_repo.register(
            conn,
            account_id=f"acc_racer{i:012d}",
            client_id="bank",
            kind="cbdc_wallet",
            label="w",
            reference_digest="same",
            now=NOW,
        )
        return account.id, created

    results = race(database, attempt)
    assert len({account_id for account_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_an_account_is_bound_once_and_never_moves_to_another_holder(database: Database) -> None:
    _holders(database, "h1", "h2")
    account = _register(database, "acc_bind0000000000000", "cbdc_wallet", "d")
    with database.transaction() as conn:
        assert accounts_repo.bind(
            conn, account, registered_by="bank", holder_id="h1", identity_id="i1", now=NOW
        )
        assert not accounts_repo.bind(
            conn, account, registered_by="bank", holder_id="h2", identity_id="i2", now=NOW
        )
        assert accounts_repo.bind(
            conn, account, registered_by="bank", holder_id="h1", identity_id="i3", now=NOW + 1
        )
        stored = accounts_repo.get(conn, account)
    assert stored is not None
    assert (stored.holder_id, stored.binding_identity_id) == ("h1", "i3")


def test_parallel_binds_by_different_holders_have_one_winner(database: Database) -> None:
    holder_ids = [f"h{i}" for i in range(RACERS)]
    _holders(database, *holder_ids)
    account = _register(database, "acc_race000000000000", "cbdc_wallet", "d")
    results = race(
        database,
        lambda conn, i: accounts_repo.bind(
            conn,
            account,
            registered_by="bank",
            holder_id=holder_ids[i],
            identity_id=f"i{i}",
            now=NOW,
        ),
    )
    assert results.count(True) == 1
    with database.reader() as conn:
        stored = accounts_repo.get(conn, account)
    assert stored is not None and stored.holder_id == holder_ids[results.index(True)]


def test_a_closed_account_cannot_be_bound(database: Database) -> None:
    _holders(database, "h1")
    account = _register(database, "acc_closed00000000000", "bank_deposit", "d")
    with database.transaction() as conn:
        assert accounts_repo.close(conn, account, client_id="bank", now=NOW)
        assert not accounts_repo.close(conn, account, client_id="bank", now=NOW)
        assert not accounts_repo.bind(
            conn, account, registered_by="bank", holder_id="h1", identity_id="i", now=NOW
        )


def _linked_pair(database: Database) -> tuple[str, str]:
    _holders(database, "h1")
    deposit = _register(database, "acc_deposit0000000000", "bank_deposit", "d1")
    wallet = _register(database, "acc_wallet00000000000", "cbdc_wallet", "d2")
    return deposit, wallet


def test_parallel_link_creation_gives_one_active_link(database: Database) -> None:
    deposit, wallet = _linked_pair(database)
    results = race(
        database,
        lambda conn, i: (
            accounts_repo.create_link(
                conn,
                link_id=f"lnk_racer{i:012d}",
                holder_id="h1",
                deposit_account_id=deposit,
                wallet_account_id=wallet,
                now=NOW,
            ).id
        ),
    )
    assert len(set(results)) == 1
    with database.reader() as conn:
        assert [link.id for link in accounts_repo.links_for_holder(conn, "h1")] == [results[0]]


def test_a_link_is_removed_once_and_a_new_one_may_follow(database: Database) -> None:
    deposit, wallet = _linked_pair(database)
    with database.transaction() as conn:
        first = accounts_repo.create_link(
            conn,
            link_id="lnk_first00000000000",
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=wallet,
            now=NOW,
        )
    results = race(
        database,
        lambda conn, i: accounts_repo.remove_link(conn, first.id, reason="test", now=NOW + 1),
    )
    assert sum(r is not None for r in results) == 1
    with database.transaction() as conn:
        second = accounts_repo.create_link(
            conn,
            link_id="lnk_second0000000000",
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=wallet,
            now=NOW + 2,
        )
        assert second.id != first.id
        assert accounts_repo.links_for_holder(conn, "h1", active_only=False)[0].removed_at


def test_flagging_accounts_bound_through_identities_flags_their_links(database: Database) -> None:
    deposit, wallet = _linked_pair(database)
    with database.transaction() as conn:
        accounts_repo.bind(
            conn, deposit, registered_by="bank", holder_id="h1", identity_id="i-anchor-a", now=NOW
        )
        accounts_repo.bind(
            conn, wallet, registered_by="bank", holder_id="h1", identity_id="i-anchor-b", now=NOW
        )
        link = accounts_repo.create_link(
            conn,
            link_id="lnk_flag000000000000",
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=wallet,
            now=NOW,
        )
        flagged = accounts_repo.flag_bound_by_identities(
            conn, ["i-anchor-a"], reason="anchor_suspended", now=NOW + 1
        )
        assert flagged == [deposit]
        assert accounts_repo.flag_links_of_accounts(conn, flagged, now=NOW + 1) == [link.id]
        assert accounts_repo.flag_links_of_accounts(conn, flagged, now=NOW + 2) == []
        stored = accounts_repo.get(conn, deposit)
        assert stored is not None
        assert (stored.status, stored.flagged_reason) == ("flagged", "anchor_suspended")
        # re-verification: binding again clears the flag
        assert accounts_repo.bind(
            conn, deposit, registered_by="bank", holder_id="h1", identity_id="i-new", now=NOW + 3
        )
        rebound = accounts_repo.get(conn, deposit)
        assert rebound is not None and rebound.status == "active"


def test_grants_relying_on_an_anchor_or_a_link_are_found(database: Database) -> None:
    _holders(database, "h1")
    with database.transaction() as conn:
        for grant_id in ("g-link", "g-transfer", "g-other"):
            grants_repo.create_grant(
                conn, grant_id, "bank", "h1", {"scope": []}, now=NOW, expires_at=NOW + 100
            )
        grants_repo.record_reliance(
            conn, "g-link", anchor_set_id="s", anchor_ids=["a", "b"], link_id="lnk_1"
        )
        grants_repo.record_reliance(
            conn, "g-transfer", anchor_set_id="s", anchor_ids=["a"], link_id=None
        )
        assert grants_repo.live_grants_of_link(conn, "lnk_1") == ["g-link"]
        assert grants_repo.live_grants_relying_on_anchor(conn, "a") == ["g-link", "g-transfer"]
        assert grants_repo.live_grants_of_holder_relying_on_anchor(conn, "h1", "b") == ["g-link"]
        grants_repo.revoke_grant(conn, "g-link", now=NOW + 1, reason="test")
        assert grants_repo.live_grants_relying_on_anchor(conn, "a") == ["g-transfer"]


def test_only_the_registering_intermediary_binds_an_account(database: Database) -> None:
    """Issue 10 (SECURITY-CASES: "an account registered by intermediary A named in intermediary
    B's request → never bound by B"): the binding statement itself is conditional on the
    registrar, so no decision slip can bind another intermediary's account."""
    _holders(database, "h1")
    account = _register(database, "acc_regbind00000000000", "cbdc_wallet", "d")
    with database.transaction() as conn:
        assert not accounts_repo.bind(
            conn, account, registered_by="other-bank", holder_id="h1", identity_id="i", now=NOW
        )
        unbound = accounts_repo.get(conn, account)
        assert unbound is not None and unbound.holder_id is None
        assert accounts_repo.bind(
            conn, account, registered_by="bank", holder_id="h1", identity_id="i", now=NOW
        )


def test_registered_kyc_attributes_are_stored_only_as_their_digest(database: Database) -> None:
    kyc = AccountKyc(NORMALIZER_ID, ("family_name", "given_name"), "k" * 43)
    with database.transaction() as conn:
        account, created = accounts_repo.register(
            conn,
            account_id="acc_kyc00000000000000",
            client_id="bank",
            kind="cbdc_wallet",
            label="w",
            reference_digest="kyc-ref",
            now=NOW,
            kyc=kyc,
        )
        row = conn.execute(select(accounts.c.kyc).where(accounts.c.id == account.id)).one()
        plain, _ = accounts_repo.register(
            conn,
            account_id="acc_nokyc000000000000",
            client_id="bank",
            kind="cbdc_wallet",
            label="w",
            reference_digest="no-kyc-ref",
            now=NOW,
        )
    assert created and account.kyc == kyc
    assert row.kyc == {
        "normalizer": NORMALIZER_ID,
        "claims": ["family_name", "given_name"],
        "digest": "k" * 43,
    }
    assert plain.kyc is None
    with database.reader() as conn:
        assert accounts_repo.get(conn, account.id) == account


# -- releasing a binding (attack-session finding F1) -------------------------------------------


def _bound_by_removed_link(database: Database) -> tuple[str, str, str]:
    """A deposit account and wallet bound to h1 by link ``lnk_first…``, which is removed."""
    deposit, wallet = _linked_pair(database)
    link_id = "lnk_first000000000000"
    with database.transaction() as conn:
        accounts_repo.create_link(
            conn,
            link_id=link_id,
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=wallet,
            now=NOW,
        )
        for account in (deposit, wallet):
            assert accounts_repo.bind(
                conn,
                account,
                registered_by="bank",
                holder_id="h1",
                identity_id="i1",
                now=NOW,
                kyc_matched=True,
                link_id=link_id,
            )
        assert accounts_repo.remove_link(conn, link_id, reason="removed_by_intermediary", now=NOW)
    return deposit, wallet, link_id


def test_a_release_clears_the_binding_only_for_its_link_and_holder(database: Database) -> None:
    deposit, wallet, link_id = _bound_by_removed_link(database)
    _holders(database, "h2")
    with database.transaction() as conn:
        assert not accounts_repo.release(
            conn, deposit, holder_id="h2", link_id=link_id, now=NOW + 1
        )
        assert not accounts_repo.release(
            conn, deposit, holder_id="h1", link_id="lnk_other000000000000", now=NOW + 1
        )
        assert accounts_repo.release(conn, deposit, holder_id="h1", link_id=link_id, now=NOW + 1)
        assert not accounts_repo.release(
            conn, deposit, holder_id="h1", link_id=link_id, now=NOW + 2
        )
        stored = accounts_repo.get(conn, deposit)
        kept = accounts_repo.get(conn, wallet)
    assert stored is not None and kept is not None
    assert (
        stored.holder_id,
        stored.binding_identity_id,
        stored.kyc_matched_identity_id,
        stored.bound_at,
        stored.bound_by_link_id,
        stored.status,
    ) == (None, None, None, None, None, "active")
    assert (kept.holder_id, kept.bound_by_link_id) == ("h1", link_id)
    # Unbound again: the next binding may be anyone's.
    with database.transaction() as conn:
        assert accounts_repo.bind(
            conn, deposit, registered_by="bank", holder_id="h2", identity_id="i2", now=NOW + 3
        )


def test_an_account_an_active_link_uses_is_not_released(database: Database) -> None:
    deposit, wallet, link_id = _bound_by_removed_link(database)
    other = _register(database, "acc_wallet20000000000", "cbdc_wallet", "d3")
    with database.transaction() as conn:
        accounts_repo.create_link(
            conn,
            link_id="lnk_second00000000000",
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=other,
            now=NOW,
        )
        assert not accounts_repo.release(
            conn, deposit, holder_id="h1", link_id=link_id, now=NOW + 1
        )
        assert accounts_repo.release(conn, wallet, holder_id="h1", link_id=link_id, now=NOW + 1)


def test_a_release_racing_new_links_that_rely_on_the_account_leaves_no_link_unbound(
    database: Database,
) -> None:
    """Half the racers release the deposit account; the other half create a link relying on
    it as bound to h1 (as consent does). Whatever the order, no active link ends up using an
    unbound account, and a link that committed found the account still bound."""
    deposit, _, link_id = _bound_by_removed_link(database)
    wallets = [
        _register(database, f"acc_racewallet{i:07d}", "cbdc_wallet", f"w{i}") for i in range(RACERS)
    ]

    def attempt(conn: Connection, i: int) -> str:
        if i % 2 == 0:
            released = accounts_repo.release(
                conn, deposit, holder_id="h1", link_id=link_id, now=NOW + 1
            )
            return "released" if released else "kept"
        if not accounts_repo.rely_on(conn, deposit, holder_id="h1"):
            return "conflict"
        accounts_repo.create_link(
            conn,
            link_id=f"lnk_race{i:013d}",
            holder_id="h1",
            deposit_account_id=deposit,
            wallet_account_id=wallets[i],
            now=NOW + 1,
        )
        return "linked"

    results = race(database, attempt)
    with database.reader() as conn:
        stored = accounts_repo.get(conn, deposit)
        using = accounts_repo.links_of_account(conn, deposit)
    assert stored is not None
    assert results.count("released") <= 1
    assert len(using) == results.count("linked")
    if stored.holder_id is None:
        assert using == []
    else:
        assert results.count("released") == 0
