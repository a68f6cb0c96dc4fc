"""Issue 3, the auditor console (/auditor/) over real HTTP: a person logs in through the service's
own login (the console is a first-party client: PAR, /authorize, wallet login with an SD-JWT VC,
consent, callback with code/state/iss redeemed by the token service), is refused with their
auditor reference until the operator designates it (``trustanchor auditors add``), then reads
the latest signed checkpoint, the entries and the charts; removal, expiry and logout end access
at the next request; the callback refuses a wrong ``iss``, a foreign ``state`` and a replayed
code. Pages render in Japanese and English under the CSP without inline scripts or styles.

Each test runs on SQLite and PostgreSQL (the ``database_url`` fixture)."""

from __future__ import annotations

import html
import json
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner, Result
from markupsafe import escape
from support.ecosystem import Party, WalletApp
from support.html import parse
from support.person import Person
from support.rp import Pkce, RelyingParty
from support.server import RunningServer
from support.stage import Stage

from trustanchor.audit import entries as audit_entries
from trustanchor.audit.entries import Entry, digest
from trustanchor.cli.auditors import auditors
from trustanchor.cli.context import CliContext
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.services import audit_trail, auditor_console
from trustanchor.services import auditors as designations
from trustanchor.storage.tables import audit_leaves
from trustanchor.web.i18n import catalog

CALLBACK = "/auditor/callback"
SVG = re.compile(r"<svg\b.*?</svg>", re.DOTALL)


@dataclass
class Console:
    """A person at a browser using the console (their phone wallet included)."""

    stage: Stage
    person: Person

    @property
    def server(self) -> RunningServer:
        return self.stage.server

    def get(self, path: str, **params: str) -> requests.Response:
        query = f"?{urlencode(params)}" if params else ""
        return self.person.browser.get(self.server.url(path) + query)

    def begin(self) -> str:
        """The console's login page → its POST → the authorization URL it sends us to."""
        page = self.get("/auditor/login")
        assert page.status_code == 200, page.text
        started = self.person.browser.submit(page.text, "/auditor/login")
        assert started.status_code == 303, started.text
        location = started.headers["Location"]
        assert location.startswith(self.server.url("/authorize?client_id=")), location
        return location

    def authorization_response(self) -> dict[str, str]:
        """Log in at the anchor and consent: the parameters sent back to the console."""
        return self.person.authorize(self.begin(), redirect_uri=self.server.url(CALLBACK))

    def log_in(self) -> requests.Response:
        done = self.get(CALLBACK, **self.authorization_response())
        assert done.status_code == 303, done.text
        assert done.headers["Location"] == "/auditor/"
        return self.get("/auditor/")

    @property
    def session_cookie(self) -> str:
        value = self.person.browser.session.cookies.get("ta_auditor")
        assert value
        return str(value)


def reference_on(page: requests.Response) -> str:
    found = re.search(r'id="auditor-reference"[^>]*>([A-Za-z0-9_-]{43})</code>', page.text)
    assert found, page.text
    return found.group(1)


def run_cli(stage: Stage, *args: str) -> Result:
    context = CliContext(
        config_path=None,
        clock=stage.clock,
        _settings=stage.server.settings,
        _db=stage.server.services.db,
    )
    return CliRunner().invoke(auditors, list(args), obj=context)


def designate(stage: Stage, reference: str, label: str = "Test auditor") -> None:
    designations.add(stage.server.services.db, reference, label, now=stage.clock.now())


def log_entries(stage: Stage) -> list[dict[str, Any]]:
    """Every entry under the latest checkpoint (after integrating what is pending)."""
    audit = stage.server.services.audit
    audit.integrate_pending()
    size = audit.latest_checkpoint().checkpoint.size
    found: list[dict[str, Any]] = []
    for start in range(0, size, 1000):
        found += [json.loads(e.entry) for e in audit.entries(start, min(size, start + 1000))]
    return found


def text_of(key: str, lang: str = "en", **values: object) -> str:
    text = catalog(lang)[key]
    return str(escape(text.format(**values) if values else text))  # as the templates escape


