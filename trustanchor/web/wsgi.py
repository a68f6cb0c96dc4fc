"""WSGI entry point: ``trustanchor.web.wsgi:app`` (settings from $TRUSTANCHOR_CONFIG)."""

from trustanchor.web.app import create_app

app = create_app()
