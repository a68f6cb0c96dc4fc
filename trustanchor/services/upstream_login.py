"""Login at an upstream OpenID Provider (anchor kind ``oidc``, login method ``upstream``).

trustanchor is the provider's relying party: authorization code flow with PKCE S256, ``state``,
``nonce`` and ``private_key_jwt`` with our own key for that provider (keystore/upstream_keys.py).

:func:`begin` opens a login transaction (``wallet_repo``, method ``upstream``) whose id *is* the
``state`` we send (256 random bits), holding the nonce and, in ``data``, the PKCE verifier and
the ``max_age`` we asked for; it returns the provider URL the browser goes to (a pushed request's
``request_uri`` when the provider has a PAR endpoint and the anchor allows it). Each provider has
its own redirect URI, ``<issuer>/upstream/<anchor-id>/callback``, so an answer can never be
taken for another provider's (mix-up).

:func:`callback` handles the provider's answer, in this order (each refusal fails closed):

1. ``state`` names an upstream transaction (unknown, malformed or used → refused page);
2. the transaction is consumed, once, by one conditional UPDATE, whatever follows: every later
   answer naming it is refused, and its outcome is audited once;
3. the transaction's interaction is held by *this* browser (its secret). An answer arriving in
   another browser ends the login (``upstream_other_browser``), and that browser is told that
   the login was started elsewhere: it is what a relay looks like (someone started the login,
   sent the provider's link to the victim, and waits for the answer to come back to them), and
   an upstream login has no legitimate cross-device return;
4. the transaction belongs to the provider whose redirect URI was called (a mix-up ends it
   too, whoever sent it);
5. RFC 9207 ``iss`` checked (required when the provider advertises it, refused when wrong);
6. an ``error`` answer is a failure (``access_denied``: the person declined);
7. the code is exchanged at the token endpoint with the PKCE verifier and a client assertion;
8. the ID token is validated (issuer, audience, nonce, signature with the provider's keys,
   ``auth_time`` within the ``max_age`` we sent, ``at_hash``); UserInfo, when the anchor uses it,
   must name the same ``sub``;
9. the identity (keyed by issuer and ``sub``) goes to ``login_completion.finish``.

Failures are recorded on the transaction with a reason code (the login page shows it) through
``login_completion.fail``; the browser always goes back to the interaction page.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from trustanchor import strict_json
from trustanchor.anchors import oidc_authorization_request, oidc_claims, oidc_client_assertion
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher, FetchError
from trustanchor.anchors.oidc_provider import UpstreamProvider
from trustanchor.anchors.oidc_settings import OidcSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.keystore import upstream_keys
from trustanchor.services import (
    interaction,
    login_choice,
    login_completion,
)
from trustanchor.services.container import Services
from trustanchor.services.interaction import (
    AnchorUnavailable,
    Interaction,
    InteractionGone,
)
from trustanchor.storage import interactions_repo, wallet_repo
from trustanchor.storage.wallet_repo import LoginMethod

log = logging.getLogger("trustanchor.login")

METHOD: LoginMethod = "upstream"
_LOGGABLE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
STATE_BYTES = 32  # 256 bits: the state is the transaction id
MAX_TOKEN_RESPONSE_BYTES = 65536
MAX_USERINFO_BYTES = 65536


class StartedElsewhere(interaction.InteractionRefused):
    """The provider's answer came to a browser that did not start this login: the login is
    ended, and the person is told it was started on another device (perhaps by someone else)."""

    reason = "upstream_other_browser"


class CallbackRefused(interaction.InteractionRefused):
    """The provider's answer names no usable upstream transaction (unknown, used, malformed)."""

    reason = "upstream_callback"


@dataclass(frozen=True, slots=True)
class CallbackParams:
    state: str
    code: str | None
    iss: str | None
    error: str | None


def redirect_uri(services: Services, anchor_id: str) -> str:
    """The one redirect URI registered at this provider (one per provider against mix-up)."""
    return services.endpoints.url(f"/upstream/{anchor_id}/callback")


def jwks_uri(services: Services, anchor_id: str) -> str:
    return services.endpoints.url(f"/upstream/{anchor_id}/jwks.json")


# -- our client key ----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _client_key(keys_dir: str, anchor_id: str, mtime_ns: int) -> upstream_keys.UpstreamClientKey:
    """Parsed once per file version, not per request."""
    return upstream_keys.load(keys_dir, anchor_id)


