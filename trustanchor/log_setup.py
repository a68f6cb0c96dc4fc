"""Operator logging: one line per event, never secrets (the code logs reason codes, ids and
digests only), in one format for every logger of the process: ours, granian's (``serve`` hands
:func:`dictconfig` to granian for its main process and workers), Alembic's at migration time and
Flask's.

- ``logging.format = "text"`` (default): ``time level logger [request id]: message key=value``,
  where nothing a message or an argument holds can break the line or start another: control
  characters (CR, LF, ESC, NEL, ...), the Unicode line and paragraph separators, format
  characters (bidi overrides, zero-width ones) and lone surrogates are written escaped (``\\n``,
  ``\\x1b``, ``\\u2028``; :func:`escaped`). A traceback (or stack) follows on lines of its own,
  each starting with :data:`CONTINUATION` and escaped alike, so no line after the first of a
  record can look like a record;
- ``logging.format = "json"``: one JSON object per line with ``time`` (UTC, ISO 8601),
  ``level``, ``logger``, ``message``, ``request_id`` (null outside a request), the record's
  structured extra fields (``log.info(..., extra={"reason": ...})``) and ``exception`` (the
  traceback) when there is one. U+0085, U+2028 and U+2029 are written as JSON escapes, for
  readers that split lines on them (as Python's ``str.splitlines`` does).

The request id (:data:`request_id`) is set per request by the serving layer
(``trustanchor.web.serving``) and by the Flask app under any other WSGI server, and read by
:class:`RequestIdFilter` on every record. An incoming ``X-Request-Id`` is kept only when it is
short and safe (:func:`acceptable_request_id`): it ends up in every log line of the request.
Values a request chose (a path, a method) are logged through :func:`clipped`: bounded.

SQLAlchemy's loggers stay at WARNING whatever the level: at INFO and below they write every
statement with its parameters (token digests, personal claims). Its errors name no parameters
(``hide_parameters``, trustanchor.storage.database), and the ``DETAIL:`` lines PostgreSQL adds
to them ("Key (jti)=(...) already exists", "Failing row contains (...)") are redacted from
logged tracebacks (:func:`redacted`).
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import re
import sys
import time
import traceback
from contextvars import ContextVar
from typing import Any, Literal, TextIO

from trustanchor.randomness import Randomness

Format = Literal["text", "json"]
Level = Literal["debug", "info", "warning", "error"]
FORMATS: tuple[Format, ...] = ("text", "json")
LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error")

REQUEST_ID_HEADER = "X-Request-Id"
# The request's id while it is handled (None outside a request). Set and reset by whoever runs
# the request on its thread: run_in_executor does not copy context variables.
request_id: ContextVar[str | None] = ContextVar("trustanchor_request_id", default=None)

# 1 to 64 of A-Z a-z 0-9 . _ -, at least one a letter or digit: "-" alone is what a line
# written outside any request shows.
_SAFE_ID = re.compile(r"(?=[._-]*[A-Za-z0-9])[A-Za-z0-9._-]{1,64}", re.ASCII)
_SAFE_ID_BYTES = re.compile(rb"(?=[._-]*[A-Za-z0-9])[A-Za-z0-9._-]{1,64}")
REQUEST_ID_BYTES = 12  # a generated id: 16 URL-safe characters

# Loggers that must not follow the root level down (see the module docstring).
_QUIET = {"sqlalchemy": "WARNING"}

# The attributes every LogRecord has: anything else on a record is a structured extra field.
_STANDARD = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "request_id",
        "taskName",
    }
)


def acceptable_request_id(value: str | None) -> str | None:
    """``value`` when it can be logged as it is (1 to 64 of ``A-Z a-z 0-9 . _ -``, at least one
    a letter or a digit), else None."""
    if value is not None and _SAFE_ID.fullmatch(value):
        return value
    return None


def request_id_for(headers: list[tuple[bytes, bytes]], randomness: Randomness) -> str:
    """The id of a request with these ASGI header lines (lower-case names): its own
    ``X-Request-Id`` when acceptable (the first line, if repeated), else a new random one."""
    for name, value in headers:
        if name == b"x-request-id":
            if _SAFE_ID_BYTES.fullmatch(value):
                return value.decode("ascii")
            break
    return randomness.token(REQUEST_ID_BYTES)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (a record that already carries one,
    logged with ``extra={"request_id": ...}``, keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


# What the text format never writes as it is (module docstring): C0 and C1 controls (DEL and
# NEL among them), the line and paragraph separators (Zl, Zp), format characters (Cf: bidi
# overrides and isolates, zero-width characters, tags) and lone surrogates (Cs).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_BREAKS = re.compile("[\x85\u2028\u2029]")
# Starts every line of a text record after its first (a traceback's, a stack's).
CONTINUATION = "  | "
CLIP = 200  # characters of a request's path (or method) in a log line


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escaped(text: str) -> str:
    """``text`` with the characters that could break or disguise a text log line escaped:
    ``\\n``, ``\\r``, ``\\t``, ``\\xNN``, ``\\uNNNN``, ``\\UNNNNNNNN`` (module docstring)."""
    if text.isprintable():  # the usual case: no control, format or separator character
        return text
    return _UNSAFE.sub(_escape, text)


def clipped(value: str, limit: int = CLIP) -> str:
    """A value the request chose (its path, its method), for a log line: escaped, and cut to
    ``limit`` characters (saying how long it was) so that no request writes kilobytes."""
    if len(value) > limit:
        value = f"{value[:limit]}...({len(value)} characters)"
    return escaped(value)


def _continued(block: str) -> str:
    return "".join(f"\n{CONTINUATION}{escaped(line)}" for line in block.split("\n"))


_DETAIL = re.compile(r"^(\s*)DETAIL:.*$", re.MULTILINE)


def redacted(text: str) -> str:
    """``text`` (a traceback) without PostgreSQL's ``DETAIL:`` lines, which quote values."""
    return _DETAIL.sub(r"\1DETAIL: (redacted: it quotes database values)", text)


