"""Issue 10, item 1 over HTTP, on SQLite and PostgreSQL: a step-up login that presents an
identity the service has never seen joins the logged-in holder only with proof that it is the
same person (services/identity_joining.py, docs/POLICY.md "Identity joins").

SECURITY-CASES, "Holders, sessions and cross-device logins": a step-up or second login presenting
an identity that does not match the holder's by the declared rule → refused with the reason,
audited; an identity never moves between holders.

The ecosystem is issue 4's (support/payments.py) with a ``low`` anchor added to ``jp-cbdc``, whose
policy here admits low identities to links and transfers (so that a low holder reaches a "high"
step-up at all), and the join rule ``name-and-birthdate`` (or none, where a test says so).
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select, update
from support.credentials import Issuer
from support.html import parse
from support.payments import (
    ANCHOR_SETS,
    JOIN_RULE,
    JP_HIGH,
    JP_SET,
    JP_SUBSTANTIAL,
    AnchorParty,
    Bank,
    Holder,
    Payments,
    link,
    transfer,
)
from support.rp import Pkce, RelyingParty
from support.server import RunningServer, free_port, running_server, test_settings

from trustanchor.clock import SystemClock
from trustanchor.services import cascades
from trustanchor.storage.tables import grants, identities

JP_LOW = "jp-self-declared"
HANAKO = {"given_name": "Hanako", "family_name": "Yamada", "birthdate": "1988-05-14"}


@pytest.fixture
def join_rules(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """The join rules both sets declare (a test may parametrize them, indirectly)."""
    rules: list[dict[str, Any]] = getattr(request, "param", [JOIN_RULE])
    return rules


@pytest.fixture
def payments() -> Payments:
    ecosystem = Payments()
    ecosystem.anchors[JP_LOW] = AnchorParty(
        JP_LOW, "low", JP_SET, Issuer.generate(issuer="https://jp-self-declared.example")
    )
    return ecosystem


@pytest.fixture
def payment_server(
    tmp_path: Path, database_url: str, payments: Payments, join_rules: list[dict[str, Any]]
) -> Iterator[RunningServer]:
    sets = []
    for declared in ANCHOR_SETS:
        policy = {**declared["policy"], "identity_joins": join_rules}
        if declared["id"] == JP_SET:
            policy.update(min_assurance_link="low", min_assurance_transfer="low")
        if not join_rules:
            policy.pop("identity_joins")
        sets.append({**declared, "policy": policy})
    settings = test_settings(
        tmp_path,
        database_url,
        port=free_port(),
        anchors=[a.declaration() for a in payments.anchors.values()],
        clients=payments.clients(),
    )
    with running_server(dataclasses.replace(settings, anchor_sets=tuple(sets))) as server:
        yield server


@pytest.fixture
def server(payment_server: RunningServer) -> RunningServer:
    return payment_server


def linked(
    server: RunningServer,
    payments: Payments,
    bank: Bank,
    subject: str,
    anchor_id: str,
    claims: dict[str, Any] | None = None,
    disclose: dict[str, Any] | None = None,
) -> tuple[Holder, str]:
    """A person who logged in through ``anchor_id`` and linked their deposit account and
    wallet; their wallet's account id."""
    person = Holder(server, payments, subject)
    if claims is not None:
        person.claims[anchor_id] = claims
    if disclose is not None:
        person.disclose[anchor_id] = disclose
    deposit = bank.register(f"{subject}-deposit", "bank_deposit", f"{subject} savings")
    wallet = bank.register(f"{subject}-wallet", "cbdc_wallet", f"{subject} wallet")
    pkce = Pkce.generate()
    consent = person.log_in(
        person.open(bank.authorization_url([link(deposit, wallet)], pkce)), anchor_id
    )
    answer = person.decide(consent, "approve")
    assert "code" in answer, answer
    bank.redeem(answer["code"], pkce)
    return person, wallet


def large_transfer_step_up(
    person: Holder, bank: Bank, debtor: str, creditor: str
) -> tuple[Pkce, Any]:
    """Ask for 200,000 JPY (above the set's step-up threshold) and choose to log in again: the
    login page of the step-up."""
    pkce = Pkce.generate()
    consent = person.open(bank.authorization_url([transfer(debtor, creditor, "200000")], pkce))
    assert "A stronger login is needed" in parse(consent.text).text
    return pkce, person.step_up(consent)


