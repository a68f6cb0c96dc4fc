"""A demo person at the service's pages logging in with their My Number Card instead of their
wallet, without a browser (the :mod:`~trustanchor.demo.autopilot` for certificate login): on
the login page they choose the card's anchor, the phone's card app (:mod:`card_app`, the same
code the app's pages run) answers the same-device link with the demo PIN and password, and the
walk goes on to the consent page. A first login with a card the service does not know is
refused with ``certificate_enrolment_required`` when only the authentication certificate was
asked for; the person then chooses the card again and the service asks for both.
"""

from __future__ import annotations

import requests

from .autopilot import AutopilotError, ServiceVisitor, _Form, _Page
from .card_app import DEMO_AUTH_PIN, DEMO_SIGN_PASSWORD, CardApp, CardError, Pins
from .jpki_ca import JpkiError, load_card
from .people import Person
from .phone import service_verifier
from .site import DemoSite

CARD_ANCHOR = "jp-jpki"
ENROLMENT_REQUIRED = "certificate_enrolment_required"
MAX_ATTEMPTS = 2


class CardVisitor(ServiceVisitor):
    """A person whose phone answers with their My Number Card (anchor ``anchor``)."""

    def __init__(self, site: DemoSite, person: Person, anchor: str = CARD_ANCHOR) -> None:
        super().__init__(site, person)
        self.anchor = anchor
        self.pins = Pins(DEMO_AUTH_PIN, DEMO_SIGN_PASSWORD)

    @staticmethod
    def _anchor_forms(page: str) -> list[_Form]:
        return [
            form
            for form in _Page(page).forms
            if "anchor" in form.fields
            and form.action.rsplit("/", 1)[-1] in ("wallet", "certificate")
        ]

    def _log_in(self, login_page: str) -> requests.Response:
        page = login_page
        for _ in range(MAX_ATTEMPTS):
            form = next(
                (
                    f
                    for f in self._anchor_forms(page)
                    if f.fields["anchor"] == self.anchor and f.action.endswith("/certificate")
                ),
                None,
            )
            if form is None:
                raise AutopilotError(f"the login page does not offer the card anchor {self.anchor}")
            certificate_page = self._follow(self._post(form, {}))
            links = _Page(certificate_page).links
            if not links.get("same-device") or not links.get("continue"):
                raise AutopilotError("the certificate page has no same-device or continue link")
            try:
                redirect_uri = self.answer_with_card(links["same-device"])
            except CardError as exc:
                if exc.detail != ENROLMENT_REQUIRED:
                    raise AutopilotError(f"{self.person.id}'s card was refused: {exc}") from exc
                page = self._open(self.site.service(links["continue"]))  # choose the card again
                continue
            return self._request("GET", redirect_uri or self.site.service(links["continue"]))
        raise AutopilotError(f"{self.person.id}'s card was not accepted in {MAX_ATTEMPTS} tries")

    def answer_with_card(self, link: str) -> str | None:
        """The phone's card app answers the request of ``link``; the redirect URI it got."""
        verifier = service_verifier(self.site, {"en": self.site.service_url})
        app = CardApp(
            http=self.session,
            clock=self.site.clock,
            randomness=self.site.randomness,
            verifiers=[verifier],
            allow_http_loopback=True,
        )
        try:
            card = load_card(self.site.keys_dir, self.person)
        except JpkiError as exc:
            raise AutopilotError(str(exc)) from exc
        request = app.fetch_certificate_request(link)
        return app.answer(request, card, self.pins)


def approve_with_card(site: DemoSite, person: Person, authorization_url: str) -> str:
    """:meth:`CardVisitor.approve` in a fresh browser session."""
    visitor = CardVisitor(site, person)
    try:
        return visitor.approve(authorization_url)
    finally:
        visitor.close()
