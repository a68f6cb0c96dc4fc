"""The service's log lines as an operator with ``logging.format = "json"`` gets them, captured in
process: the formatter, the request-id filter and the logger levels of
``trustanchor.log_setup.dictconfig`` on a handler of the root logger (pytest keeps its own
handlers, so nothing else of the test run changes)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from trustanchor import log_setup


@contextmanager
def json_log_lines(level: log_setup.Level = "debug") -> Iterator[list[dict[str, Any]]]:
    """Every line logged meanwhile, parsed (each must be one JSON object), in order."""
    config = log_setup.dictconfig("json", level)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_setup.JsonFormatter())
    handler.addFilter(log_setup.RequestIdFilter())
    root = logging.getLogger()
    changed = {"": root.level}
    root.setLevel(config["root"]["level"])
    for name, values in config["loggers"].items():
        logger = logging.getLogger(name)
        changed[name] = logger.level
        logger.setLevel(values["level"])
    root.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        for name, previous in changed.items():
            logging.getLogger(name or None).setLevel(previous)
        for raw in stream.getvalue().splitlines():
            line = json.loads(raw)
            assert isinstance(line, dict), raw
            lines.append(line)
