"""Request parameters as they arrive (every value a list) → single values, refusing repeats."""

from __future__ import annotations

from collections.abc import Mapping

from trustanchor.echo import echoable
from trustanchor.oauth.errors import InvalidRequest

FormData = Mapping[str, list[str]]


def single(
    params: FormData, name: str, *, required: bool = False, max_len: int = 2048
) -> str | None:
    """The one value of ``name`` (a name the endpoint knows: descriptions repeat it); a repeated
    parameter or an over-long value is invalid_request."""
    values = params.get(name)
    if not values:
        if required:
            raise InvalidRequest(f"{name} is required", reason="parameter_missing")
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{name} is repeated", reason="parameter_repeated")
    value = values[0]
    if len(value) > max_len:
        raise InvalidRequest(f"{name} is too long", reason="parameter_too_long")
    if value == "":
        if required:
            raise InvalidRequest(f"{name} is required", reason="parameter_missing")
        return None
    return value


def reject_repeats(params: FormData) -> None:
    """RFC 6749 §3.1: parameters must not be included more than once."""
    for name, values in params.items():
        if len(values) > 1:
            raise repeated(name)


def repeated(name: str) -> InvalidRequest:
    """The refusal of a repeated parameter: it names the parameter only when the name is
    :func:`~trustanchor.echo.echoable` (the request chose it: it may be anything)."""
    what = f"parameter {name}" if echoable(name) else "a parameter"
    return InvalidRequest(f"{what} is repeated", reason="parameter_repeated")
