"""trustanchor: an OAuth 2.0 / OpenID Connect authorization server that delegates
authentication to trust anchors and authorizes value movement inside anchor sets."""

__version__ = "0.1.0"
