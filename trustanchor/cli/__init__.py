"""The ``trustanchor`` command line (click, which Flask already ships)."""
