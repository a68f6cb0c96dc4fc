"""The card-app-facing endpoints of certificate login (docs/CERTIFICATE-LOGIN.md): the signed
request by reference, the direct_post response endpoint, and the page a same-device card app
returns the person to. The QR code page itself is an interaction page (web/interaction.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request

from trustanchor.services import certificate_login
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.cookies import browser_secret
from trustanchor.web.rendering import render_page

blueprint = Blueprint("certificate", __name__, url_prefix="/certificate")
# Every answer here is about one login transaction: never cached anywhere.
blueprint.after_request(no_store)


def _refused(exc: certificate_login.CertificateRequestRefused) -> Response:
    response = jsonify({"error": exc.error, "error_description": exc.description})
    response.status_code = exc.status
    return response


@blueprint.get("/request/<transaction_id>")
def request_object(transaction_id: str) -> Any:
    try:
        jwt = certificate_login.request_object(current_services(), transaction_id)
    except certificate_login.CertificateRequestRefused as exc:
        return _refused(exc)
    return Response(jwt, mimetype=certificate_login.REQUEST_MEDIA_TYPE)


@blueprint.post("/response")
def response_endpoint() -> Any:
    if request.mimetype != "application/x-www-form-urlencoded":
        return _refused(
            certificate_login.CertificateRequestRefused(
                400, "invalid_request", "form body expected"
            )
        )
    try:
        body = certificate_login.receive(
            current_services(), {k: request.form.getlist(k) for k in request.form}
        )
    except certificate_login.CertificateRequestRefused as exc:
        return _refused(exc)
    return jsonify(body)


@blueprint.get("/done/<transaction_id>")
def done(transaction_id: str) -> Any:
    """Where the card app sends the person after a successful answer (its ``redirect_uri``, with
    the one-time ``response_code``). In the browser bound to the interaction the login resumes;
    anywhere else the code is used up and the person is sent to a page (without the code)
    telling them to continue on the device where they started."""
    codes = request.args.getlist("response_code")
    interaction_id = certificate_login.same_device_return(
        current_services(),
        transaction_id,
        codes[0] if len(codes) == 1 else None,
        browser_secret=browser_secret(),
    )  # ReturnRefused: a page of the interaction pages' refusal vocabulary (web/interaction.py)
    if interaction_id is None:
        return redirect("/certificate/elsewhere", code=303)
    return redirect(f"/interaction/{interaction_id}", code=303)


@blueprint.get("/elsewhere")
def elsewhere() -> Any:
    """Continue on the device where the login started (after a return link used up here)."""
    return render_page("certificate_done.html")
