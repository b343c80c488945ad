"""Typed errors raised by the storage room."""


class StorageError(Exception):
    """Base class for storage failures a caller may want to report to a person."""


class DatabaseUrlError(StorageError):
    """The database URL names a backend coachbot does not support."""


class NotFound(StorageError):
    """Something named by a person (a team key, an email) does not exist."""


class IntegrityProblem(StorageError):
    """Input would break an invariant of the stored data (e.g. a chat identity bound to two people)."""