def client_key(services: Services, anchor_id: str) -> upstream_keys.UpstreamClientKey:
    """Our private_key_jwt key for ``anchor_id``; AnchorFailure when there is none."""
    keys_dir = str(services.settings.service.keys_dir)
    try:
        path = upstream_keys.key_path(keys_dir, anchor_id)
        return _client_key(keys_dir, anchor_id, path.stat().st_mtime_ns)
    except (upstream_keys.UpstreamKeyError, OSError) as exc:
        raise AnchorFailure(
            "upstream_client_key_missing", f"no client key for anchor {anchor_id}"
        ) from exc


def public_jwks(services: Services, anchor_id: str) -> dict[str, Any] | None:
    """The public JWKS to register at the provider (None: no such upstream anchor or key)."""
    anchor = services.anchors.get(anchor_id)
    if anchor is None or anchor.kind != "oidc":
        return None
    try:
        return client_key(services, anchor_id).jwks()
    except AnchorFailure:
        return None


def ensure_client_keys(keys_dir: str | Path, anchors: list[Anchor], *, generate: bool) -> list[str]:
    """At init/start: every ``oidc`` anchor that is not retired has its client key. Made when
    missing if ``generate`` (``trustanchor init``, non-production ``serve``); otherwise a missing
    key is reported (and its logins fail closed with ``upstream_client_key_missing``)."""
    messages = []
    for anchor in anchors:
        if anchor.kind != "oidc" or anchor.status == "retired":
            continue
        alg = str(anchor.settings.get("client_assertion_alg", "ES256"))  # parsed at declaration
        path = upstream_keys.key_path(keys_dir, anchor.id)
        if not generate:
            if not path.exists():
                messages.append(
                    f"anchor {anchor.id}: no upstream client key in {path}: run `trustanchor init`"
                )
            continue
        if upstream_keys.ensure(keys_dir, anchor.id, alg=alg):
            messages.append(
                f"generated upstream client key for anchor {anchor.id} ({alg}); register "
                f"<issuer>/upstream/{anchor.id}/jwks.json at the provider"
            )
    return messages


def client_assertion(services: Services, provider: UpstreamProvider, at: int) -> str:
    """Our ``private_key_jwt`` assertion for this provider (anchors/oidc_client_assertion.py),
    signed with our key for it."""
    key = client_key(services, provider.anchor.id)
    return oidc_client_assertion.client_assertion(
        provider.settings,
        key=key.private_key,
        token_endpoint=provider.metadata().token_endpoint,
        at=at,
        jti=services.randomness.token(24),
        kid=key.kid,
        alg=key.alg,
    )


def _client_auth_params(services: Services, provider: UpstreamProvider, at: int) -> dict[str, str]:
    return {
        "client_id": provider.settings.client_id,
        "client_assertion_type": oidc_client_assertion.CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(services, provider, at),
    }


# -- begin -------------------------------------------------------------------------------------


def _level_to_ask(current: Interaction, anchor: Anchor, settings: OidcSettings) -> str | None:
    """The level we ask the provider for (its ``acr_values``): a step-up's; otherwise the
    anchor's declared level when some configured ``acr`` reaches it (a provider like
    node-oidc-provider returns ``acr`` only when asked, and a missing ``acr`` means the floor)."""
    if current.step_up is not None and isinstance(current.step_up.get("assurance"), str):
        return str(current.step_up["assurance"])
    return anchor.assurance_level if settings.acr_for_level(anchor.assurance_level) else None


def _max_age(current: Interaction) -> int | None:
    """A step-up needs a fresh login at the provider: its ``max_age`` (0 when it names none)."""
    if current.step_up is None:
        return None
    value = current.step_up.get("max_age")
    return int(value) if isinstance(value, int) and value >= 0 else 0