def _exception(record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return redacted("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.exc_text:
        return redacted(record.exc_text)
    return None


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"}


def _utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in _extras(record).items():
            line.setdefault(key, value)
        exception = _exception(record)
        if exception is not None:
            line["exception"] = exception
        if record.stack_info:
            line["stack"] = record.stack_info
        text = json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))
        if not text.isascii():
            text = _JSON_BREAKS.sub(_json_escape, text)
        return text


class TextFormatter(logging.Formatter):
    """``2026-12-06T23:50:00.123Z INFO trustanchor.web [request id]: message key=value``, escaped
    (:func:`escaped`); a traceback follows on lines starting with :data:`CONTINUATION`."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        text = f"{_utc(record.created)} {record.levelname} {record.name} [{rid or '-'}]: "
        text += record.getMessage()
        extras = _extras(record)
        if extras:
            text += " " + " ".join(
                f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in extras.items()
            )
        text = escaped(text)
        exception = _exception(record)
        if exception is not None:
            text += _continued(exception)
        if record.stack_info:
            text += _continued(record.stack_info)
        return text


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (like logging's last
    resort handler), so a replaced stderr never leaves the handler writing to a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def dictconfig(format: Format = "text", level: Level = "info") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a trustanchor process: one handler on the root
    logger, granian's loggers (``_granian``, ``granian.access``) propagating to it. Handed to
    granian as ``log_dictconfig`` so its main process and workers log alike."""
    formatter = (
        "trustanchor.log_setup.JsonFormatter"
        if format == "json"
        else ("trustanchor.log_setup.TextFormatter")
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "trustanchor.log_setup.RequestIdFilter"}},
        "formatters": {"trustanchor": {"()": formatter}},
        "handlers": {
            "trustanchor": {
                "()": "trustanchor.log_setup.StderrHandler",
                "formatter": "trustanchor",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["trustanchor"]},
        "loggers": {
            "_granian": {"level": level.upper(), "handlers": [], "propagate": True},
            "granian.access": {"level": "INFO", "handlers": [], "propagate": True},
            **{name: {"level": quiet} for name, quiet in _QUIET.items()},
        },
    }


def configure_logging(
    format: Format | None = None, level: Level | None = None, *, force: bool = False
) -> None:
    """Configure this process's logging (once: unless ``force``, nothing changes when the root
    logger already has a handler, as when granian configured a worker or a host application
    configured its own). Without arguments: ``$TRUSTANCHOR_LOGGING_FORMAT`` and
    ``$TRUSTANCHOR_LOGGING_LEVEL`` (or the older ``$TRUSTANCHOR_LOG_LEVEL``) when valid, else
    text at INFO."""
    if logging.getLogger().handlers and not force:
        return
    logging.config.dictConfig(dictconfig(format or env_format(), level or env_level()))


def env_format() -> Format:
    value = os.environ.get("TRUSTANCHOR_LOGGING_FORMAT", "").lower()
    return "json" if value == "json" else "text"


def env_level() -> Level:
    value = (
        os.environ.get("TRUSTANCHOR_LOGGING_LEVEL") or os.environ.get("TRUSTANCHOR_LOG_LEVEL", "")
    ).lower()
    for level in LEVELS:
        if value == level:
            return level
    return "info"
