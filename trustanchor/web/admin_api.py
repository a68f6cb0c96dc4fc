"""The operator's admin API (JSON): anchor sets and their policies under ``/admin/anchor-sets``.

Every call needs an access token with the ``admin`` scope from client_credentials of a
confidential private_key_jwt client (``services.machine_access``). Changing a policy goes through
``services.anchor_set_admin`` — validated, versioned, audited in the same transaction — exactly as
``trustanchor anchor-sets set-policy`` does. Answers are ``no-store``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from trustanchor.oauth.errors import OAuthError
from trustanchor.oauth.scopes import ADMIN
from trustanchor.policy.anchor_set_policy import PolicyError
from trustanchor.services import anchor_set_admin
from trustanchor.services.machine_access import authenticate_machine_client
from trustanchor.strict_json import StrictJSONError, loads
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.forms import authorization_headers, dpop_headers, target_path
from trustanchor.web.resource_errors import oauth_error_response

blueprint = Blueprint("admin_api", __name__, url_prefix="/admin")
MAX_BODY = 16384


class AdminError(Exception):
    def __init__(self, status: int, error: str, description: str, **extra: Any) -> None:
        self.status = status
        self.body = {"error": error, "error_description": description, **extra}
        super().__init__(error)


@blueprint.before_request
def _authenticate() -> None:
    services = current_services()
    authenticate_machine_client(
        services,
        scope=ADMIN,
        authorization=authorization_headers(),
        dpop_headers=dpop_headers(),
        method=request.method,
        url=services.endpoints.url(target_path()),
    )


blueprint.after_request(no_store)


@blueprint.get("/anchor-sets")
def list_sets() -> Any:
    repository = current_services().anchors
    return jsonify(
        {
            "anchor_sets": [
                anchor_set_admin.describe(repository, s) for s in repository.anchor_sets()
            ]
        }
    )


@blueprint.get("/anchor-sets/<set_id>")
def get_set(set_id: str) -> Any:
    repository = current_services().anchors
    found = repository.get_set(set_id)
    if found is None:
        raise AdminError(404, "not_found", "no such anchor set")
    return jsonify(anchor_set_admin.describe(repository, found))


@blueprint.put("/anchor-sets/<set_id>/policy")
def put_policy(set_id: str) -> Any:
    if request.mimetype != "application/json":
        raise AdminError(415, "invalid_request", "the body must be application/json")
    if request.content_length is None or request.content_length > MAX_BODY:
        raise AdminError(413, "invalid_request", "the body is missing or too large")
    try:
        policy = loads(request.get_data(cache=False), max_depth=4, max_bytes=MAX_BODY)
    except StrictJSONError as exc:
        raise AdminError(400, "invalid_request", f"not valid JSON: {exc}") from exc
    services = current_services()
    try:
        change, stored = anchor_set_admin.replace_policy(
            services.anchors, set_id, policy, at=services.clock.now()
        )
    except PolicyError as exc:
        raise AdminError(
            400, "invalid_policy", "the policy was refused", problems=exc.lines("policy")
        ) from exc
    except anchor_set_admin.UnknownAnchorSet as exc:
        raise AdminError(404, "not_found", "no such anchor set") from exc
    body = anchor_set_admin.describe(services.anchors, stored)
    body["changed"] = change.policy_changed
    return jsonify(body)


@blueprint.errorhandler(AdminError)
def _admin_error(exc: AdminError) -> Any:
    response = jsonify(exc.body)
    response.status_code = exc.status
    return response


@blueprint.errorhandler(OAuthError)
def _oauth_error(exc: OAuthError) -> Any:
    return oauth_error_response(exc, scope=ADMIN)
