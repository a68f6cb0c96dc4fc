"""The intermediaries' accounts API: ``/accounts`` and ``/links`` (JSON).

Every call needs an access token with the ``accounts`` scope from client_credentials of a
confidential private_key_jwt client (``services.machine_access``); an intermediary sees and
changes only its own accounts and the links that touch them. Answers are ``no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, make_response, request

from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import OAuthError
from trustanchor.oauth.scopes import ACCOUNTS
from trustanchor.services import accounts
from trustanchor.services.machine_access import authenticate_machine_client
from trustanchor.strict_json import StrictJSONError, loads
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.forms import authorization_headers, dpop_headers, target_path
from trustanchor.web.resource_errors import oauth_error_response

blueprint = Blueprint("accounts_api", __name__)
MAX_BODY = 4096


def _client() -> Client:
    client: Client = g.accounts_client
    return client


@blueprint.before_request
def _authenticate() -> None:
    services = current_services()
    _, client = authenticate_machine_client(
        services,
        scope=ACCOUNTS,
        authorization=authorization_headers(),
        dpop_headers=dpop_headers(),
        method=request.method,
        url=services.endpoints.url(target_path()),
    )
    g.accounts_client = client


blueprint.after_request(no_store)


def _json_body() -> object:
    if request.mimetype != "application/json":
        raise accounts.AccountsError(415, "invalid_request", "the body must be application/json")
    if request.content_length is None or request.content_length > MAX_BODY:
        raise accounts.AccountsError(413, "invalid_request", "the body is missing or too large")
    try:
        return loads(request.get_data(cache=False), max_depth=2, max_bytes=MAX_BODY)
    except StrictJSONError as exc:
        raise accounts.AccountsError(400, "invalid_request", f"not valid JSON: {exc}") from exc


@blueprint.post("/accounts")
def register() -> Any:
    body, created = accounts.register(current_services(), _client(), _json_body())
    response = jsonify(body)
    response.status_code = 201 if created else 200
    if created:
        response.headers["Location"] = current_services().endpoints.url(
            f"/accounts/{body['account_id']}"
        )
    return response


@blueprint.get("/accounts")
def list_accounts() -> Any:
    return jsonify(accounts.list_accounts(current_services(), _client()))


@blueprint.get("/accounts/<account_id>")
def get_account(account_id: str) -> Any:
    return jsonify(accounts.get(current_services(), _client(), account_id))


@blueprint.delete("/accounts/<account_id>")
def close_account(account_id: str) -> Any:
    accounts.close(current_services(), _client(), account_id)
    return make_response("", 204)


@blueprint.get("/links")
def list_links() -> Any:
    return jsonify(accounts.list_links(current_services(), _client()))


@blueprint.delete("/links/<link_id>")
def remove_link(link_id: str) -> Any:
    accounts.remove_link(current_services(), _client(), link_id)
    return make_response("", 204)


@blueprint.put("/links/<link_id>/approval")
def approve_link(link_id: str) -> Any:
    accounts.approve_link(current_services(), _client(), link_id)
    return make_response("", 204)


@blueprint.delete("/links/<link_id>/approval")
def withdraw_link_approval(link_id: str) -> Any:
    accounts.withdraw_link_approval(current_services(), _client(), link_id)
    return make_response("", 204)


@blueprint.delete("/links/<link_id>/standing-authorizations/<standing_id>")
def end_standing(link_id: str, standing_id: str) -> Any:
    accounts.end_standing(current_services(), _client(), link_id, standing_id)
    return make_response("", 204)


@blueprint.errorhandler(accounts.AccountsError)
def _accounts_error(exc: accounts.AccountsError) -> Any:
    response = jsonify({"error": exc.error, "error_description": exc.description})
    response.status_code = exc.status
    return response


@blueprint.errorhandler(OAuthError)
def _oauth_error(exc: OAuthError) -> Any:
    return oauth_error_response(exc, scope=ACCOUNTS)
