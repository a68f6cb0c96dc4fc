"""The wallet's Authorization Response at our ``response_uri`` (Response Mode ``direct_post``).

OpenID4VP 1.0 section 8.2: the wallet POSTs ``application/x-www-form-urlencoded`` with either

- ``vp_token`` — a JSON object keyed by the DCQL Credential Query ``id``, each value an array of
  presentations (section 8.1; an SD-JWT VC presentation is the string
  ``<issuer JWT>~<disclosure>~…~<KB-JWT>``), and ``state``; or
- ``error`` (an RFC 6749 / section 8.5 code such as ``access_denied``), optional
  ``error_description``, and ``state``.

:func:`parse_direct_post` turns that form into a :class:`WalletResponse` or raises
:class:`WalletResponseError` with a reason code — for *every* malformed input, so the endpoint can
audit and answer 400 without ever reaching a 500. It only checks shape: the caller looks the
transaction up by ``state`` (it is a one-time secret: compare as such) and hands the presentation to
the anchor's SD-JWT VC verifier, which checks signatures, ``nonce`` and ``aud`` (= our full
``client_id``).

We ask for exactly one credential and do not set ``multiple``, so the response must hold exactly
one presentation for that id and nothing else: an extra credential id or a second presentation is
a response to some other request. An encrypted response (``response``, i.e. ``direct_post.jwt``)
was not asked for and is refused.

After processing (success *or* wallet error) the endpoint answers 200 with a JSON object
(:func:`response_endpoint_reply`), ``Cache-Control: no-store``. In the same-device flow that object
carries a ``redirect_uri`` holding a fresh response code (:func:`same_device_redirect_uri`): the
browser that follows it proves it is the one the wallet ran on, which defeats session fixation
(Security Considerations, "Session Fixation"). Cross-device, the browser polls instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from trustanchor import strict_json
from trustanchor.openid4vp.links import LinkError, check_https_url

_STATE = re.compile(r"[A-Za-z0-9._~-]{1,256}")
# RFC 6749 section 5.2: error and error_description use %x20-21 / %x23-5B / %x5D-7E.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}")
_ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{0,1024}")
# An SD-JWT presentation: base64url segments joined by "." and "~".
_SD_JWT_PRESENTATION = re.compile(r"[A-Za-z0-9_\-.~]+")
_RESPONSE_CODE = re.compile(r"[A-Za-z0-9_-]{22,256}")
_READ = ("vp_token", "state", "error", "error_description", "response")


class WalletResponseError(ValueError):
    """The wallet's response is malformed. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class WalletResponse:
    """Either one ``presentation`` or a wallet-declared ``error``; always the ``state``."""

    state: str
    presentation: str | None = None
    error: str | None = None
    error_description: str | None = None

    def __post_init__(self) -> None:
        if (self.presentation is None) == (self.error is None):
            raise ValueError("a WalletResponse holds a presentation or an error, not both")
        if self.error_description is not None and self.error is None:
            raise ValueError("error_description only accompanies an error")

    @property
    def is_error(self) -> bool:
        return self.error is not None


def parse_direct_post(
    form: Mapping[str, list[str]], *, credential_id: str, max_bytes: int
) -> WalletResponse:
    """Parse the POSTed form (``MultiDict.to_dict(flat=False)``: name → list of values).

    ``credential_id`` is the DCQL Credential Query id we asked for; ``max_bytes`` bounds the
    UTF-8 size of all names and values together (the web layer should also cap the body).
    """
    params = _single_params(form, max_bytes)
    if "response" in params:
        raise WalletResponseError(
            "encrypted_response_not_supported", "direct_post.jwt was not requested"
        )
    state = params.get("state")
    if state is None:
        raise WalletResponseError("missing_state", "state is required")
    if not _STATE.fullmatch(state):
        raise WalletResponseError("invalid_state", "state is 1-256 URL-safe characters")
    error = params.get("error")
    if error is not None:
        if "vp_token" in params:
            raise WalletResponseError("ambiguous_response", "both error and vp_token present")
        if not _ERROR_CODE.fullmatch(error):
            raise WalletResponseError("invalid_error", "error code has illegal characters")
        description = params.get("error_description")
        if description is not None and not _ERROR_DESCRIPTION.fullmatch(description):
            raise WalletResponseError(
                "invalid_error_description", "error_description has illegal characters"
            )
        return WalletResponse(state=state, error=error, error_description=description)
    if "error_description" in params:
        raise WalletResponseError("invalid_error_description", "error_description without error")
    vp_token = params.get("vp_token")
    if vp_token is None:
        raise WalletResponseError("missing_vp_token", "neither vp_token nor error present")
    presentation = _single_presentation(vp_token, credential_id, max_bytes)
    return WalletResponse(state=state, presentation=presentation)


