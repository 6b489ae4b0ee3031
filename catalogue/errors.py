"""One error root for the catalogue; the API maps these to HTTP statuses in one table."""

from __future__ import annotations


class CatalogueError(Exception):
    """Root of every error the catalogue raises on purpose."""


class NotFoundError(CatalogueError):
    """A collection or item that the caller named does not exist."""


class ConflictError(CatalogueError):
    """A write would duplicate an existing collection or item."""


class CollectionNotEmptyError(ConflictError):
    """Deleting a collection that still holds items, without asking for its items to go."""

    def __init__(self, collection_id: str, items: int) -> None:
        super().__init__(
            f"collection {collection_id!r} still holds {items} items; deleting it would "
            "delete them too"
        )
        self.collection_id = collection_id
        self.items = items


class InvalidInputError(CatalogueError):
    """Input that is not acceptable: a malformed item, token, bbox, datetime ..."""


class InvalidBboxError(InvalidInputError):
    """An item's bbox is out of range or does not contain its geometry; `geometry_bbox` is
    the geometry's own, for callers that repair instead of refusing (harvests)."""

    def __init__(self, message: str, geometry_bbox: list[float]) -> None:
        super().__init__(message)
        self.geometry_bbox = geometry_bbox


class UnknownPropertyError(InvalidInputError):
    """A filter or sortby names a property that is not among the queryables."""


class DatabaseUnavailableError(CatalogueError):
    """The database cannot be reached, has no free connection or timed out; the caller may
    retry later."""


class StatementTimeoutError(DatabaseUnavailableError):
    """A statement ran past the server's `statement_timeout`; a narrower request may pass."""


class TransactionConflictError(DatabaseUnavailableError):
    """PostgreSQL aborted a transaction to resolve a deadlock or a serialization failure
    between concurrent writers; the same transaction run again normally succeeds."""


class DatabaseError(CatalogueError):
    """A database error that names no fault of the caller's: a bug, logged with its cause."""


class NotMigratedError(CatalogueError):
    """The database schema is missing or behind the code's Alembic head."""


class EmbeddedDatabaseError(CatalogueError):
    """The embedded PostgreSQL cluster cannot be created, started or stopped."""


# SQLSTATE class 22 ("data exception"): PostgreSQL refused a value that got past the checks
# before SQL. Its own text quotes the statement's internals (and sometimes the data), so
# callers answer in these words and log PostgreSQL's. The codes are PostgreSQL's Appendix A.
REFUSED_VALUES = {
    "22P05": "a text value holds a character the catalogue cannot store (such as \\u0000 "
    "or a lone surrogate escape)",
    "22021": "a text value holds a character the catalogue cannot store (such as \\u0000)",
    "22P02": "a value is not written as its type requires (JSON has no NaN or Infinity)",
    "22003": "a number is beyond the range the catalogue can store",
    "22008": "a date or time is beyond the range the catalogue can store",
    "22007": "a date or time is not in a form the catalogue can read",
    "22012": "the filter divides by zero",
    "2201F": "the filter raises zero to a negative power",
    "2201B": "a pattern is not a valid regular expression",
    "22023": "a geometry or other value is not acceptable to the database",
    "22001": "a text value is longer than the catalogue can store",
}


def refused_value(sqlstate: str | None) -> str:
    """Our words for a value PostgreSQL refused (SQLSTATE class 22)."""
    reason = REFUSED_VALUES.get(sqlstate or "", "a value is out of range or malformed")
    return f"the catalogue cannot store or compare a value in this request: {reason}"