def begin(services: Services, current: Interaction, anchor_id: str) -> str:
    """The upstream login starts: a transaction for one anchor; returns where the browser goes
    (the provider's authorization endpoint, or the interaction page showing why not)."""
    login_choice.client_of(services, current)
    if current.state != "login":
        raise InteractionGone(current.id)
    anchor = login_choice.eligible_for_method(services, current, anchor_id, METHOD)
    if anchor is None:
        raise AnchorUnavailable(anchor_id)
    at = services.clock.now()
    state = services.randomness.token(STATE_BYTES)
    nonce = services.randomness.token(STATE_BYTES)
    verifier = services.randomness.token(STATE_BYTES)  # 43 characters: RFC 7636 §4.1
    max_age = _max_age(current)
    with services.db.transaction() as conn:
        wallet_repo.create(
            conn,
            state,
            current.id,
            anchor.id,
            nonce,
            now=at,
            expires_at=at + services.settings.interaction.wallet_transaction_lifetime,
            method=METHOD,
            data={"code_verifier": verifier, "max_age": max_age},
        )
    try:
        provider = services.verifiers.upstream_provider(anchor)
        metadata = provider.metadata()
        settings = provider.settings
        params = oidc_authorization_request.authorization_parameters(
            settings,
            redirect_uri=redirect_uri(services, anchor.id),
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            max_age=max_age,
            prompt_login=max_age == 0,
            level=_level_to_ask(current, anchor, settings),
        )
        if provider.uses_par():
            assert metadata.pushed_authorization_request_endpoint is not None
            request_uri = _push(services, provider, params, at)
            # OpenID Connect Core 1.0 §6.2: response_type and scope also in OAuth syntax (the
            # provider uses the pushed values; RFC 9126 §4).
            query = {
                "client_id": settings.client_id,
                "request_uri": request_uri,
                "response_type": params["response_type"],
                "scope": params["scope"],
            }
        else:
            query = params
    except AnchorFailure as failure:
        # Used up (no answer can name it) but not audited: nothing reached the provider, and the
        # person can press the button again. The login page shows the reason.
        with services.db.transaction() as conn:
            wallet_repo.consume(conn, state, now=at, method=METHOD)
        login_completion.fail(services, state, failure.reason, failure.detail)
        return f"/interaction/{current.id}"
    separator = "&" if "?" in metadata.authorization_endpoint else "?"
    return metadata.authorization_endpoint + separator + urlencode(query)


def _push(
    services: Services, provider: UpstreamProvider, params: Mapping[str, str], at: int
) -> str:
    """RFC 9126: the request goes to the provider directly, authenticated; the browser carries
    only its ``request_uri``."""
    endpoint = provider.metadata().pushed_authorization_request_endpoint
    assert endpoint is not None
    body = urlencode({**params, **_client_auth_params(services, provider, at)}).encode()
    try:
        answer = _fetcher(services).post(
            endpoint,
            body=body,
            content_type="application/x-www-form-urlencoded",
            accept="application/json",
            max_bytes=MAX_TOKEN_RESPONSE_BYTES,
        )
    except FetchError as exc:
        raise AnchorFailure("upstream_par_failed", str(exc.reason)) from exc
    document = _json_object(answer, "upstream_par_failed")
    request_uri = document.get("request_uri")
    if not isinstance(request_uri, str) or not request_uri or len(request_uri) > 2048:
        raise AnchorFailure("upstream_par_failed", "no request_uri")
    return request_uri


def _fetcher(services: Services) -> Fetcher:
    """The service's one Fetcher (the anchor verifiers hold it): the provider's PAR, token and
    UserInfo endpoints are reached under the same address policy and limits as its metadata."""
    fetcher = services.verifiers.fetcher
    if fetcher is None:
        raise AnchorFailure("upstream_unreachable", "no fetcher configured")
    return fetcher


def _json_object(body: bytes, reason: str) -> dict[str, Any]:
    try:
        document = strict_json.loads(body, max_depth=8, max_bytes=MAX_TOKEN_RESPONSE_BYTES)
    except (ValueError, strict_json.StrictJSONError) as exc:
        raise AnchorFailure(reason, "not JSON") from exc
    if not isinstance(document, dict):
        raise AnchorFailure(reason, "not a JSON object")
    return document


# -- callback ----------------------------------------------------------------------------------


def parse_callback(params: Mapping[str, list[str]]) -> CallbackParams:
    """The authorization response's members, each at most once (a repeated one is refused)."""

    def single(name: str) -> str | None:
        values = params.get(name) or []
        if len(values) > 1:
            raise CallbackRefused(f"{name} repeated")
        return values[0] if values else None

    state = single("state")
    if state is None or not interaction.well_formed_id(state):
        raise CallbackRefused("state missing or malformed")
    return CallbackParams(state, single("code"), single("iss"), single("error"))