def _single_params(form: Any, max_bytes: int) -> dict[str, str]:
    """The parameters we read, each exactly once; the whole form within ``max_bytes``."""
    try:
        items = list(form.items())
    except Exception as exc:  # an arbitrary object: anything it raises means "not a form"
        raise WalletResponseError("malformed_form", "not a form") from exc
    total = 0
    single: dict[str, str] = {}
    for name, values in items:
        if not isinstance(name, str) or not isinstance(values, list | tuple):
            raise WalletResponseError("malformed_form", "form maps names to lists of strings")
        total += len(name.encode("utf-8", "surrogatepass"))
        for value in values:
            if not isinstance(value, str):
                raise WalletResponseError("malformed_form", "form values are strings")
            total += len(value.encode("utf-8", "surrogatepass"))
        if total > max_bytes:
            raise WalletResponseError("too_large", f"form exceeds {max_bytes} bytes")
        if name in _READ:
            if len(values) > 1:
                raise WalletResponseError("repeated_parameter", f"{name} appears more than once")
            if not values:
                raise WalletResponseError("malformed_form", f"{name} has no value")
            single[name] = values[0]
    return single


def _single_presentation(vp_token: str, credential_id: str, max_bytes: int) -> str:
    try:
        token = strict_json.loads(vp_token, max_depth=4, max_bytes=max_bytes)
    except strict_json.StrictJSONError as exc:
        raise WalletResponseError("vp_token_not_json", str(exc)) from exc
    if not isinstance(token, dict):
        raise WalletResponseError("vp_token_not_object", "vp_token is a JSON object")
    if credential_id not in token:
        raise WalletResponseError("missing_credential", "no entry for the requested credential")
    if len(token) != 1:
        raise WalletResponseError("unexpected_credential", "entries for credentials not requested")
    presentations = token[credential_id]
    if not isinstance(presentations, list):
        raise WalletResponseError("presentations_not_array", "each entry is an array")
    if not presentations:
        raise WalletResponseError("no_presentation", "the entry is empty")
    if len(presentations) > 1:
        raise WalletResponseError("multiple_presentations", "exactly one presentation expected")
    presentation = presentations[0]
    if not isinstance(presentation, str):
        raise WalletResponseError("presentation_not_string", "a presentation is a string")
    if not _SD_JWT_PRESENTATION.fullmatch(presentation) or "~" not in presentation:
        raise WalletResponseError("malformed_presentation", "not an SD-JWT presentation")
    return presentation


def same_device_redirect_uri(
    base: str, *, response_code: str, allow_http_loopback: bool = False
) -> str:
    """``base`` with ``response_code`` added as a query parameter.

    ``base`` is our own page that resumes the login in the browser; ``response_code`` is a fresh
    random value (>= 128 bits, from :mod:`trustanchor.randomness`) bound to this transaction and
    required, once, when that page fetches the result.
    """
    try:
        check_https_url(base, what="redirect_uri", allow_http_loopback=allow_http_loopback)
    except LinkError as exc:
        raise WalletResponseError("invalid_redirect_uri", exc.detail) from exc
    if not isinstance(response_code, str) or not _RESPONSE_CODE.fullmatch(response_code):
        raise WalletResponseError(
            "invalid_response_code", "response_code is >= 22 base64url characters"
        )
    separator = "&" if urlsplit(base).query else "?"
    return f"{base}{separator}response_code={quote(response_code, safe='')}"


def response_endpoint_reply(*, redirect_uri: str | None = None) -> dict[str, str]:
    """The JSON body for the wallet after a processed response (HTTP 200, no-store)."""
    return {} if redirect_uri is None else {"redirect_uri": redirect_uri}


__all__ = [
    "WalletResponse",
    "WalletResponseError",
    "parse_direct_post",
    "response_endpoint_reply",
    "same_device_redirect_uri",
]
