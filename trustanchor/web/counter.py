"""``POST /certificate/counter-response``: a bank branch's counter terminal submits the card's
answer on the person's behalf, authenticated as its own client (services/counter_login.py,
docs/CERTIFICATE-LOGIN.md "At a bank branch").

Answers are JSON like the card app's response endpoint: 200 ``{"redirect_uri": …}`` (or ``{}``
after a declined answer), 400 ``{"error", "error_description"}`` for a refused answer, and the
OAuth error of the check that refused the caller (401 ``invalid_client``, 400
``unauthorized_client`` / ``invalid_request``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from trustanchor.oauth.errors import OAuthError
from trustanchor.services import certificate_login, counter_login
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.errors import oauth_error_response
from trustanchor.web.forms import authorization_header, form_body

blueprint = Blueprint("counter", __name__)
blueprint.after_request(no_store)


@blueprint.post("/certificate/counter-response")
def counter_response() -> Any:
    try:
        body = counter_login.receive(
            current_services(), form_body(), authorization=authorization_header()
        )
    except OAuthError as exc:  # the caller was refused: JSON, whatever the path looks like
        return oauth_error_response(exc)
    except certificate_login.CertificateRequestRefused as exc:
        response = jsonify({"error": exc.error, "error_description": exc.description})
        response.status_code = exc.status
        return response
    return jsonify(body)
