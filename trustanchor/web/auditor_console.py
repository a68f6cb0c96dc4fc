"""The auditor console (/auditor/): read-only pages over the audit log for designated auditors.

Login is the service's own login (``services.auditor_console``): the console is a first-party
client, so a person proves who they are at a trust anchor like everywhere else. Cookies, both
HttpOnly, SameSite=Lax, limited to /auditor, Secure on https issuers:

- ``ta_auditor_login``: the state of the login this browser started (checked on the callback);
- ``ta_auditor``: the console session id (stored server-side as a digest).

Every page re-checks the session (not expired, not ended, its grant not revoked) and the
designation, so logout, expiry and removal by the operator take effect on the next request.
Answers are ``no-store``; charts are inline SVG without script or style (the CSP allows
neither inline). Pages are GET only, apart
from starting a login and logging out (POST, the latter with a CSRF token tied to the session).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, redirect, request

from trustanchor.services import audit_stats, auditor_console, first_party_login
from trustanchor.services.auditor_access import MAX_DECIMAL_DIGITS
from trustanchor.services.container import Services
from trustanchor.services.log_check import LogCheckFailed
from trustanchor.storage.auditors_repo import SessionAccess
from trustanchor.strict_json import StrictJSONError, loads
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
        checkpoint_time=utc(checkpoint.time),
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


def reason_label(kind: str, reason: str) -> str:
    return f"{reason} ({kind})"


def _reasons_chart(t: Translator, stats: audit_stats.Statistics) -> str:
    shown = list(stats.denials[:TOP_REASONS])
    bars = [svg_charts.Bar(reason_label(d.kind, d.reason), d.count) for d in shown]
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
    return int(value)


@blueprint.get("/entries")
@designated
def entries(access: SessionAccess) -> Any:
    """Log entries newest first, ENTRIES_PER_PAGE at a time; ``before`` pages back by index."""
    services = current_services()
    size = services.audit.latest_checkpoint().checkpoint.size
    try:
        before = _index_param("before")
    except ValueError:
        return render_page("auditor/message.html", status=400, message_key="auditor.bad_index")
    end = size if before is None else min(before, size)
    start = max(0, end - ENTRIES_PER_PAGE)
    rows = []
    for entry in reversed(services.audit.entries(start, end)):
        rows.append(_entry_row(entry.index, entry.entry))
    return render_page(
        "auditor/entries.html",
        rows=rows,
        size=size,
        start=start,
        end=end,
        older=start if start > 0 else None,
        newer=min(end + ENTRIES_PER_PAGE, size) if end < size else None,
        **_chrome(services),
    )


def _entry_row(index: int, raw: bytes) -> dict[str, Any]:
    """An entry for display: index, time, kind and the other members as (name, value) pairs.
    Read generically (any kind, known to this version or not); entries hold no personal data
    by construction (docs/AUDIT-FORMAT.md §1)."""
    try:
        data = loads(raw, max_depth=1)
    except StrictJSONError:
        data = None
    if not isinstance(data, dict):
        text = raw.decode("utf-8", errors="replace")
        return {"index": index, "time": "—", "kind": "?", "fields": [("entry", text)]}
    at = data.get("at")
    fields = [
        (str(name), "null" if value is None else str(value))
        for name, value in sorted(data.items())
        if name not in ("v", "kind", "at")
    ]
    return {
        "index": index,
        "time": utc(at) if isinstance(at, int) and not isinstance(at, bool) else "—",
        "kind": str(data.get("kind", "?")),
        "fields": fields,
    }


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
