"""Operator logging: one line per event, never secrets (the code logs reason codes, ids and
digests only). Configured once per process, unless the host application configured logging."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging() -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    level = os.environ.get("TRUSTANCHOR_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), format=FORMAT)
