"""WSGI entry point: ``trustanchor.web.wsgi:app`` (settings from $TRUSTANCHOR_CONFIG)."""

from trustanchor.config import load_settings
from trustanchor.log_setup import configure_logging
from trustanchor.web.app import create_app

_settings = load_settings()
configure_logging(_settings.logging.format, _settings.logging.level)
app = create_app(_settings)