def callback(
    services: Services,
    anchor_id: str,
    params: Mapping[str, list[str]],
    browser_secret: str | None,
) -> str:
    """The provider sent the browser back to ``anchor_id``'s redirect URI; returns the
    interaction page to send it to (see the module docstring for the order of the checks)."""
    answer = parse_callback(params)
    at = services.clock.now()
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, answer.state, method=METHOD)
    if tx is None or tx.consumed_at is not None or tx.expires_at <= at:
        raise CallbackRefused("unknown, used or expired state")
    with services.db.transaction() as conn:
        consumed = wallet_repo.consume(conn, tx.id, now=at, method=METHOD)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if consumed else None
    if consumed is None:
        raise CallbackRefused("state already used")
    if not interaction.held_by(services, consumed.interaction_id, browser_secret):
        # Fail closed: a relayed login dies here instead of waiting for its code to travel on.
        _fail(services, consumed, "upstream_other_browser", "answer in another browser")
        raise StartedElsewhere(consumed.interaction_id)
    page = f"/interaction/{consumed.interaction_id}"
    if consumed.anchor_id != anchor_id:
        # The answer came to another provider's redirect URI: a mix-up, whoever sent it.
        _fail(services, consumed, "upstream_mix_up", f"answer at {_loggable(anchor_id)}")
        return page
    if row is None or row.state != "login":
        _fail(services, consumed, "interaction_gone", "the interaction no longer waits")
        return page
    anchor = services.anchors.get(consumed.anchor_id)
    try:
        if anchor is None or not anchor.is_active:
            raise AnchorFailure("anchor_suspended", f"anchor {consumed.anchor_id} is not active")
        provider = services.verifiers.upstream_provider(anchor)
        provider.check_response_issuer(answer.iss)
        if answer.error is not None:
            declined = answer.error == "access_denied"
            raise AnchorFailure(
                "upstream_declined" if declined else "upstream_error", _loggable(answer.error)
            )
        if not answer.code:
            raise AnchorFailure("upstream_error", "no code")
        verified = _verify(services, provider, consumed, answer.code, at)
    except AnchorFailure as failure:
        _fail(services, consumed, failure.reason, failure.detail)
        return page
    with contextlib.suppress(login_completion.LoginRefused):  # recorded and audited there
        login_completion.finish(
            services,
            transaction_id=consumed.id,
            interaction_id=consumed.interaction_id,
            step_up=row.step_up,
            earlier_authentication=row.authentication,
            anchor=provider.anchor,
            verified=verified,
            at=at,
            device="this",  # the callback came in the browser holding the interaction (3.)
        )
    return page


def _verify(
    services: Services,
    provider: UpstreamProvider,
    tx: wallet_repo.WalletTransaction,
    code: str,
    at: int,
) -> Any:
    """Steps 7 and 8: the code for tokens, the ID token (and UserInfo) for the identity."""
    metadata = provider.metadata()
    verifier = tx.data.get("code_verifier")
    if not isinstance(verifier, str):
        raise AnchorFailure("upstream_error", "transaction without a PKCE verifier")
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(services, tx.anchor_id),
            "code_verifier": verifier,
            **_client_auth_params(services, provider, at),
        }
    ).encode()
    fetcher = _fetcher(services)
    try:
        answer = fetcher.post(
            metadata.token_endpoint,
            body=body,
            content_type="application/x-www-form-urlencoded",
            accept="application/json",
            max_bytes=MAX_TOKEN_RESPONSE_BYTES,
        )
    except FetchError as exc:
        raise AnchorFailure("upstream_token_failed", str(exc.reason)) from exc
    tokens = _json_object(answer, "upstream_token_failed")
    access_token = tokens.get("access_token")
    id_token = tokens.get("id_token")
    token_type = tokens.get("token_type")
    if not isinstance(access_token, str) or not access_token or not isinstance(id_token, str):
        raise AnchorFailure("upstream_token_failed", "no access token or ID token")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise AnchorFailure("upstream_token_failed", "token type is not Bearer")
    max_age = tx.data.get("max_age")
    claims = provider.validate_id_token(
        id_token,
        nonce=tx.nonce,
        at=at,
        max_age=max_age if isinstance(max_age, int) else None,
        access_token=access_token,
        clock_skew=services.settings.client_auth.clock_skew,
    )
    userinfo = None
    if provider.settings.userinfo:
        if metadata.userinfo_endpoint is None:
            raise AnchorFailure("upstream_error", "no userinfo endpoint")
        try:
            body = fetcher.get_authorized(
                metadata.userinfo_endpoint,
                accept="application/json",
                max_bytes=MAX_USERINFO_BYTES,
                headers={"Authorization": f"Bearer {access_token}"},
            )
        except FetchError as exc:
            raise AnchorFailure("upstream_userinfo_failed", str(exc.reason)) from exc
        userinfo = oidc_claims.parse_userinfo(body, id_token=claims, max_bytes=MAX_USERINFO_BYTES)
    return oidc_claims.verified_identity(
        provider.anchor,
        provider.settings,
        claims,
        raw_id_token=id_token,
        userinfo=userinfo,
        required_claims=(),
        at=at,
    )


def _loggable(value: str) -> str:
    """A value from the browser's URL, fit for a log line (no control characters, bounded)."""
    return value[:64] if _LOGGABLE.fullmatch(value[:64]) else "(malformed)"


def _fail(services: Services, tx: wallet_repo.WalletTransaction, reason: str, detail: str) -> None:
    """A consumed transaction's failure: recorded and audited once (with its anchor)."""
    login_completion.fail(services, tx.id, reason, detail, anchor_id=tx.anchor_id)
