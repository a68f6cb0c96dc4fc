"""Issue 10, item 7 / SECURITY-CASES "anonymous loops that end in a recorded failure → bounded
audit growth", over real HTTP.

- Anyone can start a login on one of the service's own pages (the auditor console), choose an
  anchor and answer "no" from a script posing as the wallet. Those failures share the anonymous
  budget with anonymous refusals; beyond it they are counted, and one ``omitted`` entry per
  window says how many were left out, by reason.
- A failure that concerns a credential which verified (here: expired) is recorded whatever the
  budget says, and so is every failure of a flow a registered intermediary started.
- The console's stored-log check starts from the last checkpoint it verified and reads only the
  leaves added since; the whole-log check stays with the CLI (``trustanchor audit replay``).

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select, update
from support.credentials import Wallet
from support.ecosystem import Browser, WalletApp
from support.html import parse
from support.rp import Pkce
from support.stage import Stage
from test_auditor_console import Console, designate, reference_on

from trustanchor.cli.audit import audit as audit_cli
from trustanchor.services import audit_stats, auditor_access
from trustanchor.services.audit_log import AuditLogError
from trustanchor.services.refusals import RefusalBudget
from trustanchor.storage.tables import audit_checkpoints, audit_leaves

# (Only modules the parent commit has are imported at the top, so that each test fails there on
# what it checks, not on an import: the new modules are imported where they are used.)
WINDOW = 600  # services/login_failures.WINDOW, checked below


def leaves(stage: Stage) -> list[dict[str, Any]]:
    """Every entry, once integrated under a signed checkpoint (as an auditor gets it)."""
    services = stage.server.services
    services.audit.integrate_pending()
    with services.db.reader() as conn:
        rows = conn.execute(select(audit_leaves.c.entry).order_by(audit_leaves.c.tree_index))
        return [json.loads(row.entry) for row in rows]


def log_size(stage: Stage) -> int:
    """Leaves under the latest checkpoint, once everything pending is integrated."""
    audit = stage.server.services.audit
    audit.integrate_pending()
    return audit.latest_checkpoint().checkpoint.size


def failed_logins(stage: Stage) -> list[str]:
    """The reasons of the recorded login failures, in log order."""
    return [e["reason"] for e in leaves(stage) if e["kind"] == "login" and e["outcome"] == "failed"]


def summaries(stage: Stage) -> list[dict[str, Any]]:
    return [e for e in leaves(stage) if e["kind"] == "omitted"]


def pending_omissions(stage: Stage) -> dict[int, dict[str, int]]:
    from trustanchor.storage import audit_omissions_repo

    with stage.server.services.db.reader() as conn:
        return audit_omissions_repo.pending(conn, what="login")


def wallet_request(stage: Stage, browser: Browser, authorization_url: str) -> dict[str, Any]:
    """Open the authorization URL, choose the anchor: the request object the phone reads."""
    login_page = browser.follow(browser.get(authorization_url))
    assert login_page.status_code == 200, login_page.text
    wallet_page = browser.follow(
        browser.submit(login_page.text, "/wallet", anchor=stage.ecosystem.anchor_id)
    )
    assert wallet_page.status_code == 200, wallet_page.text
    link = parse(wallet_page.text).links["same-device"].replace("&amp;", "&")
    wallet = Wallet.generate()
    phone = WalletApp(stage.server, wallet, stage.ecosystem.credential(wallet))
    return phone.request_object(link)


def decline(request: dict[str, Any]) -> None:
    """The 'wallet' says no (OpenID4VP: error=access_denied)."""
    answer = requests.post(
        request["response_uri"],
        data={"error": "access_denied", "state": request["state"]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def decline_console_login(stage: Stage) -> None:
    """One turn of the anonymous loop: start an auditor-console login, decline at the wallet."""
    console = Console(stage, stage.person())
    decline(wallet_request(stage, console.person.browser, console.begin()))


def present_expired_credential(stage: Stage, authorization_url: str) -> None:
    browser = Browser(stage.server)
    request = wallet_request(stage, browser, authorization_url)
    wallet = Wallet.generate()
    expired = stage.ecosystem.issuer.issue(
        wallet,
        claims={"sub": "person-0002", "given_name": "Hanako", "family_name": "Sato"},
        disclosable={"given_name", "family_name"},
        iat=int(time.time()) - 7200,
        exp=int(time.time()) - 3600,
    )
    answer = WalletApp(stage.server, wallet, expired).respond(request)
    assert answer.status_code == 400
    assert answer.json()["error_description"] == "credential_expired"


def test_anonymous_first_party_login_loop_is_bounded_and_summarised(stage: Stage) -> None:
    services = stage.server.services
    services.refusal_budget = RefusalBudget(burst=3, per_second=0)
    since = services.clock.now() - services.clock.now() % WINDOW
    loops = 8

    for _ in range(loops):
        decline_console_login(stage)

    # Three failures recorded one by one (the budget); the five others only counted so far.
    assert failed_logins(stage) == ["wallet_declined"] * 3
    assert summaries(stage) == []
    assert pending_omissions(stage) == {since: {"wallet_declined": 5}}
    size_before = len(leaves(stage))

    # The window closes; the next failure writes the one summary of the closed window.
    stage.clock.shift(WINDOW)
    decline_console_login(stage)
    [summary] = summaries(stage)
    assert summary == {
        "v": 1,
        "kind": "omitted",
        "at": stage.clock.now(),
        "what": "login",
        "since": since,
        "until": since + WINDOW,
        "count": 5,
        "reasons": "wallet_declined=5",
    }
    assert failed_logins(stage) == ["wallet_declined"] * 3  # the ninth: counted in its window
    assert len(leaves(stage)) == size_before + 1
    assert pending_omissions(stage) == {since + WINDOW: {"wallet_declined": 1}}

    # The console's "denials by reason" counts the summarised failures under their reason.
    size = services.audit.latest_checkpoint().checkpoint.size
    stats = audit_stats.statistics(
        services.db, size=size, window=audit_stats.WINDOWS["24h"], now=stage.clock.now()
    )
    assert audit_stats.Denials("omitted", "wallet_declined", 5) in stats.denials
    assert audit_stats.Denials("login", "wallet_declined", 3) in stats.denials

    from trustanchor.services import login_failures

    assert login_failures.WINDOW == WINDOW


def test_an_intermediarys_public_login_button_has_a_budget_of_its_own(stage: Stage) -> None:
    """Found by the attack session: a script pressing an intermediary's public "log in" button
    (the intermediary pushes a request for whoever pressed it) and declining at the wallet. Those
    failures spend that intermediary's own budget; beyond it they are counted for the window's
    summary, and the anonymous budget of the service's own pages is untouched."""
    from trustanchor.services.refusals import ClientBudgets

    services = stage.server.services
    services.client_login_budgets = ClientBudgets(burst=2, per_second=0)
    for _ in range(5):
        bank_url = stage.bank.authorization_url(stage.bank.request_uri(Pkce.generate()))
        decline(wallet_request(stage, Browser(stage.server), bank_url))
    assert failed_logins(stage) == ["wallet_declined", "wallet_declined"]
    [counts] = pending_omissions(stage).values()
    assert counts == {"wallet_declined": 3}
    decline_console_login(stage)  # the first-party budget is another one: still recorded
    assert failed_logins(stage) == ["wallet_declined"] * 3


