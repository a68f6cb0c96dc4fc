"""A demo person at the service's pages without a browser: the launcher's seed step links
Taro's and Erika's accounts through the real flow with it, so that on first start Hanako already
has one payee inside her anchor set and one outside it.

It does what the person would do in a browser, and nothing more: open the authorization URL the
bank gave, choose their anchor on the login page, let their phone answer the OpenID4VP request
(the same :mod:`trustanchor.demo.phone` the wallet's pages use), continue to the consent page and
press Approve. It returns the URL the service then redirects to (the bank's callback), which the
bank finishes itself. Every page must be the service's own; a step that does not look as
expected is an :class:`AutopilotError` saying which.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

from .holder import HolderError
from .people import Person
from .phone import held_credentials, holder, service_verifier
from .site import DemoSite

TIMEOUT = 10.0
MAX_REDIRECTS = 10
MAX_STEPS = 6  # pages with a form to fill: login, consent, (a step-up login and consent)


class AutopilotError(Exception):
    """The flow did not go as a person would see it go; the message says at which step."""


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, str] = field(default_factory=dict)  # value -> name


class _Page(HTMLParser):
    """The forms of a page (hidden inputs and named buttons) and its links by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.links: dict[str, str] = {}
        self._form: _Form | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = _Form(action=values.get("action", ""))
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and "name" in values:
            self._form.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self._form is not None and "name" in values:
            self._form.buttons[values.get("value", "")] = values["name"]
        elif tag == "a" and "id" in values:
            self.links[values["id"]] = values.get("href", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


class ServiceVisitor:
    """One person's browser session at the service (cookies kept, redirects followed only on
    the service's origin)."""

    def __init__(self, site: DemoSite, person: Person) -> None:
        self.site = site
        self.person = person
        self.session = requests.Session()
        self.session.trust_env = False  # loopback only: no proxies, no .netrc
        parts = urlsplit(site.service_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"

    def close(self) -> None:
        self.session.close()

    def approve(self, authorization_url: str) -> str:
        """Log in through the person's anchor and approve; the URL the service redirected to
        (the client's callback)."""
        left, _ = self._walk(self._request("GET", authorization_url))
        if left is None:
            raise AutopilotError("the service did not send the person back to the client")
        return left

    def open_auditor_console(self) -> str:
        """Log in to the service's auditor console; the page it then shows (the overview for a
        designated auditor, the auditor reference for anyone else)."""
        login = self._follow(self._request("GET", self.site.service("/auditor/login")))
        form = self._form(login, "/auditor/login", "the auditor console's login page")
        left, page = self._walk(self._post(form, {}))
        if left is not None:
            raise AutopilotError(f"the auditor console's login left the service for {left}")
        return page

    def auditor_reference(self) -> str | None:
        """The auditor reference the console shows to a person not (yet) designated; None when
        the console lets them in (designated already: a restart of the demo)."""
        page = self.open_auditor_console()
        found = re.search(r'id="auditor-reference"[^>]*>([A-Za-z0-9_-]{43})<', page)
        if found is not None:
            return found.group(1)
        if 'href="/auditor/entries"' in page:  # the designated auditor's navigation
            return None
        raise AutopilotError("the auditor console shows no auditor reference")

    def _walk(self, response: requests.Response) -> tuple[str | None, str]:
        """Follow the service's pages as the person would: log in where it asks, approve where
        it asks. Ends on a redirect off the service (its URL) or on any other page (its HTML)."""
        for _ in range(MAX_STEPS):
            left, response = self._redirects(response)
            if left is not None:
                return left, ""
            if response.status_code not in (200, 403):  # 403: the console's "not an auditor"
                raise AutopilotError(f"{response.url} answered {response.status_code}")
            page = response.text
            if response.status_code == 403:
                return None, page
            if self._has_form(page, "/consent"):
                consent = self._form(page, "/consent", "the consent page")
                if "approve" not in consent.buttons:
                    reason = " ".join(_Text.of(page).split())[:300]
                    raise AutopilotError(f"the service offers no approval: {reason}")
                response = self._post(consent, {consent.buttons["approve"]: "approve"})
            elif self._anchor_forms(page):
                response = self._log_in(page)
            else:
                return None, page
        raise AutopilotError(f"no end after {MAX_STEPS} pages")

    @staticmethod
    def _anchor_forms(page: str) -> list[_Form]:
        """The login page's forms, one per anchor offered."""
        return [
            form
            for form in _Page(page).forms
            if form.action.endswith("/wallet") and "anchor" in form.fields
        ]

    def _log_in(self, login_page: str) -> requests.Response:
        anchor = self.person.anchor
        anchor_form = next(
            (form for form in self._anchor_forms(login_page) if form.fields["anchor"] == anchor),
            None,
        )
        if anchor_form is None:
            raise AutopilotError(f"the login page does not offer the anchor {anchor}")
        wallet_page = self._follow(self._post(anchor_form, {}))
        same_device = _Page(wallet_page).links.get("same-device")
        if not same_device:
            raise AutopilotError("the wallet page has no same-device link")
        redirect_uri = self._answer_with_phone(same_device)
        after = redirect_uri or urljoin(self.site.service_url, _continue(wallet_page))
        return self._request("GET", after)

    def _answer_with_phone(self, wallet_url: str) -> str | None:
        verifier = service_verifier(self.site, {"en": self.site.service_url})
        phone = holder(self.site, self.session, verifier)
        try:
            request = phone.fetch_request(wallet_url)
            return phone.present(phone.propose(request, held_credentials(self.site, self.person)))
        except HolderError as exc:
            raise AutopilotError(f"{self.person.id}'s wallet refused: {exc}") from exc
        except ValueError as exc:
            raise AutopilotError(f"{self.person.id}'s credential: {exc}") from exc

    # -- HTTP on the service's origin -----------------------------------------------------------

    def _open(self, url: str) -> str:
        return self._follow(self._request("GET", url))

    def _post(self, form: _Form, extra: Mapping[str, str]) -> requests.Response:
        url = urljoin(self.site.service_url, form.action)
        return self._request("POST", url, data={**form.fields, **extra})

    def _follow(self, response: requests.Response) -> str:
        """The page the redirects lead to on the service (200 only)."""
        left, response = self._redirects(response)
        if left is not None:
            raise AutopilotError(f"the flow left the service for {left}")
        if response.status_code != 200:
            raise AutopilotError(f"{response.url} answered {response.status_code}")
        return response.text

    def _redirects(self, response: requests.Response) -> tuple[str | None, requests.Response]:
        """Follow redirects on the service's origin; a redirect elsewhere ends the walk with its
        target (the client's callback), anything else with the response reached."""
        for _ in range(MAX_REDIRECTS):
            if response.status_code not in (301, 302, 303, 307, 308):
                return None, response
            target = urljoin(response.url, response.headers["Location"])
            if not target.startswith(self._origin + "/"):
                return target, response
            response = self._request("GET", target)
        raise AutopilotError(f"more than {MAX_REDIRECTS} redirects from {response.url}")

    def _request(
        self, method: str, url: str, data: Mapping[str, str] | None = None
    ) -> requests.Response:
        if not url.startswith(self._origin + "/"):
            raise AutopilotError(f"the flow left the service for {url}")
        try:
            return self.session.request(
                method, url, data=data, timeout=TIMEOUT, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise AutopilotError(f"{method} {url}: {exc.__class__.__name__}") from exc

    @staticmethod
    def _has_form(page: str, action_suffix: str) -> bool:
        return any(form.action.endswith(action_suffix) for form in _Page(page).forms)

    @staticmethod
    def _form(page: str, action_suffix: str, what: str) -> _Form:
        for form in _Page(page).forms:
            if form.action.endswith(action_suffix):
                return form
        raise AutopilotError(f"not on {what}: {' '.join(_Text.of(page).split())[:300]}")


def _continue(wallet_page: str) -> str:
    link = _Page(wallet_page).links.get("continue")
    if not link:
        raise AutopilotError("the wallet page has no continue link")
    return link


class _Text(HTMLParser):
    """The visible text of a page, for error messages."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return " ".join(parser.parts)


def approve_at_service(site: DemoSite, person: Person, authorization_url: str) -> str:
    """:meth:`ServiceVisitor.approve` in a fresh browser session."""
    visitor = ServiceVisitor(site, person)
    try:
        return visitor.approve(authorization_url)
    finally:
        visitor.close()


def auditor_reference_of(site: DemoSite, person: Person) -> str | None:
    """:meth:`ServiceVisitor.auditor_reference` in a fresh browser session."""
    visitor = ServiceVisitor(site, person)
    try:
        return visitor.auditor_reference()
    finally:
        visitor.close()
