"""The auditor console (/auditor/): read-only pages over the audit log for designated auditors.

Login is the service's own login (``services.auditor_console``): the console is a first-party
client, so a person proves who they are at a trust anchor like everywhere else. Cookies, both
HttpOnly, SameSite=Lax, limited to /auditor, Secure on https issuers:

- ``ta_auditor_login``: the state of the login this browser started (checked on the callback);
- ``ta_auditor``: the console session id (stored server-side as a digest).

Every page re-checks the session (not expired, not ended, its grant not revoked) and the
designation, so logout, expiry and removal by the operator take effect on the next request.
Answers are ``no-store``; charts are inline SVG without script or style (the CSP allows
neither inline). The only script is the file ``static/local-time.js``, which shows the pages'
``<time>`` elements in the viewer's time zone (without it they stay in UTC). Pages are GET only,
apart from starting a login and logging out (POST, the latter with a CSRF token tied to the
session).

The entries page (docs/AUDIT-FORMAT.md §4) shows each entry as a sentence in the viewer's
language with its canonical text one click away, and filters by kind, outcome and period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, redirect, request
from markupsafe import Markup, escape

from trustanchor.audit.entries import EntryError, parse_reason_counts
from trustanchor.domain.money import Amount, MoneyError
from trustanchor.services import audit_stats, auditor_console, first_party_login
from trustanchor.services.auditor_access import MAX_DECIMAL, MAX_DECIMAL_DIGITS
from trustanchor.services.container import Services
from trustanchor.services.log_check import LogCheckFailed
from trustanchor.services.payment_wording import format_amount
from trustanchor.storage.auditors_repo import SessionAccess
from trustanchor.web import svg_charts
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.end_session import end_sso_session
from trustanchor.web.first_party_cookies import PageCookies
from trustanchor.web.i18n import Translator
from trustanchor.web.rendering import language, render_page

blueprint = Blueprint("auditor", __name__, url_prefix="/auditor")

SESSION_COOKIE = "ta_auditor"
LOGIN_COOKIE = "ta_auditor_login"
COOKIE_PATH = "/auditor"
ENTRIES_PER_PAGE = 50
TOP_REASONS = 12
ALLOWED_COLOUR = "#0b5fff"
DENIED_COLOUR = "#c2410c"


blueprint.after_request(no_store)


COOKIES = PageCookies(path=COOKIE_PATH, session=SESSION_COOKIE, login=LOGIN_COOKIE)


Page = Callable[[SessionAccess], Any]


def designated(view: Page) -> Callable[[], Any]:
    """Run ``view`` only for a live session of a designated auditor: no session → the login
    page; a session of someone not designated → 403 with their auditor reference."""

    @wraps(view)
    def guarded() -> Any:
        services = current_services()
        access = auditor_console.access(services, request.cookies.get(SESSION_COOKIE))
        if access is None:
            return COOKIES.to_login()
        if access.auditor is None:
            return render_page(
                "auditor/forbidden.html",
                status=403,
                reference=access.holder_ref,
                **_chrome(services, nav=False),
            )
        return view(access)

    return guarded


def _chrome(services: Services, *, nav: bool = True) -> dict[str, Any]:
    """What every page of a logged-in person shows: the logout form, and the navigation for
    designated auditors."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    return {
        "csrf": auditor_console.csrf_token(services, session_id),
        "section": request.endpoint or "",
        "show_nav": nav,
    }


# --- login and logout -------------------------------------------------------------------------


