"""An upstream OpenID Provider nobody here wrote: idpyoidc's server side (IdentityPython, PyPI
``idpyoidc``) behind a small Flask front, as a real local HTTP server.

The provider does the protocol itself: discovery, its JWKS, authorization with PKCE S256 and the
claims parameter, PAR, the token endpoint with ``private_key_jwt`` (it fetches nothing: our
client's public JWKS is imported when the client is registered), ID tokens and UserInfo. The one
person it knows logs in without a password (idpyoidc's ``NoAuthn``): the tests are about what
trustanchor does with the answers.

The Flask front maps HTTP to idpyoidc's endpoints (``parse_request`` → ``process_request`` →
``do_response``) and has a few *test hooks* that make the provider misbehave the way a hostile or
broken one would: answer UserInfo for another ``sub``, publish a JWKS that lacks the key it signs
with, or leave RFC 9207's ``iss`` advertisement out of its metadata.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, make_response, redirect, request
from idpyoidc.message.oauth2 import ResponseMessage
from idpyoidc.message.oidc import AccessTokenRequest
from idpyoidc.server import Server
from idpyoidc.server.configure import OPConfiguration
from idpyoidc.server.oidc.token import Token
from idpyoidc.server.user_authn.authn_context import INTERNETPROTOCOLPASSWORD

from support.server import serving

USER = "taro"
PLAIN_CLAIMS: dict[str, Any] = {
    "family_name": "Yamada",
    "given_name": "Taro",
    "birthdate": "1990-04-01",
    "address": {"formatted": "1-1 Chiyoda, Tokyo"},
    "gender": "male",
}
VERIFIED_CLAIMS: dict[str, Any] = {
    "verification": {
        "trust_framework": "jp_aml",
        "evidence": [{"type": "electronic_signature", "signature_type": "jp_jpki"}],
    },
    "claims": {"family_name": "Yamada", "given_name": "Taro", "birthdate": "1990-04-01"},
}


def _configuration(issuer: str, acr: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "httpc_params": {"verify": False},
        "keys": {
            "uri_path": "jwks",
            "key_defs": [
                {"type": "RSA", "use": ["sig"]},
                {"type": "EC", "crv": "P-256", "use": ["sig"]},
            ],
        },
        "token_handler_args": {
            "code": {"kwargs": {"lifetime": 600}},
            "token": {
                "class": "idpyoidc.server.token.jwt_token.JWTToken",
                "kwargs": {"lifetime": 3600},
            },
            "refresh": {"kwargs": {"lifetime": 86400}},
            "id_token": {"class": "idpyoidc.server.token.id_token.IDToken", "kwargs": {}},
        },
        "endpoint": {
            "provider_config": {
                "path": ".well-known/openid-configuration",
                "class": "idpyoidc.server.oidc.provider_config.ProviderConfiguration",
                "kwargs": {},
            },
            "authorization": {
                "path": "authorization",
                "class": "idpyoidc.server.oidc.authorization.Authorization",
                "kwargs": {
                    "claims_parameter_supported": True,
                    "response_types_supported": ["code"],
                    "response_modes_supported": ["query"],
                },
            },
            "pushed_authorization": {
                "path": "par",
                "class": "idpyoidc.server.oauth2.pushed_authorization.PushedAuthorization",
                "kwargs": {"client_authn_method": ["private_key_jwt"]},
            },
            "token": {
                "path": "token",
                "class": "idpyoidc.server.oidc.token.Token",
                "kwargs": {"client_authn_method": ["private_key_jwt"]},
            },
            "userinfo": {
                "path": "userinfo",
                "class": "idpyoidc.server.oidc.userinfo.UserInfo",
                "kwargs": {},
            },
        },
        "add_on": {
            "pkce": {
                "function": "idpyoidc.server.oauth2.add_on.pkce.add_support",
                "kwargs": {"essential": True, "code_challenge_method": "S256"},
            }
        },
        "authentication": {
            "anon": {
                "acr": acr,
                "class": "idpyoidc.server.user_authn.user.NoAuthn",
                "kwargs": {"user": USER},
            }
        },
        "userinfo": {
            "class": "idpyoidc.server.user_info.UserInfo",
            "kwargs": {
                "db": {USER: {**PLAIN_CLAIMS, "verified_claims": VERIFIED_CLAIMS}},
            },
        },
        "authz": {
            "class": "idpyoidc.server.authz.AuthzHandling",
            "kwargs": {
                "grant_config": {
                    "usage_rules": {
                        "authorization_code": {
                            "supports_minting": ["access_token", "id_token"],
                            "max_usage": 1,
                        },
                        "access_token": {},
                    },
                    "expires_in": 43200,
                }
            },
        },
        "session_params": {
            "encrypter": {
                "kwargs": {
                    "keys": {
                        "key_defs": [
                            {"type": "OCT", "use": ["enc"], "kid": "password"},
                            {"type": "OCT", "use": ["enc"], "kid": "salt"},
                        ]
                    },
                    "iterations": 1,
                }
            }
        },
    }


@dataclass
class Hooks:
    """Ways to make the provider misbehave (all off by default)."""

    userinfo_sub: str | None = None  # UserInfo answers for this sub instead
    hide_signing_keys: bool = False  # the JWKS lists other keys than those it signs with
    advertise_iss: bool = True  # metadata says authorization_response_iss_parameter_supported
    login_age: int = 0  # the person "logged in" this many seconds ago, whatever max_age asked


@dataclass
class IdpyProvider:
    """idpyoidc's OP at ``issuer`` (see the module docstring)."""

    issuer: str
    server: Server
    hooks: Hooks = field(default_factory=Hooks)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, port: int, work_dir: Path, *, acr: str = INTERNETPROTOCOLPASSWORD) -> Any:
        issuer = f"http://127.0.0.1:{port}"
        work_dir.mkdir(parents=True, exist_ok=True)
        conf = OPConfiguration(
            conf=_configuration(issuer, acr),
            base_path=str(work_dir),
            domain="127.0.0.1",
            port=port,
        )
        server = Server(conf, cwd=str(work_dir))
        # Client assertions: idpyoidc accepts only the endpoint's own URL as ``aud``; accept the
        # issuer too (RFC 7523bis, FAPI 2.0) and, at the PAR endpoint, the token endpoint (an
        # assertion made for a provider with assertion_audience = "token_endpoint").
        server.get_endpoint("token").allowed_targets.append("")
        server.get_endpoint("pushed_authorization").allowed_targets.extend(["", "token"])
        provider = cls(issuer, server)
        provider._age_logins()
        return provider

    def _age_logins(self) -> None:
        """The ``login_age`` hook: a new session's authentication instant (its ``auth_time``)
        is set back, and the browser's existing session is not reused, whatever ``max_age``
        asked (a provider that ignores it)."""
        method = self.server.context.authn_broker.get_method_by_id("anon")
        original = method.authenticated_as
        endpoint = self.server.get_endpoint("authorization")
        create_session = endpoint.create_session
        hooks = self.hooks
        manager = self.server.context.session_manager

        def fresh(client_id: str = "", cookie: Any = None, **kwargs: Any) -> Any:
            return original(client_id, None if hooks.login_age else cookie, **kwargs)

        def aged(*args: Any, **kwargs: Any) -> Any:
            session_id = create_session(*args, **kwargs)
            if hooks.login_age:
                event = manager.get_authentication_event(session_id=session_id)
                event["authn_time"] = event["authn_time"] - hooks.login_age
            return session_id

        method.authenticated_as = fresh
        endpoint.create_session = aged

    def register_client(
        self, client_id: str, redirect_uris: list[str], jwks: Mapping[str, Any]
    ) -> None:
        """Register our relying party as a provider's operator would: its redirect URIs and its
        public JWKS (``private_key_jwt``)."""
        context = self.server.context
        context.cdb[client_id] = {
            "client_id": client_id,
            "client_salt": "salted",
            "redirect_uris": [(uri, {}) for uri in redirect_uris],
            "token_endpoint_auth_method": "private_key_jwt",
            "response_types": ["code"],
            "grant_types": ["authorization_code"],
            "allowed_scopes": ["openid", "profile", "address"],
            "id_token_signed_response_alg": "RS256",
        }
        self.server.keyjar.import_jwks(dict(jwks), client_id)

    # -- the HTTP front ---------------------------------------------------------------------

    def app(self) -> Flask:
        app = Flask("idpy_op")
        provider = self

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            response = provider._serve("provider_config")
            document = json.loads(response.get_data(as_text=True))
            if provider.hooks.advertise_iss:
                # idpyoidc puts iss in every authorization response (its mix-up mitigation)
                document["authorization_response_iss_parameter_supported"] = True
            response.set_data(json.dumps(document))
            return response

        @app.get("/jwks")
        def jwks() -> Response:
            if provider.hooks.hide_signing_keys:
                from cryptojwt.key_jar import build_keyjar

                other = build_keyjar(
                    [
                        {"type": "RSA", "use": ["sig"]},
                        {"type": "EC", "crv": "P-256", "use": ["sig"]},
                    ]
                )
                return _json(other.export_jwks())
            return _json(provider.server.keyjar.export_jwks())

        @app.get("/authorization")
        def authorization() -> Response:
            return provider._serve("authorization")

        @app.post("/par")
        def par() -> Response:
            return provider._serve("pushed_authorization")

        @app.post("/token")
        def token() -> Response:
            return provider._serve("token")

        @app.route("/userinfo", methods=["GET", "POST"])
        def userinfo() -> Response:
            response = provider._serve("userinfo")
            if provider.hooks.userinfo_sub is not None and response.status_code == 200:
                document = json.loads(response.get_data(as_text=True))
                document["sub"] = provider.hooks.userinfo_sub
                response.set_data(json.dumps(document))
            return response

        return app

    def _serve(self, name: str) -> Response:
        """idpyoidc's endpoint ``name`` for the current Flask request (after its example
        front-end, example/flask_op/views.py)."""
        with self.lock:
            return self._serve_locked(name)

    def _serve_locked(self, name: str) -> Response:
        endpoint = self.server.get_endpoint(name)
        http_info = {
            "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() != "cookie"},
            "method": request.method,
            "url": request.url,
            "cookie": [{"name": k, "value": v} for k, v in request.cookies.items()],
        }
        args: Any = request.args.to_dict() if request.method == "GET" else request.form.to_dict()
        if name == "authorization" and "claims" in args:
            args["claims"] = _plain_verified_claims_request(args["claims"])
        try:
            parsed = endpoint.parse_request(args, http_info=http_info)
        except Exception as exc:  # the library's own refusals, as its example front-end does
            return _json({"error": "invalid_request", "error_description": str(exc)}, 400)
        if isinstance(parsed, ResponseMessage) and "error" in parsed:
            status = 401 if parsed["error"] == "invalid_client" else 400
            return _json(parsed.to_dict(), status)
        try:
            if isinstance(endpoint, Token):
                result = endpoint.process_request(AccessTokenRequest(**parsed), http_info=http_info)
            else:
                result = endpoint.process_request(parsed, http_info=http_info)
        except Exception as exc:
            return _json({"error": "invalid_request", "error_description": str(exc)}, 400)
        if isinstance(result, ResponseMessage) and "error" in result:
            return _json(result.to_dict(), 400)
        if "redirect_location" in result:
            return make_response(redirect(result["redirect_location"]))
        if "http_response" in result:
            return make_response(result["http_response"], 200)
        info = endpoint.do_response(request=parsed, **result)
        placement = info.get("response_placement", endpoint.response_placement)
        if placement == "url":
            response = make_response(redirect(info["response"]))
        else:
            response = make_response(info["response"], info.get("response_code", 200))
        for key, value in info.get("http_headers", []):
            response.headers[key] = value
        return response


def _plain_verified_claims_request(claims: str) -> str:
    """idpyoidc 5 releases a person's stored ``verified_claims`` when they are asked for by
    name, but drops the structured OpenID Connect for Identity Assurance request (``{"verification":
    ..., "claims": ...}``). The front asks it by name instead: the answer keeps the standard
    shape, which is what the relying party under test reads."""
    try:
        document = json.loads(claims)
    except ValueError:
        return claims
    if isinstance(document, dict):
        for target in ("userinfo", "id_token"):
            section = document.get(target)
            if isinstance(section, dict) and isinstance(section.get("verified_claims"), dict):
                section["verified_claims"] = None
    return json.dumps(document)


def _json(document: Any, status: int = 200) -> Response:
    response = make_response(json.dumps(document), status)
    response.headers["Content-Type"] = "application/json"
    return response


@contextmanager
def running_provider(port: int, work_dir: Path, **kwargs: Any) -> Iterator[IdpyProvider]:
    provider = IdpyProvider.create(port, work_dir, **kwargs)
    with serving(provider.app(), port):
        yield provider