def refused(response: requests.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert text_of(f"auditor.refused.{reason}") in response.text
    assert "ta_auditor=" not in response.headers.get("Set-Cookie", "")


# ------------------------------------------------------------------------------- access control


def test_designation_decides_access_and_removal_takes_effect_at_the_next_request(
    stage: Stage,
) -> None:
    console = Console(stage, stage.person())
    for path in ("/auditor/", "/auditor/entries", "/auditor/health"):
        anonymous = console.get(path)
        assert anonymous.status_code == 303
        assert anonymous.headers["Location"] == "/auditor/login"

    # Logged in, not designated: 403 with the reference to give to the operator.
    forbidden = console.log_in()
    assert forbidden.status_code == 403, forbidden.text
    reference = reference_on(forbidden)
    assert text_of("auditor.forbidden.instructions") in forbidden.text
    assert console.get("/auditor/entries").status_code == 403
    # The reference is the holder pseudonym the log's login entry for this login carries.
    logins = [e for e in log_entries(stage) if e["kind"] == "login" and e["outcome"] == "ok"]
    assert logins[-1]["holder"] == reference

    added = run_cli(stage, "add", reference, "--label", "Internal audit")
    assert added.exit_code == 0, added.output
    assert "designated" in added.output
    listed = run_cli(stage, "list")
    assert listed.exit_code == 0, listed.output
    header, row = listed.output.splitlines()  # a table like the other list commands
    assert header.split() == ["reference", "designated", "(UTC)", "label"]
    assert row.startswith(reference + "  ") and row.endswith("  Internal audit")
    assert row.index("Internal audit") == header.index("label")

    # The overview shows exactly the latest signed checkpoint.
    entries = log_entries(stage)  # integrates the designation's entry
    signed = stage.server.services.audit.latest_checkpoint()
    overview = console.get("/auditor/")
    assert overview.status_code == 200, overview.text
    assert f'id="checkpoint-size">{signed.checkpoint.size}<' in overview.text
    assert f'id="checkpoint-root">{signed.checkpoint.root_hash.hex()}<' in overview.text
    assert html.escape(signed.note, quote=True) in overview.text
    assert "Internal audit" in overview.text

    # The designation is in the log, by the digest of the reference, and on the entries page.
    change = entries[-1]
    assert change["kind"] == "operator_change"
    assert (change["what"], change["id"], change["action"]) == (
        "auditor",
        digest(reference),
        "added",
    )
    listing = console.get("/auditor/entries")
    assert listing.status_code == 200
    assert digest(reference) in listing.text and "operator_change" in listing.text
    assert reference in listing.text  # the login entry's holder

    health = console.get("/auditor/health")
    assert health.status_code == 200
    assert 'id="health-result"' in health.text and 'class="ok"' in health.text

    # Removal: the very next request is refused.
    removed = run_cli(stage, "remove", reference)
    assert removed.exit_code == 0, removed.output
    after = console.get("/auditor/")
    assert after.status_code == 303 and after.headers["Location"] == "/auditor/login"
    withdrawn = log_entries(stage)[-1]
    assert (withdrawn["kind"], withdrawn["what"], withdrawn["id"], withdrawn["action"]) == (
        "operator_change",
        "auditor",
        digest(reference),
        "removed",
    )

    # Logging in again gives the same reference, and no access.
    again = console.log_in()
    assert again.status_code == 403
    assert reference_on(again) == reference


def test_cli_refuses_what_is_not_a_reference_and_unknown_removals(stage: Stage) -> None:
    not_a_reference = run_cli(stage, "add", "alice@example.com", "--label", "Alice")
    assert not_a_reference.exit_code == 1
    assert "not an auditor reference" in not_a_reference.output
    no_label = run_cli(stage, "add", "A" * 43)
    assert no_label.exit_code == 2 and "--label" in no_label.output
    unknown = run_cli(stage, "remove", "A" * 43)
    assert unknown.exit_code == 1 and "not a designated auditor" in unknown.output
    assert run_cli(stage, "list").output.startswith("No auditors designated")
    # A reference may start with "-" (base64url): it is the reference, not an unknown option.
    for dashed in ("-G" + "A" * 41, "--" + "A" * 41):
        added = run_cli(stage, "add", dashed, "--label", "Dash")
        assert added.exit_code == 0 and f"Auditor {dashed} designated" in added.output
        removed = run_cli(stage, "remove", dashed)
        assert removed.exit_code == 0, removed.output
    for command in ([], ["add"], ["remove"], ["list"]):
        helped = run_cli(stage, *command, "--help")
        assert helped.exit_code == 0 and "Usage:" in helped.output


def test_expired_console_session_is_refused(stage: Stage) -> None:
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    assert console.get("/auditor/").status_code == 200
    lifetime = stage.server.settings.auditor_console.session_lifetime
    stage.clock.shift(lifetime - 5)
    assert console.get("/auditor/entries").status_code == 200
    stage.clock.shift(10)
    expired = console.get("/auditor/")
    assert expired.status_code == 303 and expired.headers["Location"] == "/auditor/login"


def test_logout_needs_the_csrf_token_and_ends_the_session(stage: Stage) -> None:
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    overview = console.get("/auditor/")
    assert overview.status_code == 200
    session = console.session_cookie

    forged = requests.post(
        stage.server.url("/auditor/logout"),
        data={"csrf": "x" * 43},
        cookies={"ta_auditor": session},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400
    assert console.get("/auditor/").status_code == 200  # still logged in

    out = console.person.browser.submit(overview.text, "/auditor/logout")
    assert out.status_code == 303
    assert out.headers["Location"] == "/auditor/login?notice=logged_out"
    assert (
        text_of("auditor.login.logged_out") in console.get("/auditor/login?notice=logged_out").text
    )
    replayed = requests.get(
        stage.server.url("/auditor/"),
        cookies={"ta_auditor": session},
        allow_redirects=False,
        timeout=10,
    )
    assert replayed.status_code == 303 and replayed.headers["Location"] == "/auditor/login"


# ------------------------------------------------------------------------------------ callback


def raw_callback(
    stage: Stage, params: dict[str, str], state_cookie: str | None
) -> requests.Response:
    cookies = {"ta_auditor_login": state_cookie} if state_cookie is not None else {}
    return requests.get(
        stage.server.url(CALLBACK),
        params=params,
        cookies=cookies,
        allow_redirects=False,
        timeout=10,
    )


def test_callback_refuses_wrong_iss_foreign_state_and_a_replayed_code(stage: Stage) -> None:
    console = Console(stage, stage.person())
    answer = console.authorization_response()
    state = console.person.browser.session.cookies.get("ta_auditor_login")
    assert state and answer["state"] == state

    refused(raw_callback(stage, {**answer, "iss": "https://evil.example"}, state), "wrong_issuer")
    refused(
        raw_callback(stage, {k: v for k, v in answer.items() if k != "iss"}, state), "wrong_issuer"
    )
    refused(raw_callback(stage, answer, None), "state_mismatch")  # another browser
    refused(raw_callback(stage, answer, secrets.token_urlsafe(32)), "state_mismatch")
    refused(
        raw_callback(stage, {**answer, "state": secrets.token_urlsafe(32)}, state), "state_mismatch"
    )
    refused(raw_callback(stage, {**answer, "code": "not-the-code"}, state), "code_refused")

    # The code was not used by any of those: the genuine callback logs in …
    first = raw_callback(stage, answer, state)
    assert first.status_code == 303, first.text
    session = first.cookies.get("ta_auditor")
    assert session
    # … once. A replay is refused, the token service revokes the grant, and the session
    # created from that grant ends with it.
    refused(raw_callback(stage, answer, state), "code_refused")
    kinds = [e["kind"] for e in log_entries(stage)]
    assert "reuse_detected" in kinds
    after = requests.get(
        stage.server.url("/auditor/"),
        cookies={"ta_auditor": session},
        allow_redirects=False,
        timeout=10,
    )
    assert after.status_code == 303 and after.headers["Location"] == "/auditor/login"


def test_declined_login_is_reported_and_creates_no_session(stage: Stage) -> None:
    console = Console(stage, stage.person())
    answer = console.person.authorize(
        console.begin(), redirect_uri=stage.server.url(CALLBACK), approve=False
    )
    assert answer["error"] == "access_denied"
    declined = console.get(CALLBACK, **answer)
    refused(declined, "declined")
    assert console.get("/auditor/").status_code == 303


def test_the_console_client_cannot_be_used_over_the_network(stage: Stage) -> None:
    impostor = RelyingParty(
        stage.server,
        Party(auditor_console.CLIENT_ID),
        stage.clock,
        redirect_uri=stage.server.url(CALLBACK),
    )
    pushed = impostor.push(Pkce.generate())
    assert pushed.status_code == 401 and pushed.json()["error"] == "invalid_client"
    unauthenticated = impostor.post(
        "/par",
        {"client_id": auditor_console.CLIENT_ID, "response_type": "code"},
        authenticate=False,
    )
    assert unauthenticated.status_code == 401
    redeemed = impostor.redeem("some-code", "v" * 43)
    assert redeemed.status_code == 401 and redeemed.json()["error"] == "invalid_client"


# ---------------------------------------------------------------------------------- the pages


def failed_wallet_attempt(console: Console, login_page: requests.Response) -> requests.Response:
    """Choose the anchor, let the phone answer with a presentation for another nonce; the
    login page again (it shows the failure)."""
    browser = console.person.browser
    anchor = console.stage.ecosystem.anchor_id
    wallet_page = browser.follow(browser.submit(login_page.text, "/wallet", anchor=anchor))
    assert wallet_page.status_code == 200, wallet_page.text
    links = parse(wallet_page.text).links
    ecosystem = console.stage.ecosystem
    phone = WalletApp(
        console.server, console.person.wallet, ecosystem.credential(console.person.wallet)
    )
    request = phone.request_object(links["same-device"].replace("&amp;", "&"))
    answer = phone.respond(request, nonce="x" * 32)
    assert answer.status_code == 400
    assert answer.json()["error_description"] == "kb_nonce_mismatch"
    return browser.get(console.server.url(links["continue"]))


def test_charts_count_the_logged_outcomes_by_reason(stage: Stage) -> None:
    console = Console(stage, stage.person())
    browser = console.person.browser
    login_page = browser.follow(browser.get(console.begin()))
    for _ in range(2):
        login_page = failed_wallet_attempt(console, login_page)
        assert login_page.status_code == 200
        assert text_of("reasons.kb_nonce_mismatch") in login_page.text
    # The third attempt succeeds (Person walks the login page it is given).
    consent = console.person._wallet_login(login_page)
    decision = browser.submit(consent.text, "/consent", decision="approve")
    assert decision.status_code == 303
    callback = browser.get(decision.headers["Location"])
    assert callback.status_code == 303
    designate(stage, reference_on(console.get("/auditor/")))

    entries = log_entries(stage)
    allowed = sum(
        1
        for e in entries
        if (e["kind"] == "login" and e["outcome"] == "ok")
        or (e["kind"] == "decision" and e["result"] == "allowed")
    )
    denied = sum(
        1
        for e in entries
        if (e["kind"] == "login" and e["outcome"] == "failed")
        or (e["kind"] == "decision" and e["result"] == "denied")
        or e["kind"] == "refusal"
    )
    assert allowed >= 1 and denied >= 2

    for window in ("24h", "7d", "30d"):
        page = console.get("/auditor/", window=window)
        assert page.status_code == 200, page.text
        assert f'id="allowed-total">{allowed}<' in page.text
        assert f'id="denied-total">{denied}<' in page.text
        reasons = page.text.split('id="reasons-table"', 1)[1].split("</table>", 1)[0]
        # Reason codes and kinds in words, the code beside them.
        worded = text_of("auditor.reason.kb_nonce_mismatch")
        assert (
            f'<th scope="row">{worded} <code>kb_nonce_mismatch</code></th>'
            "<td>Login</td><td>2</td>" in reasons
        ), reasons
        charts = SVG.findall(page.text)
        assert len(charts) == 2
        decisions, by_reason = (ET.fromstring(svg) for svg in charts)  # noqa: S314 - ours
        ns = "{http://www.w3.org/2000/svg}"
        assert decisions.get("role") == "img" and by_reason.get("role") == "img"
        assert f"{allowed} allowed and {denied} denied" in (decisions.findtext(f"{ns}desc") or "")
        bar_titles = [g.findtext(f"{ns}title") for g in by_reason.iter(f"{ns}g")]
        assert f"{html.unescape(worded)} (Login): 2" in bar_titles

    # An unknown window falls back to the default rather than failing.
    assert console.get("/auditor/", window="1y").status_code == 200


def test_entries_page_back_by_index(stage: Stage) -> None:
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    services = stage.server.services
    with services.db.transaction() as conn:
        for n in range(60):
            audit_trail.record(
                conn,
                audit_trail.operator_change(
                    at=stage.clock.now(), what="anchor", id=f"anchor-{n}", action="suspended"
                ),
            )
    size = len(log_entries(stage))
    latest = console.get("/auditor/entries")
    assert latest.status_code == 200
    indexes = [int(i) for i in re.findall(r'<th scope="row">(\d+)</th>', latest.text)]
    assert indexes == list(range(size - 1, size - 51, -1))
    older = parse(latest.text).links["older"]
    assert older == f"/auditor/entries?before={size - 50}"
    second = console.get(older)
    indexes = [int(i) for i in re.findall(r'<th scope="row">(\d+)</th>', second.text)]
    assert indexes == list(range(size - 51, max(-1, size - 101), -1))
    assert "newer" in parse(second.text).links
    for bad in ("-1", "1e3", "x", "１２"):
        assert console.get("/auditor/entries", before=bad).status_code == 400


def test_pages_in_japanese_and_english_without_inline_script_or_style(stage: Stage) -> None:
    console = Console(stage, stage.person())
    console.log_in()
    forbidden_ja = console.get("/auditor/", lang="ja")
    assert forbidden_ja.status_code == 403 and '<html lang="ja">' in forbidden_ja.text
    assert text_of("auditor.forbidden.heading", "ja") in forbidden_ja.text
    designate(stage, reference_on(forbidden_ja))
    for path in ("/auditor/", "/auditor/entries", "/auditor/health"):
        ja = console.get(path, lang="ja")
        assert ja.status_code == 200
        assert '<html lang="ja">' in ja.text
        assert text_of("auditor.nav.overview", "ja") in ja.text
        en = console.get(path, lang="en")
        assert '<html lang="en">' in en.text
        assert text_of("auditor.nav.overview", "en") in en.text
        for page in (ja, en):
            csp = page.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp
            # Scripts only as files of the service (the local-time script), never inline.
            scripts = re.findall(r"<script\b[^>]*>.*?</script>", page.text, re.DOTALL)
            assert len(scripts) == page.text.count("<script")
            for script in scripts:
                assert script == '<script src="/static/local-time.js" defer></script>', script
            assert " style=" not in page.text
            assert "<style" not in page.text
            assert page.headers["Cache-Control"] == "no-store"
            assert 'name="viewport"' in page.text
    overview_ja = console.get("/auditor/", lang="ja")
    assert text_of("auditor.overview.heading", "ja") in overview_ja.text
    for svg in SVG.findall(overview_ja.text):
        ET.fromstring(svg)  # noqa: S314 - our own output, well-formed in either language
    login_ja = console.get("/auditor/login", lang="ja")  # logged in: on to the overview
    assert login_ja.status_code == 303


# ------------------------------------------------------------------- entries: sentences, filters

DAY = 86_400
SET_ID = "jp-cbdc-pilot"
SET_NAMES = {"en": "Japan CBDC pilot", "ja": "日本CBDC実証"}
HOLDER = "sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k"
OPERATOR = "EYN_tfvFwlEJWbHcarKsX1LJTOMF7W4Fn-WSbIpgahk"
GRANT = digest("grant-1")


def every_kind(at: int, anchor_id: str) -> list[Entry]:
    """One entry of each kind (two for decisions and logins), as the service writes them. The
    first decision's operation follows it; the second's comes last, after other entries (as
    when parallel transactions append between the two): both are joined with their decision."""
    return [
        audit_entries.Decision(
            at=at, decision_id="dec-1", result="allowed", reason="allowed", anchor_set_id=SET_ID
        ),
        audit_entries.DecisionOperation(
            at=at,
            decision_id="dec-1",
            operation="value_transfer",
            currency="JPY",
            amount=5000,
            action=None,
        ),
        audit_entries.Decision(
            at=at,
            decision_id="dec-2",
            result="denied",
            reason="limit_exceeded",
            anchor_set_id=SET_ID,
        ),
        audit_entries.Decision(
            at=at,
            decision_id="dec-3",
            result="denied",
            reason="brand_new_reason",
            anchor_set_id=None,
        ),
        audit_trail.login_failed(at=at, anchor_id=anchor_id, reason="credential_revoked"),
        audit_trail.login_ok(at=at, anchor_id=anchor_id, holder=HOLDER),
        audit_entries.LoginInPerson(
            at=at,
            anchor_id=anchor_id,
            outcome="ok",
            reason=None,
            holder=HOLDER,
            branch="tokyo-marunouchi",
            operator=OPERATOR,
        ),
        audit_entries.TokenIssued(
            at=at,
            jti="at-1",
            token_kind="access_token",
            client_id="bank",
            sub=HOLDER,
            scope="openid",
            authorization_details=digest("details"),
            anchor_id=anchor_id,
            anchor_set_id=SET_ID,
            acr="high",
            exp=at + 300,
        ),
        audit_trail.grant_revoked(at=at, grant_id="grant-1", reason="removed_by_holder"),
        audit_trail.reuse_detected(at=at, what="code", grant_id="grant-1"),
        audit_trail.operator_change(at=at, what="anchor", id=anchor_id, action="suspended"),
        audit_trail.refusal(
            at=at,
            endpoint="token",
            client_id="bank",
            grant_type="authorization_code",
            error="invalid_grant",
            reason="code_reused",
        ),
        audit_trail.omitted(
            at=at,
            what="login",
            since=at - 600,
            until=at,
            counts={"kb_nonce_mismatch": 3, "wallet_declined": 2},
        ),
        audit_entries.IdentityJoin(
            at=at,
            action="joined",
            identity=OPERATOR,
            anchor_id=anchor_id,
            holder=HOLDER,
            new_holder=None,
            rule="name-and-birthdate",
            anchor_set_id=SET_ID,
            matched_anchor_id=anchor_id,
            claims="birthdate family_name given_name",
        ),
        audit_entries.DecisionOperation(
            at=at,
            decision_id="dec-2",
            operation="standing_funding",
            currency="JPY",
            amount=50_000,
            action=None,
        ),
    ]


# The sentence of each entry above, as text (tags stripped), in each language. The anchor's
# registered name is the test ecosystem's.
SENTENCES = {
    "en": [
        "Transfer of JPY 5,000 allowed in Japan CBDC pilot — decision dec-1",
        "Transfer of JPY 5,000 decided — decision dec-1",
        "Standing authorization for up to JPY 50,000 denied in Japan CBDC pilot: amount above"
        " the limit — decision dec-2",
        "Authorization denied before any anchor set applied: brand_new_reason — decision dec-3",
        "Login at National ID (test) refused: credential revoked",
        "Login at National ID (test) succeeded — holder sSx3rWIVwl…",
        "Login with National ID (test) at the counter of branch tokyo-marunouchi succeeded"
        " — holder sSx3rWIVwl…, operator EYN_tfvFwl…",
        "Access token issued to bank — scope openid, login at National ID (test),"
        " anchor set Japan CBDC pilot, authorization details {details}…, subject sSx3rWIVwl…,"
        " expires {exp}",
        "Grant {grant}… revoked with its tokens: link removed by the holder",
        "Authorization code presented twice: grant {grant}… revoked",
        "Operator change: trust anchor National ID (test) suspended",
        "Token request from bank refused (invalid_grant): authorization code used twice"
        " — grant type authorization_code",
        "5 failed login entries not recorded one by one (the anonymous budget was spent) from"
        " {since} to {at}: key binding proof for another login attempt × 3, declined in the"
        " wallet × 2",
        "Identity EYN_tfvFwl… at National ID (test) joined holder sSx3rWIVwl… by rule"
        " name-and-birthdate of Japan CBDC pilot: birthdate, family_name, given_name matched the"
        " holder's identity at National ID (test)",
        "Standing authorization for up to JPY 50,000 decided — decision dec-2",
    ],
    "ja": [
        "日本CBDC実証で5,000円の送金を許可（判定ID：dec-1）",
        "5,000円の送金を判定（判定ID：dec-1）",
        "日本CBDC実証で1回50,000円までの継続的な資金移動の許可を拒否：上限を超える金額"
        "（判定ID：dec-2）",
        "アンカーセットの判定前に認可を拒否：brand_new_reason（判定ID：dec-3）",
        "マイナンバーカード（テスト）でのログインを拒否：クレデンシャルが失効済み",
        "マイナンバーカード（テスト）でのログインに成功（保有者：sSx3rWIVwl…）",
        "支店tokyo-marunouchiの窓口でマイナンバーカード（テスト）によるログインに成功"
        "（保有者：sSx3rWIVwl…、操作者：EYN_tfvFwl…）",
        "bankにアクセストークンを発行（スコープ：openid、ログイン先：マイナンバーカード（テスト）、"
        "アンカーセット：日本CBDC実証、認可詳細：{details}…、主体：sSx3rWIVwl…、有効期限：{exp}）",
        "グラント{grant}…をトークンとともに失効：保有者が連携を解除",
        "認可コードが2回提示されたため、グラント{grant}…を失効",
        "運用者による変更：トラストアンカー「マイナンバーカード（テスト）」を停止",
        "bankからのトークンリクエストを拒否（invalid_grant）：認可コードの2回目の使用"
        "（グラント種別：authorization_code）",
        "{since}から{at}までの失敗したログイン5件を個別に記録せず（匿名の記録枠を超過）："
        "別のログイン試行への鍵結合の証明×3、ウォレットで拒否×2",
        "マイナンバーカード（テスト）のIDEYN_tfvFwl…を、日本CBDC実証の規則name-and-birthdateにより"
        "保有者sSx3rWIVwl…に統合：マイナンバーカード（テスト）での保有者のIDと"
        "birthdate、family_name、given_nameが一致",
        "1回50,000円までの継続的な資金移動の許可を判定（判定ID：dec-2）",
    ],
}


def record(stage: Stage, items: list[Entry]) -> None:
    with stage.server.services.db.transaction() as conn:
        for item in items:
            audit_trail.record(conn, item)


def add_anchor_set(stage: Stage) -> None:
    stage.server.services.anchors.upsert_set(AnchorSet(SET_ID, SET_NAMES), stage.clock.now())


def designated_console(stage: Stage) -> Console:
    console = Console(stage, stage.person())
    designate(stage, reference_on(console.log_in()))
    return console


ROW = re.compile(r'<tr id="entry-(\d+)"(.*?)</tr>', re.DOTALL)


def rows_of(page: requests.Response) -> dict[int, str]:
    """Index → the row's HTML, from the entries table."""
    assert page.status_code == 200, page.text
    return {int(index): body for index, body in ROW.findall(page.text)}


def sentence_of(row: str) -> str:
    found = re.search(r'<p class="sentence">(.*?)</p>', row, re.DOTALL)
    assert found, row
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def utc_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def test_every_entry_reads_as_a_sentence_in_both_languages_with_the_raw_entry(
    stage: Stage,
) -> None:
    console = designated_console(stage)
    add_anchor_set(stage)
    at = stage.clock.now()
    items = every_kind(at, stage.ecosystem.anchor_id)
    assert {item.KIND for item in items} == set(audit_entries.KINDS)  # every kind is shown
    record(stage, items)
    size = len(log_entries(stage))
    first = size - len(items)
    values = {
        "grant": GRANT[:10],
        "details": digest("details")[:10],
        "exp": utc_text(at + 300),
        "since": utc_text(at - 600),
        "at": utc_text(at),
    }
    for lang in ("en", "ja"):
        rows = rows_of(console.get("/auditor/entries", lang=lang))
        for n, (item, expected) in enumerate(zip(items, SENTENCES[lang], strict=True)):
            row = rows[first + n]
            assert sentence_of(row) == expected.format(**values), (lang, item.KIND)
            # The raw entry is one click away: the canonical text, exactly as hashed.
            canonical = item.to_canonical().decode("utf-8")
            assert f'<details class="raw"><summary>{text_of("auditor.entries.raw", lang)}' in row
            assert f"<pre><code>{escape(canonical)}</code></pre>" in row
            # The time as UTC text that the page's script rewrites in the viewer's zone.
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            assert f'<time datetime="{stamp}" data-local>{utc_text(at)}</time>' in row
        assert text_of(f"auditor.kinds.{items[0].KIND}", lang) in rows[first]
        # Nothing personal is added: what the sentences show is what the entries hold, plus the
        # registered names of anchors and anchor sets.
    script = console.get("/static/local-time.js")
    assert script.status_code == 200 and "Intl.DateTimeFormat" in script.text
    assert "javascript" in script.headers["Content-Type"]


def test_entry_of_an_unknown_kind_or_damaged_text_is_shown_not_a_500(stage: Stage) -> None:
    """What a newer version writes, or a damaged row, still lists (the log check names it)."""
    console = designated_console(stage)
    size = len(log_entries(stage))
    services = stage.server.services
    with services.db.transaction() as conn:
        conn.execute(
            audit_leaves.update()
            .where(audit_leaves.c.tree_index == size - 1)
            .values(entry='{"at":1,"kind":"future_kind","v":1}')
        )
    rows = rows_of(console.get("/auditor/entries"))
    assert sentence_of(rows[size - 1]) == "Entry of kind future_kind"


def test_filters_by_kind_outcome_and_period_alone_and_combined(stage: Stage) -> None:
    console = designated_console(stage)
    add_anchor_set(stage)
    anchor = stage.ecosystem.anchor_id
    day0 = stage.clock.now() // DAY * DAY + 3600  # 01:00 UTC of today
    for days_ago in (2, 1, 0):
        record(stage, every_kind(day0 - days_ago * DAY, anchor))
    everything = log_entries(stage)

    def listed(**params: str | list[str]) -> dict[int, str]:
        query = urlencode(params, doseq=True)
        page = console.person.browser.get(console.server.url(f"/auditor/entries?{query}"))
        return rows_of(page)

    def expected(keep: Callable[[dict[str, Any]], bool]) -> set[int]:
        return {i for i, e in enumerate(everything) if keep(e)}

    def day_of(offset: int) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(day0 - offset * DAY))

    # Each filter alone.
    by_kind = listed(kind="decision")
    assert set(by_kind) == expected(lambda e: e["kind"] == "decision")
    assert all('data-kind="decision"' in row for row in by_kind.values())
    for outcome in auditor_console.OUTCOMES:
        rows = listed(outcome=outcome)
        assert set(rows) == expected(lambda e, o=outcome: auditor_console.outcome_of(e) == o)
        assert rows, outcome
        assert all(f'data-outcome="{outcome}"' in row for row in rows.values())
    failed = listed(outcome="failed")
    assert {everything[i]["kind"] for i in failed} == {"login", "omitted"}
    yesterday = listed(**{"from": day_of(1), "to": day_of(1)})
    assert set(yesterday) == expected(lambda e: day0 - DAY <= e["at"] < day0 - DAY + 23 * 3600)
    assert len(yesterday) == len(every_kind(day0, anchor))
    since = listed(**{"from": day_of(1)})
    assert set(since) == expected(lambda e: e["at"] >= day0 - DAY - 3600)
    until = listed(to=day_of(2))
    assert set(until) == expected(lambda e: e["at"] < day0 - DAY - 3600)

    # Combined: several kinds, several outcomes, a period.
    combined = listed(
        kind=["login", "decision"],
        outcome=["denied", "failed"],
        **{"from": day_of(2), "to": day_of(1)},
    )
    assert set(combined) == expected(
        lambda e: (
            e["kind"] in ("login", "decision")
            and auditor_console.outcome_of(e) in ("denied", "failed")
            and e["at"] < day0 - 3600
        )
    )
    assert len(combined) == 2 * 3  # two denied decisions and a failed login, on two days
    # The form shows the filter again; an empty date field is "not set".
    page = console.get("/auditor/entries", kind="login", outcome="failed", to="")
    assert page.status_code == 200
    assert 'name="kind" value="login" checked' in page.text
    assert 'name="outcome" value="failed" checked' in page.text
    assert 'name="kind" value="decision">' in page.text
    # A filter that matches nothing says so.
    empty = console.get("/auditor/entries", kind="identity_join", outcome="refused")
    assert empty.status_code == 200
    assert text_of("auditor.entries.none_matching") in empty.text
    # The language switch keeps the filter.
    switch = parse(page.text).links["switch-language"]
    assert "kind=login" in switch and "outcome=failed" in switch


def test_filtered_paging_keeps_the_filter(stage: Stage) -> None:
    console = designated_console(stage)
    at = stage.clock.now()
    record(
        stage,
        [
            audit_trail.login_failed(at=at, anchor_id="jp-national-id", reason="kb_stale")
            if n % 2
            else audit_trail.operator_change(at=at, what="anchor", id=f"a-{n}", action="added")
            for n in range(130)
        ],
    )
    everything = log_entries(stage)
    failed = [i for i, e in enumerate(everything) if auditor_console.outcome_of(e) == "failed"]
    assert len(failed) == 65
    first = console.get("/auditor/entries", outcome="failed", kind="login")
    rows = rows_of(first)
    assert sorted(rows, reverse=True) == failed[::-1][:50]
    links = parse(first.text).links
    assert "newer" not in links
    older = links["older"].replace("&amp;", "&")
    assert older == f"/auditor/entries?kind=login&outcome=failed&before={failed[-50]}"
    second = console.get(older)
    assert sorted(rows_of(second), reverse=True) == failed[::-1][50:]
    links = parse(second.text).links
    assert "older" not in links
    assert links["newer"].replace("&amp;", "&") == "/auditor/entries?kind=login&outcome=failed"
    assert links["latest"].replace("&amp;", "&") == "/auditor/entries?kind=login&outcome=failed"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ("kind=nonsense", "unknown_kind"),
        ("kind=decision&kind=DECISION", "unknown_kind"),
        ("outcome=maybe", "unknown_outcome"),
        ("from=2026-13-01", "bad_date"),
        ("from=2026-02-30", "bad_date"),
        ("from=1969-12-31", "bad_date"),
        ("to=1e3", "bad_date"),
        ("to=2026-1-1", "bad_date"),
        ("from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01", "bad_date"),  # full-width digits
        ("from=2026-01-01T00:00", "bad_date"),
        ("from=2026-01-01&from=2026-01-02", "repeated"),
        ("from=2026-02-01&to=2026-01-31", "empty_period"),
    ],
)
def test_junk_filter_parameters_are_refused_with_a_message(
    stage: Stage, params: str, reason: str
) -> None:
    console = designated_console(stage)
    for lang in ("en", "ja"):
        page = console.person.browser.get(
            console.server.url(f"/auditor/entries?{params}&lang={lang}")
        )
        assert page.status_code == 400, page.text
        parameter = params.split("=", 1)[0]
        message = text_of(f"auditor.filter.refused.{reason}", lang, parameter=parameter)
        assert f'id="filter-refused">{message}<' in page.text
        assert 'id="entries-filter"' in page.text  # the form, to correct it
        assert 'id="entries-table"' not in page.text
    # Junk in the paging index keeps its own answer.
    assert console.get("/auditor/entries", kind="login", before="x").status_code == 400


