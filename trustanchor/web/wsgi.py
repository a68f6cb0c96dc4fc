"""WSGI entry point: ``trustanchor.web.wsgi:app`` (settings from $TRUSTANCHOR_CONFIG)."""

from trustanchor.log_setup import configure_logging
from trustanchor.web.app import create_app

configure_logging()
app = create_app()
