"""Cookies of the service's own first-party pages (the auditor console under ``/auditor``, the
holders' links under ``/my``): ``web.cookies.set_cookie`` limited to the pages' path, so neither
area ever sees the other's session."""

from __future__ import annotations

from dataclasses import dataclass

from flask import redirect, request
from werkzeug.wrappers import Response as BaseResponse

from trustanchor.web.blueprints import current_services
from trustanchor.web.cookies import forget_cookie, set_cookie


@dataclass(frozen=True, slots=True)
class PageCookies:
    path: str  # "/auditor", "/my"
    session: str  # the session cookie's name
    login: str  # the pending-login cookie's name

    def set(self, response: BaseResponse, name: str, value: str, *, max_age: int) -> None:
        set_cookie(response, current_services(), name, value, max_age=max_age, path=self.path)

    def forget(self, response: BaseResponse, name: str) -> None:
        """Delete with the attributes it was set with (Secure, HttpOnly, SameSite)."""
        forget_cookie(response, current_services(), name, path=self.path)

    def to_authorization(self, authorization_url: str, state: str) -> BaseResponse:
        """Off to /authorize for the page's login, the login's ``state`` bound to this browser
        (checked on the callback) for as long as an interaction may wait."""
        response = redirect(authorization_url, code=303)
        lifetime = current_services().settings.interaction.lifetime
        self.set(response, self.login, state, max_age=lifetime)
        return response

    def to_login(self) -> BaseResponse:
        """Back to the login page, dropping a session cookie that no longer opens anything."""
        response = redirect(f"{self.path}/login", code=303)
        if self.session in request.cookies:
            self.forget(response, self.session)
        return response