def test_verified_credential_and_registered_client_failures_are_always_recorded(
    stage: Stage,
) -> None:
    services = stage.server.services
    services.refusal_budget = RefusalBudget(burst=1, per_second=0)
    decline_console_login(stage)  # spends the whole budget
    decline_console_login(stage)  # counted, not recorded
    assert failed_logins(stage) == ["wallet_declined"]

    # An expired credential that verified, in the same anonymous first-party flow: recorded.
    present_expired_credential(stage, Console(stage, stage.person()).begin())
    # A registered intermediary's flow: its own budget (not spent here), so recorded.
    bank_url = stage.bank.authorization_url(stage.bank.request_uri(Pkce.generate()))
    decline(wallet_request(stage, Browser(stage.server), bank_url))

    assert failed_logins(stage) == ["wallet_declined", "credential_expired", "wallet_declined"]
    [counts] = pending_omissions(stage).values()
    assert counts == {"wallet_declined": 1}


def health(console: Console) -> tuple[int, int, str]:
    """The log check page: (started from size, leaves read, result class)."""
    page = console.get("/auditor/health")
    assert page.status_code == 200, page.text
    result = re.search(r'<p class="(ok|error)" role="\w+" id="health-result">', page.text)
    assert result, page.text
    if result.group(1) == "error":
        return -1, -1, page.text
    since = re.search(r'id="health-since">(\d+)<', page.text)
    read = re.search(r'id="health-read">(\d+)<', page.text)
    return (
        int(since.group(1)) if since else -1,
        int(read.group(1)) if read else -1,
        "ok",
    )


