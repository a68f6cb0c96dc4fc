"""The one storage failure the edge turns into ``503 temporarily_unavailable``."""


class StorageUnavailable(Exception):
    """The database could not be reached or the statement failed for infrastructure reasons."""
