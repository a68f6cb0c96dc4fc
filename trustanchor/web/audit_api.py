"""The auditors' read-only JSON API under ``/audit/``: checkpoints, entries, proofs, keys.

Every request is authenticated by ``services.auditor_access.authenticate_auditor`` (an access
token with the ``audit`` scope). Errors are answered here, as JSON, by this blueprint's own
handlers: 401/403 carry ``WWW-Authenticate`` (RFC 6750 §3, RFC 9449 §7.1), refused parameters
and unknown references are 400/404 — never a 500 and never the people's HTML error page.
Answers are ``no-store``: the latest checkpoint changes, and tokens were presented.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, make_response, request

from trustanchor.oauth.errors import OAuthError
from trustanchor.oauth.scopes import AUDIT
from trustanchor.services import auditor_access
from trustanchor.services.audit_log import AuditLogError
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.forms import authorization_headers, dpop_headers, target_path
from trustanchor.web.resource_errors import oauth_error_response

blueprint = Blueprint("audit_api", __name__, url_prefix="/audit")

_NOT_FOUND = frozenset({"not_found", "not_integrated", "no_checkpoint"})
_REF_MAX = 255


@blueprint.before_request
def _authenticate() -> None:
    services = current_services()
    auditor_access.authenticate_auditor(
        services,
        authorization=authorization_headers(),
        dpop_headers=dpop_headers(),
        method=request.method,
        url=services.endpoints.url(target_path()),
    )


blueprint.after_request(no_store)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/plain", "application/json"])
    return best == "application/json" or request.args.get("format") == "json"


def _checkpoint_response(signed: Any) -> Any:
    if _wants_json():
        return jsonify(auditor_access.checkpoint_json(signed))
    response = make_response(signed.note)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return response


@blueprint.get("/checkpoint")
def latest_checkpoint() -> Any:
    return _checkpoint_response(current_services().audit.latest_checkpoint())


@blueprint.get("/checkpoint/<size>")
def checkpoint_of_size(size: str) -> Any:
    return _checkpoint_response(
        current_services().audit.checkpoint(auditor_access.decimal_param(size, "size"))
    )


@blueprint.get("/entries")
def entries() -> Any:
    start = auditor_access.decimal_param(request.args.get("start"), "start")
    end = auditor_access.decimal_param(request.args.get("end"), "end")
    return jsonify(
        auditor_access.entries_json(start, end, current_services().audit.entries(start, end))
    )


@blueprint.get("/entries/by-ref/<ref>")
def entry_by_ref(ref: str) -> Any:
    if len(ref) > _REF_MAX:
        raise AuditLogError("not_found", "no entry with that reference")
    return jsonify(auditor_access.entry_json(current_services().audit.entry_by_ref(ref)))


@blueprint.get("/proof/inclusion")
def inclusion() -> Any:
    index = auditor_access.decimal_param(request.args.get("index"), "index")
    size = auditor_access.decimal_param(request.args.get("size"), "size")
    hashes = current_services().audit.inclusion_proof(index, size)
    return jsonify(auditor_access.inclusion_json(index, size, hashes))


@blueprint.get("/proof/consistency")
def consistency() -> Any:
    old = auditor_access.decimal_param(request.args.get("old"), "old")
    new = auditor_access.decimal_param(request.args.get("new"), "new")
    hashes = current_services().audit.consistency_proof(old, new)
    return jsonify(auditor_access.consistency_json(old, new, hashes))


@blueprint.get("/keys")
def keys() -> Any:
    return jsonify(auditor_access.published_keys(current_services()))


@blueprint.errorhandler(AuditLogError)
def _audit_error(exc: AuditLogError) -> Any:
    response = jsonify({"error": exc.reason, "error_description": exc.detail or exc.reason})
    response.status_code = 404 if exc.reason in _NOT_FOUND else 400
    return response


@blueprint.errorhandler(OAuthError)
def _oauth_error(exc: OAuthError) -> Any:
    return oauth_error_response(exc, scope=AUDIT)
