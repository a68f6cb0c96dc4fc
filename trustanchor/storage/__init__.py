"""Storage: SQLAlchemy Core tables, the database handle, and one repository module per concept.

Everything that must happen once (authorization codes, request_uris, wallet nonces, DPoP and
client-assertion jtis, refresh tokens) is consumed by a single conditional UPDATE or a unique
INSERT, so racing processes get exactly one winner.
"""
