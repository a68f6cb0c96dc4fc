"""Configuration: TOML files plus ``TRUSTANCHOR_*`` environment overrides, validated once at
start-up into one immutable :class:`~trustanchor.config.settings.Settings` object."""

from trustanchor.config.loader import ConfigError, load_settings
from trustanchor.config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
