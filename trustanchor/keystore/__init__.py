"""The service's own signing keys: generation, rotation, the published JWKS."""
