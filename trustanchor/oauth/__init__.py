"""OAuth 2.0 / OpenID Connect protocol pieces, grouped by specification. Framework-free."""