def test_console_log_check_reads_only_the_leaves_added_since_the_last_check(
    stage: Stage,
) -> None:
    services = stage.server.services
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    first_size = log_size(stage)
    assert health(console)[2] == "ok"

    # Damage a leaf the console already verified, then let the log grow by three leaves.
    with services.db.transaction() as conn:
        conn.execute(
            update(audit_leaves)
            .where(audit_leaves.c.tree_index == 0)
            .values(entry=audit_leaves.c.entry + " ")
        )
    for _ in range(3):
        decline_console_login(stage)
    second_size = log_size(stage)
    assert second_size == first_size + 3

    # The console reads the three new leaves only, from the checkpoint it verified (so it does
    # not see the old damage: a check that re-read the whole log would report leaf 0) …
    assert health(console) == (first_size, 3, "ok")
    assert health(console) == (second_size, 0, "ok")  # nothing new: nothing read
    # … while the whole-log check still finds it.
    with pytest.raises(AuditLogError) as found:
        services.audit.verify_stored_log()
    assert (found.value.reason, found.value.index) == ("entry_mismatch", 0)

    # Damage to a new leaf is found by the next check, which names it.
    decline_console_login(stage)
    assert log_size(stage) == second_size + 1
    with services.db.transaction() as conn:
        conn.execute(
            update(audit_leaves)
            .where(audit_leaves.c.tree_index == second_size)
            .values(entry=audit_leaves.c.entry + " ")
        )
    _since, _read, text = health(console)
    assert "<code>entry_mismatch</code>" in text and f"<dd>{second_size}</dd>" in text


def test_the_first_console_check_reads_the_whole_log(stage: Stage) -> None:
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    size = log_size(stage)
    assert health(console) == (0, size, "ok")


def test_a_rolled_back_log_is_reported_not_used_as_a_starting_point(stage: Stage) -> None:
    services = stage.server.services
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    size = log_size(stage)
    assert health(console)[2] == "ok"
    # The checkpoint the console verified disappears (a restore of an older backup, say).
    with services.db.transaction() as conn:
        conn.execute(audit_checkpoints.delete().where(audit_checkpoints.c.size == size))
    _since, _read, text = health(console)
    assert "<code>verified_checkpoint_gone</code>" in text


def test_the_cli_replay_understands_omitted_entries(stage: Stage, tmp_path: Any) -> None:
    """``trustanchor audit replay`` parses every entry strictly: a log with a summary replays."""
    services = stage.server.services
    services.refusal_budget = RefusalBudget(burst=1, per_second=0)
    decline_console_login(stage)
    decline_console_login(stage)
    stage.clock.shift(WINDOW)
    decline_console_login(stage)
    assert len(summaries(stage)) == 1
    signed = services.audit.latest_checkpoint()
    size = signed.checkpoint.size
    (tmp_path / "checkpoint.txt").write_text(signed.note, encoding="utf-8")
    with (tmp_path / "entries.jsonl").open("wb") as out:
        for start in range(0, size, 1000):
            for item in services.audit.entries(start, min(size, start + 1000)):
                out.write(item.entry + b"\n")
    # keys.json as GET /audit/keys serves it (behind an auditor token: built here directly).
    keys = auditor_access.published_keys(services)
    (tmp_path / "keys.json").write_text(json.dumps(keys), encoding="utf-8")
    result = CliRunner().invoke(
        audit_cli,
        [
            "replay",
            "--entries",
            str(tmp_path / "entries.jsonl"),
            "--checkpoint",
            str(tmp_path / "checkpoint.txt"),
            "--keys",
            str(tmp_path / "keys.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "REPLAYED" in result.output