def test_a_filtered_page_reads_a_bounded_range_and_says_where_it_stopped(stage: Stage) -> None:
    """One page looks at no more than max_scanned indexes; with fewer matches than a page there,
    it says which range it searched and the older link continues below it."""
    at = stage.clock.now()
    record(
        stage,
        [
            audit_trail.login_failed(at=at, anchor_id="jp-national-id", reason="kb_stale")
            if n % 10 == 0
            else audit_trail.operator_change(at=at, what="anchor", id=f"a-{n}", action="added")
            for n in range(40)
        ],
    )
    everything = log_entries(stage)
    size = len(everything)
    failed = [i for i, e in enumerate(everything) if auditor_console.outcome_of(e) == "failed"]
    only_failed = auditor_console.parse_filter({"outcome": ["failed"]})
    db = stage.server.services.db

    def page(before: int | None) -> auditor_console.EntriesPage:
        return auditor_console.find_entries(
            db, only_failed, size=size, before=before, per_page=3, max_scanned=15
        )

    first = page(None)
    assert [r.index for r in first.rows] == [i for i in reversed(failed) if i >= size - 15]
    assert first.scan_limited and first.searched_from == size - 15 == first.older
    assert first.newer is None
    # Following "older" goes on from where the search stopped, until the start of the log.
    seen = [r.index for r in first.rows]
    current = first
    while current.older is not None:
        current = page(current.older)
        seen += [r.index for r in current.rows]
        assert all(json.loads(r.text)["outcome"] == "failed" for r in current.rows)
    assert seen == list(reversed(failed))
    assert not current.scan_limited and current.searched_from == 0
    # A full page: older is its oldest row, and the newer page's before is past the last match.
    full = auditor_console.find_entries(
        db, only_failed, size=size, before=None, per_page=2, max_scanned=size
    )
    assert [r.index for r in full.rows] == list(reversed(failed))[:2]
    assert full.older == full.rows[-1].index and not full.scan_limited
    back = auditor_console.find_entries(
        db, only_failed, size=size, before=full.older, per_page=2, max_scanned=size
    )
    assert back.newer is None  # the newer page is the latest
    older_still = auditor_console.find_entries(
        db, only_failed, size=size, before=back.rows[-1].index, per_page=1, max_scanned=size
    )
    # Its newer page (one entry a page) is the one holding the next match up.
    assert older_still.newer == back.rows[-1].index + 1