def audit_entries(server: RunningServer) -> list[dict[str, Any]]:
    """Every log entry as JSON (read without the parser, so this also runs where a kind is
    unknown)."""
    server.services.audit.integrate_pending()
    size = server.services.audit.latest_checkpoint().checkpoint.size
    return [json.loads(item.entry) for item in server.services.audit.entries(0, size)]


def of_kind(server: RunningServer, kind: str) -> list[dict[str, Any]]:
    return [e for e in audit_entries(server) if e["kind"] == kind]


def failed_logins(server: RunningServer) -> list[tuple[str, str]]:
    return [(e["anchor_id"], e["reason"]) for e in of_kind(server, "login") if e["reason"]]


def holder_of(server: RunningServer, anchor_id: str, subject: str) -> str | None:
    with server.services.db.reader() as conn:
        row = conn.execute(
            select(identities.c.holder_id).where(
                identities.c.anchor_id == anchor_id, identities.c.subject == subject
            )
        ).first()
    return None if row is None else str(row.holder_id)


def page_text(response: Any) -> str:
    return html.unescape(response.text)


def test_a_step_up_with_someone_elses_new_credential_is_refused_audited_and_joins_nothing(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Mallory answers Hanako's step-up first with her own fresh high credential: refused as
    someone else's, nothing joined; Mallory's later login with it is not Hanako, and cannot
    debit Hanako's wallet."""
    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    _, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)

    hanako.subject = "mallory"  # the phone that answers is Mallory's, with her own credential
    hanako.claims[JP_HIGH] = {"given_name": "Mallory", "family_name": "Evans"}
    page = hanako.log_in(login, JP_HIGH)
    text = page_text(page)
    assert "it is someone else's credential" in text
    assert "Send JPY 200,000" not in text
    assert holder_of(server, JP_HIGH, "mallory") is None  # nothing joined, nothing recorded
    assert (JP_HIGH, "identity_mismatch") in failed_logins(server)
    assert of_kind(server, "identity_join") == []

    # Later, Mallory logs in with that credential in her own browser: she is not Hanako.
    mallory = Holder(server, payments, "mallory")
    mallory.claims[JP_HIGH] = {"given_name": "Mallory", "family_name": "Evans"}
    pkce = Pkce.generate()
    consent = mallory.log_in(
        mallory.open(bank.authorization_url([transfer(hanako_wallet, taro_wallet, "5000")], pkce)),
        JP_HIGH,
    )
    answer = mallory.decide(consent, "approve")
    assert answer["error_description"] == "denied by policy: holder_mismatch"
    assert holder_of(server, JP_HIGH, "mallory") != holder_of(server, JP_SUBSTANTIAL, "hanako")