@blueprint.get("/login")
def login_page() -> Any:
    services = current_services()
    if auditor_console.access(services, request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect("/auditor/", code=303)
    notice = request.args.get("notice")
    return render_page(
        "auditor/login.html",
        notice=notice if notice in ("logged_out",) else None,
    )


@blueprint.post("/login")
def start_login() -> Any:
    """Push the console's authorization request and send the browser to /authorize."""
    services = current_services()
    try:
        started = auditor_console.begin_login(services, language=language())
    except auditor_console.ConsoleUnavailable:
        return render_page("auditor/message.html", status=503, message_key="auditor.unavailable")
    except first_party_login.LoginsBusy:
        busy = render_page("auditor/message.html", status=429, message_key="auditor.busy")
        busy.headers["Retry-After"] = "2"
        return busy
    return COOKIES.to_authorization(started.authorization_url, started.state)


@blueprint.get("/callback")
def callback() -> Any:
    services = current_services()
    params = {name: request.args.getlist(name) for name in request.args}
    try:
        logged_in = auditor_console.finish_login(
            services, params, bound_state=request.cookies.get(LOGIN_COOKIE)
        )
    except auditor_console.LoginRefused as exc:
        refused = render_page(
            "auditor/message.html",
            status=400,
            message_key=f"auditor.refused.{exc.reason}",
            retry=True,
        )
        if exc.state_matched:
            # This browser's login is over either way. (Anything else leaves the cookie alone:
            # a forged callback must not break a login in progress.)
            COOKIES.forget(refused, LOGIN_COOKIE)
        return refused
    # A fresh session id at every login; any earlier session of this browser ends.
    auditor_console.logout(services, request.cookies.get(SESSION_COOKIE))
    response = redirect("/auditor/", code=303)
    COOKIES.forget(response, LOGIN_COOKIE)
    COOKIES.set(
        response,
        SESSION_COOKIE,
        logged_in.session_id,
        max_age=services.settings.auditor_console.session_lifetime,
    )
    return response


@blueprint.post("/logout")
def logout() -> Any:
    services = current_services()
    session_id = request.cookies.get(SESSION_COOKIE)
    if not auditor_console.csrf_ok(services, session_id, request.form.get("csrf")):
        return render_page("auditor/message.html", status=400, message_key="errors.csrf")
    auditor_console.logout(services, session_id)
    response = redirect("/auditor/login?notice=logged_out", code=303)
    COOKIES.forget(response, SESSION_COOKIE)
    end_sso_session(response)  # the next authorization request in this browser logs in again
    return response


# --- pages ------------------------------------------------------------------------------------


def utc(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _bucket_label(window: audit_stats.Window, start: int) -> str:
    if window.bucket_seconds < 86_400:
        return time.strftime("%H:%M", time.gmtime(start))
    return time.strftime("%m-%d", time.gmtime(start))


@blueprint.get("/")
@designated
def overview(access: SessionAccess) -> Any:
    services = current_services()
    signed = services.audit.latest_checkpoint()
    checkpoint = signed.checkpoint
    window_name = request.args.get("window", audit_stats.DEFAULT_WINDOW)
    window = audit_stats.WINDOWS.get(window_name)
    if window is None:
        window = audit_stats.WINDOWS[audit_stats.DEFAULT_WINDOW]
    stats = audit_stats.statistics(
        services.db, size=checkpoint.size, window=window, now=services.clock.now()
    )
    t = Translator(language())
    return render_page(
        "auditor/overview.html",
        auditor=access.auditor,
        checkpoint=checkpoint,
        root_hex=checkpoint.root_hash.hex(),
        checkpoint_time=local_time(checkpoint.time),
        note=signed.note,
        windows=list(audit_stats.WINDOWS),
        stats=stats,
        window_start=utc(stats.start),
        window_end=utc(stats.end),
        max_scanned=audit_stats.MAX_SCANNED,
        bucket_rows=[
            (utc(b.start), _bucket_label(window, b.start), b.allowed, b.denied)
            for b in stats.buckets
        ],
        decisions_svg=_decisions_chart(t, stats),
        reasons_svg=_reasons_chart(t, stats),
        denial_rows=[
            (d.reason, reason_text(t, d.reason), kind_text(t, d.kind), d.count)
            for d in stats.denials
        ],
        **_chrome(services),
    )


def _decisions_chart(t: Translator, stats: audit_stats.Statistics) -> str:
    return svg_charts.stacked_columns(
        chart_id="decisions-chart",
        title=t("auditor.charts.decisions_title", window=t(f"auditor.windows.{stats.window.name}")),
        description=t(
            "auditor.charts.decisions_desc",
            allowed=stats.allowed,
            denied=stats.denied,
            start=utc(stats.start),
            end=utc(stats.end),
        ),
        categories=[_bucket_label(stats.window, b.start) for b in stats.buckets],
        series=[
            svg_charts.Series(
                t("auditor.charts.allowed"), [b.allowed for b in stats.buckets], ALLOWED_COLOUR
            ),
            svg_charts.Series(
                t("auditor.charts.denied"), [b.denied for b in stats.buckets], DENIED_COLOUR
            ),
        ],
    )


def reason_text(t: Translator, reason: str) -> str:
    """A reason code in words, or the code itself when the console has no text for it."""
    key = f"auditor.reason.{reason}"
    return t(key) if t.has(key) else reason


def kind_text(t: Translator, kind: str) -> str:
    key = f"auditor.kinds.{kind}"
    return t(key) if t.has(key) else kind


def reason_label(t: Translator, kind: str, reason: str) -> str:
    return f"{reason_text(t, reason)} ({kind_text(t, kind)})"


def _reasons_chart(t: Translator, stats: audit_stats.Statistics) -> str:
    shown = list(stats.denials[:TOP_REASONS])
    bars = [svg_charts.Bar(reason_label(t, d.kind, d.reason), d.count) for d in shown]
    rest = sum(d.count for d in stats.denials[TOP_REASONS:])
    if rest:
        bars.append(svg_charts.Bar(t("auditor.charts.other_reasons"), rest))
    return svg_charts.horizontal_bars(
        chart_id="reasons-chart",
        title=t("auditor.charts.reasons_title", window=t(f"auditor.windows.{stats.window.name}")),
        description=t(
            "auditor.charts.reasons_desc", denied=stats.denied, reasons=len(stats.denials)
        ),
        bars=bars,
        colour=DENIED_COLOUR,
        empty_text=t("auditor.charts.no_denials"),
    )


def _index_param(name: str) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > MAX_DECIMAL_DIGITS:
        raise ValueError(name)
    if int(value) > MAX_DECIMAL:
        raise ValueError(name)
    return int(value)


@blueprint.get("/entries")
@designated
def entries(access: SessionAccess) -> Any:
    """Log entries newest first, ENTRIES_PER_PAGE at a time, as sentences with the canonical
    entry one click away; ``before`` pages back by index; ``kind``, ``outcome``, ``from`` and
    ``to`` filter (``services.auditor_console.parse_filter``). A parameter that is not
    acceptable is answered 400 with the filter form and what was wrong."""
    services = current_services()
    size = services.audit.latest_checkpoint().checkpoint.size
    try:
        before = _index_param("before")
    except ValueError:
        return render_page("auditor/message.html", status=400, message_key="auditor.bad_index")
    params = {name: request.args.getlist(name) for name in auditor_console.FILTER_PARAMETERS}
    try:
        entry_filter = auditor_console.parse_filter(params)
    except auditor_console.FilterRefused as exc:
        return render_page(
            "auditor/entries.html",
            status=400,
            refused=exc,
            form=_form_state(params),
            **_entries_context(),
            **_chrome(services),
        )
    page = auditor_console.find_entries(
        services.db, entry_filter, size=size, before=before, per_page=ENTRIES_PER_PAGE
    )
    t = Translator(language())
    words = _Words(services, t)
    rows = []
    for described in auditor_console.describe_page(services.db, page):
        rows.append(
            {
                "index": described.index,
                "time": local_time(described.at),
                "kind": described.kind,
                "kind_label": kind_text(t, described.kind) if described.kind else "?",
                "outcome": described.outcome,
                "sentence": words.sentence(described.sentence),
                "raw": described.text,
                "leaf_hash": described.leaf_hash,
            }
        )
    kept = entry_filter.query()
    return render_page(
        "auditor/entries.html",
        rows=rows,
        page=page,
        filtered=entry_filter.active,
        form=_form_state(params),
        older_url=_entries_url(kept, page.older) if page.older is not None else None,
        newer_url=_entries_url(kept, page.newer) if page.end < size else None,
        latest_url=_entries_url(kept, None),
        **_entries_context(),
        **_chrome(services),
    )


def _entries_context() -> dict[str, Any]:
    return {"kinds": auditor_console.ENTRY_KINDS, "outcomes": auditor_console.OUTCOMES}


def _form_state(params: dict[str, list[str]]) -> dict[str, Any]:
    """What the filter form shows again: the values given (as given, escaped by the template)."""
    return {
        "kind": set(params.get("kind", ())),
        "outcome": set(params.get("outcome", ())),
        "from": (params.get("from") or [""])[0][:10],
        "to": (params.get("to") or [""])[0][:10],
    }


def _entries_url(kept: list[tuple[str, str]], before: int | None) -> str:
    query = [*kept, *([("before", str(before))] if before is not None else [])]
    return "/auditor/entries" + (f"?{urlencode(query)}" if query else "")


def iso_utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def local_time(seconds: int | None) -> Markup:
    """A time for people: UTC text in a ``<time>`` element, which static/local-time.js
    rewrites in the viewer's own time zone (without script the UTC text stays)."""
    if seconds is None:
        return Markup("—")
    return Markup('<time datetime="{}" data-local>{}</time>').format(iso_utc(seconds), utc(seconds))


SHORT = 10  # characters of a pseudonym or digest shown in a sentence (in full in the raw entry)


class _Words:
    """Turns an entry's :class:`Sentence` into text for this viewer's language: codes are
    translated where the console knows them (else shown as they are), anchors and anchor sets
    by their registered names, pseudonyms and digests shortened (in full in the raw entry)."""

    def __init__(self, services: Services, t: Translator) -> None:
        self._t = t
        self._anchors = {a.id: a.name(t.language) for a in services.anchors.list()}
        self._sets = {s.id: s.name(t.language) for s in services.anchors.anchor_sets()}

    def sentence(self, sentence: auditor_console.Sentence) -> Markup:
        main = self._format(sentence)
        if not sentence.clauses:
            return main
        joiner = escape(self._t("auditor.sentence.joiner"))
        clauses = joiner.join(self._format(clause) for clause in sentence.clauses)
        return self._text("auditor.sentence.with_clauses").format(sentence=main, clauses=clauses)

    def _text(self, key: str) -> Markup:
        return escape(self._t(key))  # catalog text is plain text, never markup

    def _format(self, sentence: auditor_console.Sentence) -> Markup:
        values = {name: self.value(value) for name, value in sentence.values.items()}
        return self._text(f"auditor.sentence.{sentence.key}").format(**values)

    def value(self, value: auditor_console.Value) -> Markup:
        raw = value.raw
        if value.kind == "number":
            return escape(f"{raw:,}" if isinstance(raw, int) else raw)
        if value.kind == "phrase":
            return self._format(value.phrase) if value.phrase is not None else Markup("")
        if value.kind == "amount":
            return self._amount(value.currency, raw)
        if value.kind == "time":
            return local_time(raw) if isinstance(raw, int) else escape(str(raw))
        text = str(raw)
        if value.kind == "reason":
            return self.reason(text)
        if value.kind == "label":
            return self._label(value.group, text)
        if value.kind == "anchor":
            return self._named(self._anchors.get(text), text)
        if value.kind == "anchor_set":
            return self._named(self._sets.get(text), text)
        if value.kind in ("pseudonym", "digest"):
            return Markup('<code title="{}">{}…</code>').format(text, text[:SHORT])
        if value.kind == "reasons":
            return self._reason_counts(text)
        if value.kind == "claims":
            return escape(self._t("auditor.sentence.joiner")).join(
                Markup("<code>{}</code>").format(name) for name in text.split(" ")
            )
        return Markup("<code>{}</code>").format(text)

    def _amount(self, currency: str, minor: str | int) -> Markup:
        """Minor units as the consent page writes amounts for this language (``5,000円``,
        ``JPY 5,000``); a value no supported amount can have is shown as it is, in minor
        units."""
        try:
            if not isinstance(minor, int):
                raise MoneyError("bad_amount", "not minor units")
            amount = Amount(currency, minor)
        except MoneyError:
            return Markup("<code>{} {}</code>").format(currency, minor)
        return escape(format_amount(amount, self._t.language))

    def reason(self, code: str) -> Markup:
        """A reason code in words, or the code itself when the console has no text for it."""
        key = f"auditor.reason.{code}"
        if self._t.has(key):
            return Markup('<span class="reason" title="{}">{}</span>').format(code, self._t(key))
        return Markup("<code>{}</code>").format(code)

    def _label(self, group: str, code: str) -> Markup:
        key = f"auditor.{group}.{code}"
        if self._t.has(key):
            return escape(self._t(key))
        return Markup("<code>{}</code>").format(code)

    def _named(self, name: str | None, ident: str) -> Markup:
        if name is None or name == ident:
            return Markup("<code>{}</code>").format(ident)
        return Markup('<span class="named" title="{}">{}</span>').format(ident, name)

    def _reason_counts(self, text: str) -> Markup:
        try:
            counts = parse_reason_counts("reasons", text)
        except EntryError:
            return Markup("<code>{}</code>").format(text)
        joiner = escape(self._t("auditor.sentence.joiner"))
        return joiner.join(
            self._text("auditor.sentence.reason_count").format(
                reason=self.reason(code), count=f"{count:,}"
            )
            for code, count in counts.items()
        )


@blueprint.get("/health")
@designated
def health(access: SessionAccess) -> Any:
    """Check the leaves and checkpoints added since the last verified checkpoint (the console
    remembers it; the first check reads the whole log). The whole-log check is the CLI's
    ``trustanchor audit replay``."""
    services = current_services()
    try:
        verified = auditor_console.check_log(services)
    except LogCheckFailed as exc:
        return render_page(
            "auditor/health.html",
            ok=False,
            reason=exc.reason,
            detail=exc.detail,
            index=exc.index,
            **_chrome(services),
        )
    return render_page(
        "auditor/health.html",
        ok=True,
        size=verified.size,
        root_hex=verified.root_hash.hex(),
        checkpoints=verified.checkpoints,
        since=verified.since,
        read=verified.leaves_read,
        **_chrome(services),
    )
