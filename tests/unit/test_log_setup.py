"""Issue 14: one log format (trustanchor.log_setup), JSON lines when configured, the request id
on every line; the setting and its environment override; ``trustanchor init`` (Alembic's lines
at migration time) in the configured format."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from trustanchor import log_setup
from trustanchor.config import ConfigError, load_settings
from trustanchor.randomness import SequenceRandomness

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("abc-DEF_0.9", True),
        ("x" * 64, True),
        ("x" * 65, False),
        ("", False),
        ("a b", False),
        ("a/b", False),
        ("é", False),
        ("a\nb", False),
        ("a\x00", False),
        (None, False),
        # at least one letter or digit: "-" is what a line outside any request shows
        ("-", False),
        (".", False),
        ("_", False),
        ("-._", False),
        ("-a", True),
        ("_9_", True),
    ],
)
def test_only_short_safe_request_ids_are_kept(value: str | None, kept: bool) -> None:
    assert log_setup.acceptable_request_id(value) == (value if kept else None)
    headers = [] if value is None else [(b"x-request-id", value.encode("utf-8"))]
    rid = log_setup.request_id_for([(b"host", b"x"), *headers], SequenceRandomness("r"))
    assert rid == (value if kept else "r1" + "x" * 41)


def test_the_first_request_id_line_counts() -> None:
    lines = [(b"x-request-id", b"a b"), (b"x-request-id", b"fine")]
    assert log_setup.request_id_for(lines, SequenceRandomness("r")).startswith("r1")


def _record(message: str = "refused %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("trustanchor.web", logging.INFO, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    log_setup.RequestIdFilter().filter(record)
    return record


def test_json_lines_carry_the_fields_and_the_current_request_id() -> None:
    token = log_setup.request_id.set("req-1")
    try:
        record = _record("refused %s", "POST /token", reason="unknown_client", count=2)
    finally:
        log_setup.request_id.reset(token)
    line = json.loads(log_setup.JsonFormatter().format(record))
    assert line.pop("time").endswith("Z")
    assert line == {
        "level": "INFO",
        "logger": "trustanchor.web",
        "message": "refused POST /token",
        "request_id": "req-1",
        "reason": "unknown_client",
        "count": 2,
    }
    outside = json.loads(log_setup.JsonFormatter().format(_record("x")))
    assert outside["request_id"] is None
    given = json.loads(log_setup.JsonFormatter().format(_record("x", request_id="own")))
    assert given["request_id"] == "own"  # logged with extra={"request_id": ...}


def test_json_lines_hold_tracebacks_and_control_characters_on_one_line() -> None:
    message = 'bad\nvalue "quoted"\nDETAIL:  Key (jti)=(secret-jti) already exists.'
    try:
        raise ValueError(message)  # as psycopg's errors read
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "a\nb", None, sys.exc_info())
    text = log_setup.JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "a\nb" and "ValueError" in line["exception"]
    assert "secret-jti" not in text and "DETAIL: (redacted" in line["exception"]
    plain = log_setup.TextFormatter().format(record)
    assert "secret-jti" not in plain and "ValueError" in plain


def test_text_lines_name_the_request() -> None:
    token = log_setup.request_id.set("req-2")
    try:
        record = _record("refused %s", "GET /userinfo", reason="bad_signature")
    finally:
        log_setup.request_id.reset(token)
    text = log_setup.TextFormatter().format(record)
    assert text.endswith(
        ' INFO trustanchor.web [req-2]: refused GET /userinfo reason="bad_signature"'
    )
    assert "[-]" in log_setup.TextFormatter().format(_record("x"))


FORGED = "2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]: login through anchor x: ok"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ")
BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # all that str.splitlines splits on


def _forging(text: str) -> list[str]:
    """The lines of ``text`` (split as any reader might) that look like the start of a record,
    after its first."""
    return [line for line in text.splitlines()[1:] if RECORD_START.match(line.lstrip())]


def test_text_lines_escape_what_could_break_or_forge_a_line() -> None:
    """Attack report F2: a message or an argument holding a line break wrote a forged record."""
    for brk in BREAKS:
        record = _record("refused %s is repeated", f"a{brk}{FORGED}{brk}b", reason=f"r{brk}x")
        text = log_setup.TextFormatter().format(record)
        assert text.splitlines() == [text], repr(brk)
        assert _forging(text) == []
    text = log_setup.TextFormatter().format(_record("a\nb\r\tc\x1b[31md\u202ee\ud800f\U000e0041"))
    assert text.endswith(r"a\nb\r\tc\x1b[31md\u202ee\ud800f\U000e0041")
    text = log_setup.TextFormatter().format(_record("plain é 日本 \\n stays"))
    assert text.endswith("plain é 日本 \\n stays")


def test_every_control_format_and_separator_character_is_escaped() -> None:
    for code in range(0x110000):
        char = chr(code)
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            assert log_setup.escaped(char).startswith("\\"), hex(code)
        elif code < 0x3000 and unicodedata.category(char) != "Cn":  # other assigned ones stay
            assert log_setup.escaped(char) == char, hex(code)


def test_a_traceback_stays_readable_and_every_line_of_it_is_marked() -> None:
    try:
        raise ValueError(f"bad name a\n{FORGED}\r\n\u2028{FORGED}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.stack_info = f"Stack (most recent call last):\n{FORGED}"
    text = log_setup.TextFormatter().format(record)
    first, *rest = text.split("\n")
    assert first.endswith(" ERROR t [-]: failed")
    assert rest and all(line.startswith(log_setup.CONTINUATION) for line in rest)
    assert f"{log_setup.CONTINUATION}Traceback (most recent call last):" in rest
    assert any(line.startswith(f"{log_setup.CONTINUATION}ValueError: bad name a") for line in rest)
    assert f"{log_setup.CONTINUATION}{FORGED}\\r" in rest  # CR escaped inside its line
    assert _forging(text) == []


def test_json_lines_escape_the_unicode_line_separators_too() -> None:
    record = _record("a\x85b\u2028c\u2029d %s", FORGED)
    text = log_setup.JsonFormatter().format(record)
    assert text.splitlines() == [text]
    assert "\\u0085" in text and "\\u2028" in text and "\\u2029" in text
    assert json.loads(text)["message"] == f"a\x85b\u2028c\u2029d {FORGED}"


def test_values_a_request_chose_are_clipped_for_the_log() -> None:
    assert log_setup.clipped("/token") == "/token"
    long = log_setup.clipped("/x\n" * 10_000)
    assert long.endswith("...(30000 characters)") and "\n" not in long
    assert len(long) < 2 * log_setup.CLIP + 40


def test_the_setting_is_validated_and_overridden_by_the_environment() -> None:
    config = REPO / "config" / "test.toml"
    assert load_settings(config, environ={}).logging.format == "text"
    env = {"TRUSTANCHOR_LOGGING_FORMAT": "json", "TRUSTANCHOR_LOGGING_LEVEL": "debug"}
    settings = load_settings(config, environ=env)
    assert (settings.logging.format, settings.logging.level) == ("json", "debug")
    assert load_settings(config, environ={"TRUSTANCHOR_LOG_LEVEL": "WARNING"}).logging.level == (
        "warning"
    )  # the older variable
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={"TRUSTANCHOR_LOGGING_FORMAT": "xml"})
    assert refused.value.problems == ["logging.format: must be one of 'text', 'json', not 'xml'"]
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={"TRUSTANCHOR_LOGGING_LEVEL": "verbose"})
    assert "logging.level: must be one of" in refused.value.problems[0]


def test_the_configuration_keeps_sqlalchemy_quiet_and_routes_granian_to_one_handler() -> None:
    script = (
        "import logging; from trustanchor import log_setup; "
        "log_setup.configure_logging('json', 'debug'); "
        "logging.getLogger('sqlalchemy.engine.Engine').info('INSERT ... (secret,)'); "
        "logging.getLogger('_granian').info('Starting granian'); "
        "logging.getLogger('trustanchor.x').debug('hello', extra={'reason': 'r'}); "
        "logging.getLogger('alembic.runtime.migration').info('Running upgrade')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout == ""
    lines = [json.loads(raw) for raw in done.stderr.splitlines()]
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("_granian", "Starting granian"),
        ("trustanchor.x", "hello"),
        ("alembic.runtime.migration", "Running upgrade"),
    ]
    assert lines[1]["reason"] == "r" and lines[1]["level"] == "DEBUG"


def test_init_writes_its_log_lines_alembics_included_in_the_configured_format(
    tmp_path: Path,
) -> None:
    config = tmp_path / "service.toml"
    config.write_text(
        (REPO / "config" / "test.toml").read_text(encoding="utf-8")
        + '\n[logging]\nformat = "json"\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "TRUSTANCHOR_SERVICE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "TRUSTANCHOR_SERVICE_KEYS_DIR": str(tmp_path / "keys"),
    }
    env.pop("TRUSTANCHOR_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "trustanchor", "--config", str(config), "init"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "ready: " in done.stdout  # the command's own answer stays plain text
    lines = [json.loads(raw) for raw in done.stderr.splitlines()]
    migrations = [line for line in lines if line["logger"] == "alembic.runtime.migration"]
    assert any(line["message"].startswith("Running upgrade") for line in migrations)