def test_a_step_up_with_the_persons_own_second_credential_joins_and_is_audited_by_name(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Hanako's second credential, from another anchor with another subject, writes her name in
    full-width capitals: the same person under the rule's normaliser, so it joins; the audit
    entry names the rule and the claim names, never their values."""
    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    pkce, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)

    hanako.claims[JP_HIGH] = {
        "sub": "hanako-at-the-national-id",
        "given_name": "ＨＡＮＡＫＯ",
        "family_name": "yamada ",
        "birthdate": "1988-05-14",
    }
    consent = hanako.log_in(login, JP_HIGH)
    assert "Send JPY 200,000" in page_text(consent)
    tokens = bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["acr"] == "urn:trustanchor:acr:high"
    assert holder_of(server, JP_HIGH, "hanako-at-the-national-id") == holder_of(
        server, JP_SUBSTANTIAL, "hanako"
    )

    [joined] = of_kind(server, "identity_join")
    assert {k: joined[k] for k in ("action", "rule", "anchor_set_id", "claims")} == {
        "action": "joined",
        "rule": "name-and-birthdate",
        "anchor_set_id": JP_SET,
        "claims": "birthdate family_name given_name",
    }
    assert (joined["anchor_id"], joined["matched_anchor_id"]) == (JP_HIGH, JP_SUBSTANTIAL)
    logged = json.dumps(audit_entries(server), ensure_ascii=False).casefold()
    for value in ("yamada", "hanako", "1988-05-14", "19880514"):  # not bare digits: hashes hold any
        assert value not in logged


def test_a_low_holder_cannot_pass_a_high_step_up_with_someone_elses_credential(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """A holder known only through a low (self-declared) anchor, whose claims copy Hanako's,
    presents Hanako's high credential (never used here yet) in a step-up: low claims are no
    proof, so it is refused; Hanako's identity stays free and becomes hers when she logs in."""
    lowe, lowe_wallet = linked(server, payments, bank, "lowe", JP_LOW, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    _, login = large_transfer_step_up(lowe, bank, lowe_wallet, taro_wallet)

    lowe.subject = "hanako"  # Hanako's credential, in Lowe's hands
    lowe.claims[JP_HIGH] = HANAKO
    text = page_text(lowe.log_in(login, JP_HIGH))
    assert "no declared way of recognising the same person" in text
    assert holder_of(server, JP_HIGH, "hanako") is None
    assert (JP_HIGH, "join_no_rule") in failed_logins(server)

    linked(server, payments, bank, "hanako", JP_HIGH, HANAKO)
    assert holder_of(server, JP_HIGH, "hanako") not in (None, holder_of(server, JP_LOW, "lowe"))


@pytest.mark.parametrize("join_rules", [[]], indirect=True)
def test_a_join_is_refused_when_the_anchors_share_no_set_with_a_rule(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    _, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)
    hanako.claims[JP_HIGH] = {**HANAKO, "sub": "hanako-at-the-national-id"}
    text = page_text(hanako.log_in(login, JP_HIGH))
    assert "no declared way of recognising the same person" in text
    assert holder_of(server, JP_HIGH, "hanako-at-the-national-id") is None
    assert (JP_HIGH, "join_no_rule") in failed_logins(server)


@pytest.mark.parametrize("withdrawn", ["revoked", "expired"])
def test_a_join_is_refused_when_the_holders_identity_is_no_longer_current(
    server: RunningServer, payments: Payments, bank: Bank, withdrawn: str
) -> None:
    """Between asking for the step-up and presenting the new credential, Hanako's identity is
    found revoked (a status check) or expires: it proves nothing any more."""
    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    _, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)
    services = server.services
    at = services.clock.now()
    with services.db.transaction() as conn:
        if withdrawn == "revoked":
            identity_id = conn.execute(
                select(identities.c.id).where(identities.c.subject == "hanako")
            ).scalar_one()
        else:
            conn.execute(
                update(identities).where(identities.c.subject == "hanako").values(expires_at=at - 1)
            )
    if withdrawn == "revoked":
        cascades.credential_status_changed(services.db, identity_id, "revoked", at=at)

    hanako.claims[JP_HIGH] = {**HANAKO, "sub": "hanako-at-the-national-id"}
    text = page_text(hanako.log_in(login, JP_HIGH))
    assert "has expired or is no longer valid" in text
    assert holder_of(server, JP_HIGH, "hanako-at-the-national-id") is None
    assert (JP_HIGH, "join_identity_not_current") in failed_logins(server)


def test_a_minimal_disclosure_is_completed_in_the_same_interaction_and_then_joins(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Hanako first disclosed nothing but her subject. Her new credential cannot be compared, so
    the step-up asks her to present the first credential again (with the rule's claims), offers
    that anchor, and then joins the new one."""
    hanako, hanako_wallet = linked(
        server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO, disclose={}
    )
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    _, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)
    hanako.claims[JP_HIGH] = {**HANAKO, "sub": "hanako-at-the-national-id"}

    again = hanako.log_in(login, JP_HIGH)
    assert "first present again the credential you logged in with" in page_text(again)
    assert holder_of(server, JP_HIGH, "hanako-at-the-national-id") is None
    assert (JP_HIGH, "join_needs_claims") in failed_logins(server)
    offered = [f.fields.get("anchor") for f in parse(again.text).forms if "anchor" in f.fields]
    assert sorted(offered) == sorted([JP_HIGH, JP_SUBSTANTIAL])

    del hanako.disclose[JP_SUBSTANTIAL]  # this time her wallet shows what it is asked for
    consent = hanako.log_in(again, JP_SUBSTANTIAL)
    assert "A stronger login is needed" in page_text(consent)  # still, but now comparable
    consent = hanako.log_in(hanako.step_up(consent), JP_HIGH)
    assert "Send JPY 200,000" in page_text(consent)
    assert "code" in hanako.decide(consent, "approve")
    assert holder_of(server, JP_HIGH, "hanako-at-the-national-id") == holder_of(
        server, JP_SUBSTANTIAL, "hanako"
    )
    assert [e["action"] for e in of_kind(server, "identity_join")] == ["joined"]


def test_an_identity_of_another_holder_never_moves_in_a_step_up(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """Even with the same name and birth date, a known identity keeps its holder."""
    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, twin_wallet = linked(server, payments, bank, "twin", JP_HIGH, HANAKO)
    twin_holder = holder_of(server, JP_HIGH, "twin")
    _, login = large_transfer_step_up(hanako, bank, hanako_wallet, twin_wallet)
    hanako.subject = "twin"
    hanako.claims[JP_HIGH] = HANAKO
    text = page_text(hanako.log_in(login, JP_HIGH))
    assert "someone other than the person already logged in" in text
    assert holder_of(server, JP_HIGH, "twin") == twin_holder
    assert twin_holder != holder_of(server, JP_SUBSTANTIAL, "hanako")
    assert (JP_HIGH, "holder_mismatch") in failed_logins(server)


def test_the_operator_undoes_a_wrong_join_and_what_relied_on_it_is_withdrawn(
    server: RunningServer, payments: Payments, bank: Bank
) -> None:
    """A join the operator finds wrong (say the rule matched two different people of the same
    name and birth date): ``identities unjoin`` moves the identity to a holder of its own,
    revokes the grants that relied on its anchor, and is audited; the next login with that
    credential is not the former holder any more."""
    from trustanchor.services import identity_joining

    hanako, hanako_wallet = linked(server, payments, bank, "hanako", JP_SUBSTANTIAL, HANAKO)
    _, taro_wallet = linked(server, payments, bank, "taro", JP_HIGH)
    pkce, login = large_transfer_step_up(hanako, bank, hanako_wallet, taro_wallet)
    hanako.claims[JP_HIGH] = {**HANAKO, "sub": "namesake"}
    consent = hanako.log_in(login, JP_HIGH)
    tokens = bank.redeem(hanako.decide(consent, "approve")["code"], pkce)
    ledger = RelyingParty(server, payments.ledger, SystemClock(), redirect_uri="")
    assert ledger.post("/introspect", {"token": tokens["access_token"]}).json()["active"]

    services = server.services
    joined_holder = holder_of(server, JP_HIGH, "namesake")
    with services.db.reader() as conn:
        identity_id = conn.execute(
            select(identities.c.id).where(identities.c.subject == "namesake")
        ).scalar_one()
    done = identity_joining.unjoin(
        services.db,
        identity_id,
        pairwise_secret=services.secrets.pairwise,
        randomness=services.randomness,
        at=services.clock.now(),
    )
    assert done.revoked_grants >= 1
    # The browser's SSO session carried the unjoined identity's login: it ended, so the next
    # request in that browser asks for a login instead of resuming as the former holder.
    assert done.ended_sessions >= 1
    again = hanako.open(
        bank.authorization_url([transfer(hanako_wallet, taro_wallet, "5000")], Pkce.generate())
    )
    assert any(form.action.endswith("/wallet") for form in parse(again.text).forms)
    assert holder_of(server, JP_HIGH, "namesake") not in (None, joined_holder)
    assert holder_of(server, JP_SUBSTANTIAL, "hanako") == joined_holder
    assert not ledger.post("/introspect", {"token": tokens["access_token"]}).json()["active"]
    with services.db.reader() as conn:
        reasons = conn.execute(
            select(grants.c.revoked_reason).where(grants.c.revoked_reason.is_not(None))
        ).scalars()
        assert "identity_unjoined" in set(reasons)
    assert [e["action"] for e in of_kind(server, "identity_join")] == ["joined", "unjoined"]
    with pytest.raises(identity_joining.UnjoinRefused):  # its own holder's only identity now
        identity_joining.unjoin(
            services.db,
            identity_id,
            pairwise_secret=services.secrets.pairwise,
            randomness=services.randomness,
            at=services.clock.now(),
        )

    # The namesake's next login with that credential is the namesake, not Hanako.
    namesake = Holder(server, payments, "namesake")
    namesake.claims[JP_HIGH] = HANAKO
    pkce = Pkce.generate()
    consent = namesake.log_in(
        namesake.open(bank.authorization_url([transfer(hanako_wallet, taro_wallet, "5000")], pkce)),
        JP_HIGH,
    )
    answer = namesake.decide(consent, "approve")
    assert answer["error_description"] == "denied by policy: holder_mismatch"
