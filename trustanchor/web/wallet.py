"""The wallet-facing endpoints of OpenID4VP: the request object by reference, the direct_post
response endpoint, and the page a same-device wallet returns the person to."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request

from trustanchor.openid4vp.request_object import (
    REQUEST_OBJECT_MEDIA_TYPE,
    RequestUriPostError,
    parse_request_uri_post,
)
from trustanchor.services import wallet_login
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.cookies import browser_secret
from trustanchor.web.rendering import render_page

blueprint = Blueprint("wallet", __name__, url_prefix="/wallet")
# Every answer here is about one wallet transaction (request objects, responses, the return
# page and its refusals): never cached anywhere.
blueprint.after_request(no_store)


def _refused(exc: wallet_login.WalletRequestRefused) -> Response:
    response = jsonify({"error": exc.error, "error_description": exc.description})
    response.status_code = exc.status
    return response


@blueprint.route("/request/<transaction_id>", methods=["GET", "POST"])
def request_object(transaction_id: str) -> Any:
    services = current_services()
    wallet_nonce = None
    if request.method == "POST":
        try:
            posted = parse_request_uri_post(
                {k: request.form.getlist(k) for k in request.form},
                max_bytes=services.settings.limits.max_body_bytes,
            )
        except RequestUriPostError as exc:
            return _refused(wallet_login.WalletRequestRefused(400, "invalid_request", exc.reason))
        wallet_nonce = posted.wallet_nonce
    try:
        jwt = wallet_login.request_object(services, transaction_id, wallet_nonce=wallet_nonce)
    except wallet_login.WalletRequestRefused as exc:
        return _refused(exc)
    return Response(jwt, mimetype=REQUEST_OBJECT_MEDIA_TYPE)


@blueprint.post("/response")
def response_endpoint() -> Any:
    services = current_services()
    if request.mimetype != "application/x-www-form-urlencoded":
        return _refused(
            wallet_login.WalletRequestRefused(400, "invalid_request", "form body expected")
        )
    try:
        body = wallet_login.receive(services, {k: request.form.getlist(k) for k in request.form})
    except wallet_login.WalletRequestRefused as exc:
        return _refused(exc)
    return jsonify(body)


@blueprint.get("/done/<transaction_id>")
def done(transaction_id: str) -> Any:
    """Where the wallet sends the person after a presentation (the ``redirect_uri`` it got, with
    its one-time ``response_code``). In the browser bound to the interaction the login resumes;
    anywhere else the code is used up and the person is sent to a page (without the code, so
    its language switch and a reload work) telling them to continue where they started."""
    services = current_services()
    codes = request.args.getlist("response_code")
    interaction_id = wallet_login.same_device_return(
        services,
        transaction_id,
        codes[0] if len(codes) == 1 else None,
        browser_secret=browser_secret(),
    )  # ReturnRefused: a page of the interaction pages' refusal vocabulary (web/interaction.py)
    if interaction_id is None:
        return redirect("/wallet/elsewhere", code=303)
    return redirect(f"/interaction/{interaction_id}", code=303)


@blueprint.get("/elsewhere")
def elsewhere() -> Any:
    """Continue on the device where the login started (after a return link used up here)."""
    return render_page("wallet_done.html")
